"""Turn a local path or URI into a pyarrow filesystem and a path on it (file://, s3://, hdfs://)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs


def to_uri(path: str) -> str:
    """A URI for `path`: URIs pass through, a local path becomes an absolute `file://` URI."""
    if "://" in path:
        return path
    return Path(path).expanduser().resolve().as_uri()


def filesystem_for(path: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem that serves `path` and the path inside it."""
    filesystem, inner = pafs.FileSystem.from_uri(to_uri(path))
    return filesystem, inner.rstrip("/") or "/"


def is_directory(filesystem: pafs.FileSystem, path: str) -> bool:
    """True when `path` exists on `filesystem` and is a directory."""
    return bool(filesystem.get_file_info(path).type == pafs.FileType.Directory)


def exists(filesystem: pafs.FileSystem, path: str) -> bool:
    """True when anything (file or directory) is at `path` on `filesystem`."""
    return bool(filesystem.get_file_info(path).type != pafs.FileType.NotFound)
