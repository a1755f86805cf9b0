"""``nonsite db upgrade``: the service database's schema migrations."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nonsite.cli.common import command, config_for

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands


def add_to(sub: Subcommands) -> None:
    db = sub.add_parser("db", help="the service database").add_subparsers(
        dest="db_command", required=True
    )
    command(db, "upgrade", db_upgrade, help="apply schema migrations")


def db_upgrade(args: argparse.Namespace) -> int:
    from nonsite.db import make_engine, migrate

    migrate(make_engine(config_for(args).database_url()))
    print("database schema is up to date")
    return 0
