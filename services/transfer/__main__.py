"""`python -m services.transfer --config member.yaml`: run one member's transfer service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from kernel.errors import WeftError
from services.common.config import load_config
from services.transfer.server import TransferServer


async def run(config_path: str) -> None:
    config = load_config(config_path)
    server = TransferServer(config, config_path)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    # SIGHUP re-reads the peers table now (it is also re-read when the file changes).
    loop.add_signal_handler(signal.SIGHUP, server.reload_routes)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.transfer", description=__doc__)
    parser.add_argument("--config", required=True, help="the member's YAML config file")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run(args.config))
    except WeftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
