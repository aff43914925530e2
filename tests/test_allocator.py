"""The allocator settings for chunk streaming processes (kernel/allocator.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kernel.allocator import AllocatorSettings, reuse_large_buffers

PROBE = """
import ctypes, sys, time
from kernel.allocator import reuse_large_buffers
if sys.argv[1] == "tuned":
    assert reuse_large_buffers()
libc = ctypes.CDLL("libc.so.6")
faults = lambda: int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[7])
before = faults()
for _ in range(50):  # a window of eight chunks filled, then drained, as a stream does
    window = [b"x" * (1 << 20) for _ in range(8)]
    del window
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_chunk_buffers_are_reused_instead_of_faulted_in_again() -> None:
    # Execute: 50 windows of eight 1 MiB buffers, with and without the settings
    def minor_faults(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
        return int(done.stdout)

    default, tuned = minor_faults("default"), minor_faults("tuned")

    # Assert: by default the freed heap goes back to the kernel and every window faults its
    # pages in again (256 per buffer); tuned, the first window's pages are reused
    assert default > 40 * 8 * 256
    assert tuned < default / 10


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="mmap_threshold_mb"):
        reuse_large_buffers(AllocatorSettings(mmap_threshold_mb=64))
