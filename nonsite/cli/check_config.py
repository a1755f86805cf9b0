"""``nonsite check-config``: validate a configuration file and say what it configures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from nonsite.cli.common import command
from nonsite.config import load_config
from nonsite.config.advice import config_warnings

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands


def add_to(sub: Subcommands) -> None:
    p = command(
        sub, "check-config", check_config, config=False, help="validate a configuration file"
    )
    p.add_argument("file", type=Path)


def check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    outlets = sum(len(e.outlets) for e in config.enterprises)
    meters = sum(len(e.meters) for e in config.enterprises)
    from nonsite.config.mqtt_url import parse_broker_url

    broker = (
        parse_broker_url(config.mqtt.url).redacted() if config.mqtt.url else "(embedded broker)"
    )
    tcp = f"; HJ 212 over TCP on {config.tcp.listen}" if config.tcp.listen else ""
    print(
        f"{args.file}: OK: {len(config.enterprises)} enterprises, {outlets} outlets, "
        f"{meters} meters; broker {broker}{tcp}; data in {config.service.data_dir}"
    )
    for issue in config_warnings(config):
        print(f"  warning: {issue.entry}: {issue.problem}")
    return 0
