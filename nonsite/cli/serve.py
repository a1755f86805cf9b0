"""``nonsite serve``: the service, in one process."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import TYPE_CHECKING

from nonsite.cli.common import command, config_for, stop_on_signals
from nonsite.config.advice import config_warnings

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands


def add_to(sub: Subcommands) -> None:
    command(sub, "serve", serve, help="run the service")


def serve(args: argparse.Namespace) -> int:
    from nonsite.service import Service  # imported here: the other commands stay light

    config = config_for(args)
    for issue in config_warnings(config):
        logging.getLogger("nonsite.config").warning("%s: %s", issue.entry, issue.problem)
    service = Service(config)

    async def main() -> None:
        stop = stop_on_signals()
        runner = asyncio.create_task(service.run(stop))
        started = asyncio.create_task(service.status.started.wait())
        await asyncio.wait({runner, started}, return_when=asyncio.FIRST_COMPLETED)
        if service.status.started.is_set():
            tcp = service.status.tcp_address
            print(
                f"nonsite is running: MQTT {service.status.broker_url}, "
                + (f"HJ 212 over TCP {tcp}, " if tcp else "")
                + f"dashboard {service.status.http_url}/ (API docs /api/docs; /metrics, "
                "/healthz, /readyz). Ctrl-C stops it cleanly.",
                flush=True,
            )
        await runner

    asyncio.run(main())
    return 0
