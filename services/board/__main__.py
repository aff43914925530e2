"""`python -m services.board --config member.yaml`: serve this member's board."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from aiohttp import web

from services.board.app import create_app, session_key
from services.common.config import MemberConfig
from services.common.entry import run_service


def _run(config: MemberConfig) -> None:
    key_file = Path(config.board.session_key_file or Path(config.data_dir) / "board.key")
    app = create_app(config, session_key(key_file))
    host, _, port = config.board.listen.rpartition(":")
    logging.getLogger("weft.board").info("board of %s on http://%s/ (scheduler %s)",
                                         config.name or config.member_id, config.board.listen,
                                         config.board.scheduler or config.scheduler.listen)
    web.run_app(app, host=host or "127.0.0.1", port=int(port), print=None, access_log=None)


def main(argv: list[str] | None = None) -> int:
    return run_service("python -m services.board", (__doc__ or "").splitlines()[0], _run, argv)


if __name__ == "__main__":
    sys.exit(main())
