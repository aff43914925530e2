"""Allocator settings for processes that stream large buffers (transfer service, task processes).

A message travels as 1 MiB chunks, and every hop allocates and frees buffers of that size
many times a second. glibc serves blocks above its mmap threshold with a fresh `mmap` and
returns them with `munmap`, and it gives the top of the heap back to the kernel once more
than the trim threshold is free. Either way each new chunk lands on pages the kernel must
fault in and zero: on loopback that costs more CPU than moving the bytes. Raising both
thresholds keeps freed chunk buffers in the heap for the next chunk.

The cost is memory held after a burst: up to `trim_mb` of free heap per malloc arena stays
mapped. Other C libraries (musl) and other systems are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from dataclasses import dataclass
from typing import Final

log = logging.getLogger("weft.allocator")

# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD: Final = -1
_M_TOP_PAD: Final = -2
_M_MMAP_THRESHOLD: Final = -3

# glibc caps the mmap threshold at HEAP_MAX_SIZE / 2 (32 MiB on 64-bit).
MAX_MMAP_THRESHOLD_MB: Final = 32


@dataclass(frozen=True)
class AllocatorSettings:
    """Blocks below `mmap_threshold_mb` come from the heap; `trim_mb` of free heap is kept."""

    mmap_threshold_mb: int = 8
    trim_mb: int = 128
    top_pad_mb: int = 16


_applied: AllocatorSettings | None = None


def reuse_large_buffers(settings: AllocatorSettings = AllocatorSettings()) -> bool:
    """Apply `settings` to this process's glibc allocator; False where that is not possible."""
    global _applied
    if _applied == settings:
        return True
    if not sys.platform.startswith("linux"):
        return False
    if not 0 < settings.mmap_threshold_mb <= MAX_MMAP_THRESHOLD_MB:
        raise ValueError(f"mmap_threshold_mb must be in 1..{MAX_MMAP_THRESHOLD_MB} (got {settings.mmap_threshold_mb})")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.info("no glibc mallopt here: allocator left at its defaults")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mib = 1024 * 1024
    ok = all((
        mallopt(_M_MMAP_THRESHOLD, settings.mmap_threshold_mb * mib),
        mallopt(_M_TRIM_THRESHOLD, settings.trim_mb * mib),
        mallopt(_M_TOP_PAD, settings.top_pad_mb * mib),
    ))
    if ok:
        _applied = settings
    else:
        log.warning("mallopt refused the allocator settings %s", settings)
    return ok
