"""How the operator commands print: tables that line up with Chinese text in them, the
database's times in China time for people, and its rows for JSON lines."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ingest.china_time import CHINA_TZ, stored_utc


def china(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time read from the database, in China time; ``-`` for none."""
    if value is None:
        return "-"
    return stored_utc(value).astimezone(CHINA_TZ).strftime(fmt)


def china_iso(value: datetime | None) -> str | None:
    """A time read from the database, in China time as ISO 8601 (for JSON lines)."""
    return None if value is None else stored_utc(value).astimezone(CHINA_TZ).isoformat()


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    head = "  ".join(pad(c, w) for c, w in zip(header, widths, strict=True)).rstrip()
    return "\n".join([head, *lines])


def plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """A database row for JSON: its times in ISO 8601, in UTC as stored."""
    return {k: stored_utc(v).isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
