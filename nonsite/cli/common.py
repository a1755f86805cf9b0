"""What the command groups share: exit codes and the errors that become them, the --config
option and the configuration it names, the database, the enterprises and brigades an option
names, times given as options, and a stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from ingest.china_time import china_local
from nonsite.config import Config, load_config
from nonsite.config.load import parse_config

if TYPE_CHECKING:
    import asyncio

    from sqlalchemy import Engine

    # What add_subparsers returns: each command group adds its commands to it (add_to).
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_USAGE: Final = 2  # a bad argument or configuration, as argparse's own errors
EXIT_REFUSED: Final = 3  # refused, or no such case, user or token
DEMO_DATA_DIR: Final = Path("demo-data")  # nonsite demo's --data-dir, in the working directory

Handler: TypeAlias = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A bad argument found after parsing: exit 2, like argparse's own errors."""


class Refused(Exception):  # noqa: N818 - reads as what happened: raise Refused(...)
    """Refused (by the workflow, a command's checks), or no such thing: exit 3 and
    ``error: <code>: <message>`` on stderr; the codes are stable for scripts."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def command(
    commands: Subcommands,
    name: str,
    handler: Handler,
    *,
    config: bool = True,
    reads: tuple[str, ...] = (),
    **parser: Any,
) -> argparse.ArgumentParser:
    """Add the command ``name``, run by ``handler``, with the --config option unless ``config``
    is false. ``reads``: "database" and/or "archive" when it only reads them, so that it must
    find them (nonsite.cli.reads). Its name (``nonsite cases act``) starts its error lines."""
    p = commands.add_parser(name, **parser)
    if config:
        with_config(p)
    p.set_defaults(func=handler, command_name=p.prog, reads=reads)
    return p


def with_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="configuration file (default: $NONSITE_CONFIG)")


def config_source(args: argparse.Namespace) -> Path | str | None:
    """The configuration file a command reads: --config, else NONSITE_CONFIG, else none."""
    return getattr(args, "config", None) or os.environ.get("NONSITE_CONFIG")


def config_for(args: argparse.Namespace) -> Config:
    """The configuration named by --config or NONSITE_CONFIG; otherwise defaults + environment."""
    path = config_source(args)
    if path:
        return load_config(path)
    return parse_config({}, "(defaults and environment)")


@contextmanager
def store(config: Config) -> Iterator[Engine]:
    """The service database, its schema brought up to date, disposed of afterwards."""
    from nonsite.db import make_engine, migrate  # its engine and migrations: not for `decode`

    engine = make_engine(config.database_url())
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


def known_enterprise(config: Config, enterprise_id: str) -> None:
    """A usage error unless the enterprise is configured (an id mistyped would match nothing)."""
    known = [e.id for e in config.enterprises]
    if enterprise_id not in known:
        raise UsageError(
            f"unknown enterprise {enterprise_id!r}; configured: {', '.join(known) or 'none'}"
        )


def known_brigade(config: Config, brigade: str) -> None:
    """A usage error unless the brigade is configured in [[brigades]]."""
    known = [b.id for b in config.brigades]
    if brigade not in known:
        raise UsageError(
            f"unknown brigade {brigade!r}; configured in [[brigades]]: {', '.join(known) or 'none'}"
        )


def cli_time(text: str) -> datetime:
    """``2026-11-21``, ``2026-11-21T08:00`` or ``2026-11-21 08:00+08:00``; naive is China time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2026-11-21T08:00 or 2026-11-21"
        ) from None
    return china_local(value)


def demo_config() -> Path | None:
    """The configuration of a demo run in the working directory, if there is one."""
    from nonsite.demo import CONFIG_NAME  # only on the way to a refusal

    config = DEMO_DATA_DIR / CONFIG_NAME
    return config if config.is_file() else None


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or Ctrl-C, so that what runs in the loop stops in order."""
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
