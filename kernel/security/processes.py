"""Worker processes of the security kernel: started on first use, kept, shared by every caller.

Work whose inner loop holds the GIL (X25519 through `cryptography`, the bucket method's
bookkeeping) does not scale on threads, so it is split over processes. Spawning one costs
about a second (a fresh interpreter importing the kernel), so the processes are started once
per task process and kept: PSI blinding and large multi-exponentiations submit to the same
pool, and work submitted from several threads at once (two members' steps in one process,
or a member's two steps) is interleaved chunk by chunk, so the cores stay busy.

The processes are the task's own children: what they are handed (a PSI secret, the
ciphertexts) never leaves the member.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor


def _ready() -> bool:
    return True


class WorkerProcesses:
    """A pool of spawned processes, replaced only when more processes are asked for than it has.

    A caller that wants fewer processes submits fewer parts at a time (or more, smaller
    parts: the pool runs at most its size at once either way).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0

    def pool(self, size: int) -> ProcessPoolExecutor:
        """A pool of at least `size` processes (started now if there is no such pool yet)."""
        with self._lock:
            if self._pool is None or self._size < size:
                if self._pool is not None:
                    # Work already submitted to the old pool still completes.
                    self._pool.shutdown(wait=False)
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=size, mp_context=context)
                self._size = size
            return self._pool

    def start(self, size: int) -> None:
        """Have `size` processes running now (a pool spawns them only as work arrives)."""
        pool = self.pool(size)
        for future in [pool.submit(_ready) for _ in range(size)]:
            future.result()

    def shutdown(self) -> None:
        """Stop the processes (the next `pool` call starts new ones)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool, self._size = None, 0


# One per task process: the pool is a cache of started interpreters, not shared state
# that changes a result.
SHARED_PROCESSES = WorkerProcesses()
