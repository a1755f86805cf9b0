"""The ``nonsite`` command line.

Each command group has one module holding its parser and its handlers; ``add_to`` adds its
commands to the parser, each with its handler (``func``). This module puts them together, in
the order ``nonsite --help`` lists them, and turns what a handler raises into an exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from nonsite.cli import (
    archive,
    cases,
    check_config,
    db,
    decode,
    demo,
    gateway,
    listings,
    logger,
    replay,
    report,
    serve,
    silences,
    users,
)
from nonsite.cli.common import EXIT_REFUSED, EXIT_USAGE, Refused, UsageError
from nonsite.cli.reads import refuse_missing_data
from nonsite.config import ConfigError
from nonsite.errors import ListenError, StartupError

GROUPS = (
    serve,
    logger,
    gateway,
    check_config,
    decode,
    archive,
    listings,
    cases,
    silences,
    users,
    replay,
    report,
    demo,
    db,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nonsite",
        description="Streaming alert service for off-site environmental supervision.",
    )
    parser.add_argument("--log-level", default=os.environ.get("NONSITE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_to(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        refused = refuse_missing_data(args)
        if refused is not None:
            return refused
        return int(args.func(args))
    except UsageError as exc:  # worded as argparse's own usage errors
        print(f"{args.command_name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Refused as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_USAGE
    except (ListenError, StartupError, OSError) as exc:
        detail = str(exc) if not isinstance(exc, OSError) else f"{exc.filename}: {exc.strerror}"
        print(f"nonsite: {detail}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


__all__ = ["build_parser", "main"]
