"""Times given on the command line: ISO 8601, China time when no offset is given."""

from __future__ import annotations

import argparse
from datetime import datetime

from ingest.china_time import CHINA_TZ


def cli_time(text: str) -> datetime:
    """``2026-11-21``, ``2026-11-21T08:00`` or ``2026-11-21 08:00+08:00``; naive is China time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2026-11-21T08:00 or 2026-11-21"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=CHINA_TZ)
