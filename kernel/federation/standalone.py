"""STANDALONE federation: task processes on one machine exchange messages through a spool directory.

Layout: ``<spool>/<session>/<dst role>.<dst member>/<name>/<src role>.<src member>.<tag>.msg``.
A sender writes to a temporary name and renames it into place, so a receiver never sees a
half-written message. A receiver waits on inotify (Linux) for the rename; where inotify is
not available it falls back to a bounded backoff check of the directory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import select
import shutil
import time
import uuid
from pathlib import Path

from kernel.errors import FederationError, FederationTimeout
from kernel.federation.base import Federation, Party, RoleTable

_SAFE = re.compile(r"[^A-Za-z0-9_\-]")
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_FALLBACK_MAX_WAIT_S = 0.05


def _safe(part: str) -> str:
    """File-name-safe rendering of a name or tag (escapes everything outside [A-Za-z0-9_-])."""
    return _SAFE.sub(lambda m: f"%{ord(m.group()):02x}", part)


class _DirectoryWatch:
    """Waits for a file to be renamed or created into one directory."""

    def __init__(self, directory: Path) -> None:
        self.fd = -1
        libc_name = ctypes.util.find_library("c")
        if libc_name is None:
            return
        libc = ctypes.CDLL(libc_name, use_errno=True)
        if not hasattr(libc, "inotify_init1"):
            return
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return
        if libc.inotify_add_watch(fd, str(directory).encode(), _IN_MOVED_TO | _IN_CREATE) < 0:
            os.close(fd)
            return
        self.fd = fd

    def wait(self, timeout: float) -> None:
        """Return when something arrives in the directory or `timeout` passes."""
        if self.fd < 0:
            time.sleep(min(timeout, _FALLBACK_MAX_WAIT_S))
            return
        readable, _, _ = select.select([self.fd], [], [], max(timeout, 0.0))
        if readable:
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class StandaloneFederation(Federation):
    """Federation through files under a spool directory shared by the task processes."""

    def __init__(self, spool_dir: str | Path, session_id: str, local: Party, roles: RoleTable) -> None:
        super().__init__(session_id, local, roles)
        self.session_dir = Path(spool_dir) / _safe(session_id)

    def _inbox(self, dst: Party, name: str) -> Path:
        return self.session_dir / f"{_safe(dst.role)}.{_safe(dst.member_id)}" / _safe(name)

    def _message_path(self, name: str, tag: str, src: Party, dst: Party) -> Path:
        file_name = f"{_safe(src.role)}.{_safe(src.member_id)}.{_safe(tag)}.msg"
        return self._inbox(dst, name) / file_name

    def _send_bytes(self, name: str, tag: str, payload: bytes, dst: Party) -> None:
        final = self._message_path(name, tag, self.local, dst)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            raise FederationError(f"{name} with tag {tag!r} to {dst} is already in the spool")
        temp = final.parent / f".{uuid.uuid4().hex}.tmp"
        with open(temp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temp, final)

    def _receive_bytes(self, name: str, tag: str, src: Party, timeout: float) -> bytes:
        path = self._message_path(name, tag, src, self.local)
        path.parent.mkdir(parents=True, exist_ok=True)
        watch = _DirectoryWatch(path.parent)
        deadline = time.monotonic() + timeout
        try:
            # Check after the watch exists, so a rename between the two cannot be missed.
            while not path.exists():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FederationTimeout(
                        f"timed out after {timeout:g}s waiting for {name} (tag {tag!r}) from {src}"
                    )
                watch.wait(remaining)
        finally:
            watch.close()
        payload = path.read_bytes()
        path.unlink()
        return payload

    def cleanup(self) -> None:
        shutil.rmtree(self.session_dir, ignore_errors=True)

