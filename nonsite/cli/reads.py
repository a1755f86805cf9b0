"""Commands that only read the database or the archive must find them: rather than an empty
database created in silence where the configuration points (after ``nonsite demo`` the data are
in demo-data/, not ./data/), they exit 2 with one line saying where they looked."""

from __future__ import annotations

import argparse
import sys

from nonsite.cli.common import EXIT_USAGE, config_for, config_source, demo_config


def refuse_missing_data(args: argparse.Namespace) -> int | None:
    """For a command that only reads: exit status 2 and one line when its database or archive
    is not where the configuration says; None when they are there (or it does not only read)."""
    what = getattr(args, "reads", ())
    if not what:
        return None
    from sqlalchemy.engine import make_url

    from nonsite.db import database_exists, sqlite_path

    config = config_for(args)
    missing = ""
    url = config.database_url()
    if "database" in what and not database_exists(url):
        where = sqlite_path(url) or make_url(url).render_as_string(hide_password=True)
        missing = f"no database at {where}"
    archive = config.service.archive_path
    if not missing and "archive" in what and not archive.is_file():
        missing = f"no archive at {archive}"
    if not missing:
        return None
    source = config_source(args)
    used = f"configuration {source}" if source else "no configuration: defaults and environment"
    demo = demo_config()
    print(
        f"{args.command_name}: {missing} ({used}); point at the data to read with --config FILE "
        f"or NONSITE_CONFIG=FILE{f' (a demo: NONSITE_CONFIG={demo})' if demo else ''}, or "
        "NONSITE_DATA_DIR, NONSITE_DB_URL",
        file=sys.stderr,
    )
    return EXIT_USAGE
