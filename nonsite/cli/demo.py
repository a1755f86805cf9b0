"""``nonsite demo`` (the service and a simulated fleet on this machine) and ``nonsite simulate``
(a configured fleet's traffic, published to a broker)."""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nonsite.cli.common import DEMO_DATA_DIR, EXIT_USAGE, cli_time, command
from nonsite.config import load_config

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands


def add_to(sub: Subcommands) -> None:
    p = command(
        sub,
        "demo",
        demo,
        config=False,  # it writes its own
        help="the service and a simulated fleet of 200 enterprises on this machine",
        description="The service and a simulated fleet with scripted incidents: a day of "
        "history sent fast, then live. Each run starts afresh in --data-dir (a previous demo's "
        "data there are removed) and writes its configuration there (nonsite.toml), for the "
        "other commands: NONSITE_CONFIG=demo-data/nonsite.toml nonsite cases list.",
        epilog="Stops in order on SIGTERM or Ctrl-C (exit status 0). Exit status 1 when it "
        "cannot start, e.g. when the dashboard's port is taken: choose another with --port.",
    )
    p.add_argument(
        "--data-dir", type=Path, default=DEMO_DATA_DIR, help="SQLite, archive, configuration"
    )
    p.add_argument("--broker", help="use this broker (mqtt://...) instead of an embedded one")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument(
        "--speed",
        type=float,
        help="history: simulated seconds per second (default 1200: a day in 72 s); then live",
    )
    p.add_argument("--seed", type=int, default=212, help="the same seed, the same run")
    p.add_argument("--enterprises", type=int, default=200)
    p.add_argument("--port", type=int, default=8080, help="the dashboard's port")
    p.add_argument(
        "--days", type=int, default=1, help="simulated history: from 00:00 this many days ago"
    )
    p.add_argument(
        "--offline-after",
        type=int,
        help="seconds of silence before a logger counts as offline (B8; the demo's default 80, "
        "a service's 600): silence is measured on the clock, and history runs faster",
    )
    p.add_argument(
        "--cluster",
        action="store_true",
        help="the cluster on this machine: PostgreSQL, 3 NATS nodes, Mosquitto, 2 ingest nodes, "
        "2 workers and a web node (nonsite serve --role ...), each in a process of its own, in "
        "demo-data/cluster/ (or --data-dir); --broker: a broker with MQTT 5 shared subscriptions "
        "instead of Mosquitto; --port: the web node's",
    )
    p.add_argument(
        "--database-url",
        help="with --cluster: an empty PostgreSQL database (postgresql+psycopg://...) instead of "
        "a private PostgreSQL server started from the machine's initdb and pg_ctl",
    )

    p = command(
        sub,
        "simulate",
        simulate,
        config=False,  # its own: required
        help="publish a configured fleet's traffic (HJ 212 and power JSON) in simulated time",
    )
    p.add_argument("--config", type=Path, required=True, help="the fleet: enterprises, MNs, meters")
    p.add_argument("--broker", required=True, help="mqtt://[user:password@]host:port")
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per wall second")
    p.add_argument(
        "--as-fast-as-possible", action="store_true", help="publish as fast as the broker takes it"
    )
    p.add_argument("--seed", type=int, default=212, help="the same seed gives the same traffic")
    p.add_argument(
        "--start", type=cli_time, help="simulated start (ISO 8601; China time without an offset)"
    )
    p.add_argument("--duration", type=float, help="stop after this many wall seconds")
    p.add_argument("--hours", type=float, help="stop after this many simulated hours")


def demo(args: argparse.Namespace) -> int:
    import threading

    # Before the demo's imports (about a second): a SIGTERM or Ctrl-C from now on stops it in
    # order (exit status 0), not with the signal's default (SIGTERM: killed, status 143) or a
    # KeyboardInterrupt traceback; the demo's own handlers take over once it runs.
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda _sig, _frame: stop.set())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        from nonsite.demo import DemoSettings, run_demo

        settings = DemoSettings(
            data_dir=args.data_dir,
            broker=args.broker,
            duration_s=args.duration,
            seed=args.seed,
            enterprises=args.enterprises,
            http_port=args.port,
            days=args.days,
            offline_after_s=args.offline_after,
        )
        if args.speed is not None:
            settings.speed = args.speed
        if args.cluster:
            from nonsite.cluster.demo import ClusterDemoSettings, run_cluster_demo

            if args.data_dir == DEMO_DATA_DIR:
                settings.data_dir = DEMO_DATA_DIR / "cluster"
            cluster = ClusterDemoSettings(settings, database_url=args.database_url)
            return run_cluster_demo(cluster, stop)
        if args.database_url is not None:
            print("nonsite demo: --database-url goes with --cluster", file=sys.stderr)
            return EXIT_USAGE
        return run_demo(settings, early_stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def simulate(args: argparse.Namespace) -> int:
    from nonsite.config.mqtt_url import parse_broker_url
    from nonsite.simulator.publisher import Publisher, run
    from nonsite.simulator.traffic import FleetTraffic

    config = load_config(args.config)
    try:
        broker = parse_broker_url(args.broker)
    except ValueError as exc:
        print(f"nonsite simulate: --broker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    start = int((args.start or datetime.now(UTC)).timestamp())
    traffic = FleetTraffic(config, seed=args.seed)
    publisher = Publisher(broker)
    try:
        done = run(
            traffic,
            publisher,
            start=start,
            speed=None if args.as_fast_as_possible else args.speed,
            duration_s=args.duration,
            until=start + int(args.hours * 3600) if args.hours else None,
        )
    except KeyboardInterrupt:
        return 0
    finally:
        publisher.close()
    until = datetime.fromtimestamp(done.sim_time, UTC).isoformat()
    print(f"published {done.messages} messages up to simulated {until}")
    return 0
