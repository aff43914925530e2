"""`python -m services.serving --config member.yaml`: run this member's serving service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from kernel.errors import WeftError
from services.common.config import load_config
from services.serving.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.serving", description=__doc__)
    parser.add_argument("--config", help="the member's YAML config (WEFT_ variables override it)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        asyncio.run(serve(config))
    except WeftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
