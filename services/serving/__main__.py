"""`python -m services.serving --config member.yaml`: run this member's serving service."""

from __future__ import annotations

import asyncio
import sys

from services.common.config import MemberConfig
from services.common.entry import run_service
from services.serving.server import serve


def _run(config: MemberConfig) -> None:
    asyncio.run(serve(config))


def main(argv: list[str] | None = None) -> int:
    return run_service("python -m services.serving", (__doc__ or "").splitlines()[0], _run, argv)


if __name__ == "__main__":
    sys.exit(main())
