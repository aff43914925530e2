"""`python -m services.board --config member.yaml`: serve this member's board."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from kernel.errors import WeftError
from services.board.app import create_app, session_key
from services.common.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.board", description=__doc__)
    parser.add_argument("--config", help="the member's YAML config (WEFT_ variables override it)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        key_file = Path(config.board.session_key_file or Path(config.data_dir) / "board.key")
        app = create_app(config, session_key(key_file))
        host, _, port = config.board.listen.rpartition(":")
        logging.getLogger("weft.board").info("board of %s on http://%s/ (scheduler %s)",
                                             config.name or config.member_id, config.board.listen,
                                             config.board.scheduler or config.scheduler.listen)
        web.run_app(app, host=host or "127.0.0.1", port=int(port), print=None, access_log=None)
    except WeftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
