"""Checks of names and ids that reach paths, logs and other members' screens.

Two kinds of text are refused: names that would not be a plain path segment (they go
into storage paths, so they must never climb out of their folder), and free text with
control or text-direction characters (a right-to-left override can make `evil.exe` read
`exe.live` in a terminal, a log or a table; a newline can forge a log line).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from kernel.errors import InvalidArgument

#: A name that becomes a path segment: the rule of data-set namespaces and names.
PATH_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
#: Unicode categories refused in names and free text: controls, format characters
#: (bidirectional overrides and isolates, zero-width characters), surrogates, private use,
#: unassigned code points, line and paragraph separators.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def unsafe_character(text: str) -> str | None:
    """The first character of `text` that a name or message must not hold, if any."""
    for char in text:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'control character')}"


def check_text(value: object, field: str, max_length: int = 191) -> str:
    """A free-text name or message: a string of at most `max_length` characters, no control or direction characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field}: expected a string, got {type(value).__name__}")
    if len(value) > max_length:
        raise InvalidArgument(f"{field}: {len(value)} characters; at most {max_length} are allowed")
    char = unsafe_character(value)
    if char is not None:
        raise InvalidArgument(f"{field}: character {_describe(char)} is not allowed (no control, "
                              "text-direction or invisible characters)")
    return value


def check_path_name(value: object, field: str) -> str:
    """A name that becomes a path segment: 1-128 ASCII letters, digits, '_', '-' or '.', no '..'."""
    if not isinstance(value, str) or not PATH_NAME_PATTERN.fullmatch(value) or ".." in value:
        shown = repr(value) if isinstance(value, str) and unsafe_character(value) is None else "the value given"
        raise InvalidArgument(f"{field} {shown} is not allowed: use 1-128 letters, digits, '_', '-' or '.', "
                              "starting with a letter or digit (no '/', no '..')")
    return value
