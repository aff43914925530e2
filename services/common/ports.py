"""A free TCP port for a service another process starts later.

A port taken with `bind(0)` comes from the kernel's ephemeral range, the range it also
hands every outgoing connection: between choosing the port and the service binding it, any
connection on the machine may take it ("Address already in use"). So a port is chosen at
random below that range, where only a process that names a port binds, and checked free.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Final

# The lowest port chosen (below it are registered services) and the range the kernel uses for
# outgoing connections when it cannot be read.
FIRST_PORT: Final = 20_000
DEFAULT_EPHEMERAL: Final = (32_768, 60_999)
ATTEMPTS: Final = 64
_RANGE_FILE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux), or the usual default."""
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text(encoding="ascii").split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return low, high


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to on `host` now, below the ephemeral range when there is room
    (else one the kernel picks)."""
    low, _ = ephemeral_range()
    if low - FIRST_PORT >= 1_000:
        for _ in range(ATTEMPTS):
            port = FIRST_PORT + secrets.randbelow(low - FIRST_PORT)
            if _bindable(host, port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
