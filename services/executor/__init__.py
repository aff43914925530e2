"""ExecutorService: runs this member's tasks as local processes or Spark applications."""

from __future__ import annotations

from services.executor.server import ExecutorServer, serve

__all__ = ["ExecutorServer", "serve"]
