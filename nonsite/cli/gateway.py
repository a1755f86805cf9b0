"""``nonsite gateway``: the HJ 212 TCP gateway alone (``serve`` runs it too when [tcp] listen
is set), publishing what data loggers send to an external broker."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from nonsite.cli.common import EXIT_USAGE, command, config_for, stop_on_signals

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands


def add_to(sub: Subcommands) -> None:
    p = command(
        sub, "gateway", gateway, help="run the HJ 212 TCP gateway alone: data loggers connect to it"
    )
    p.add_argument(
        "--listen",
        help="host:port to listen on (default: listen in [tcp], else 0.0.0.0:9212)",
    )


def gateway(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from ingest.tcp.runtime import GatewayRuntime
    from nonsite.config.mqtt_url import parse_broker_url
    from nonsite.http import bind
    from nonsite.wiring import (
        DEFAULT_TCP_LISTEN,
        build_gateway_mqtt_settings,
        build_gateway_settings,
        build_registry,
    )

    config = config_for(args)
    listen = args.listen or config.tcp.listen or DEFAULT_TCP_LISTEN
    config = config.model_copy(update={"tcp": config.tcp.model_copy(update={"listen": listen})})
    broker = config.tcp.mqtt_url or config.mqtt.url
    if not broker:
        print(
            "nonsite gateway: no broker to publish to: set url in [mqtt] (or the gateway's own "
            "login, mqtt_url in [tcp]); the embedded broker runs only inside nonsite serve",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sock = bind(listen, "tcp.listen")
    metrics = CollectorRegistry()
    if config.tcp.metrics_listen:
        host, _, port = config.tcp.metrics_listen.rpartition(":")
        start_http_server(int(port), host, registry=metrics)
    runtime = GatewayRuntime(
        build_gateway_settings(config),
        build_gateway_mqtt_settings(config),
        build_registry(config),
        metrics,
    )

    async def main() -> None:
        stop = stop_on_signals()
        await runtime.start(sock)
        print(
            f"nonsite gateway: HJ 212 over TCP on {listen.rpartition(':')[0]}:{runtime.port}, "
            f"publishing to {parse_broker_url(broker).redacted()}. Ctrl-C stops it cleanly.",
            flush=True,
        )
        await stop.wait()
        await runtime.stop()

    asyncio.run(main())
    return 0
