"""``nonsite serve``: the service, in one process."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import TYPE_CHECKING

from nonsite.cli.common import UsageError, command, config_for, stop_on_signals
from nonsite.config.advice import config_warnings

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands
    from nonsite.config.model import Config


ROLES = ("all", "ingest", "worker", "web")


def add_to(sub: Subcommands) -> None:
    p = command(sub, "serve", serve, help="run the service")
    p.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="all: the whole service on this machine (default); in cluster mode ([cluster] "
        "nats): ingest (MQTT to the stream), worker (partitions of the stream to cases) or "
        "web (the API and dashboard on the cluster's database and stream)",
    )


def serve(args: argparse.Namespace) -> int:
    config = config_for(args)
    for issue in config_warnings(config):
        logging.getLogger("nonsite.config").warning("%s: %s", issue.entry, issue.problem)
    if args.role != "all":
        return serve_role(args.role, config)
    from nonsite.service import Service  # imported here: the other commands stay light

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


def serve_role(role: str, config: Config) -> int:
    """A cluster role (docs/operations.md, Scale out)."""
    if not config.cluster.nats:
        raise UsageError(
            f"--role {role} runs in cluster mode: list the NATS servers in [cluster] nats"
        )

    async def main() -> None:
        stop = stop_on_signals()
        started = asyncio.Event()
        if role == "ingest":
            from nonsite.cluster.ingest_node import IngestNode  # here: the CLI stays light

            node = IngestNode(config)
            runner = asyncio.create_task(node.run(stop))
            started = node.started
        elif role == "web":
            from nonsite.cluster.web_node import WebNode  # here: the CLI stays light

            web = WebNode(config)
            runner = asyncio.create_task(web.run(stop))
            started = web.started
        else:
            from nonsite.cluster.worker import run_worker_role  # here: the CLI stays light

            runner = asyncio.create_task(run_worker_role(config, stop, started))
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait({runner, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if started.is_set():
            print(
                f"nonsite {role} is running: NATS {', '.join(config.cluster.nats)}, "
                f"http {config.service.http_listen} (/metrics, /healthz, /readyz). "
                "Ctrl-C stops it cleanly.",
                flush=True,
            )
        await runner

    asyncio.run(main())
    return 0
