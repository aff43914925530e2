"""`python -m services.executor --config member.yaml`: run this member's executor service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from kernel.errors import WeftError
from services.common.config import load_config
from services.executor.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.executor", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="member configuration (YAML); WEFT_... variables override it")
    parser.add_argument("--log-level", default="INFO")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=ns.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(ns.config)
        asyncio.run(serve(config))
    except WeftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
