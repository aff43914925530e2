"""The one command line of every service: `python -m services.<name> --config member.yaml`.

Each service's `__main__` names itself and passes the function that runs it with the
member's config; parsing, logging, config loading and the exit codes live here:
0 on a clean stop, 1 when the operating system refused something (a port, a file),
2 for a configuration or other Weft error, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from kernel.errors import WeftError
from services.common.config import MemberConfig, load_config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_service(prog: str, description: str, run: Callable[[MemberConfig], None],
                argv: list[str] | None = None) -> int:
    """Parse `--config` and `--log-level`, load the config and call `run(config)` until it returns."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", help="the member's YAML config (WEFT_ variables override it)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    try:
        run(load_config(args.config))
    except WeftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
