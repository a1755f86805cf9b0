"""``nonsite archive export`` and ``prune``: the raw archive, printed or cut to its retention."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ingest.archive import ArchivedMessage, RawArchive
from ingest.china_time import CHINA_TZ
from nonsite.cli.common import cli_time, command, config_for

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands
    from nonsite.config import Config


def add_to(sub: Subcommands) -> None:
    archive = sub.add_parser("archive", help="the raw archive").add_subparsers(
        dest="archive_command", required=True
    )
    p = command(
        archive,
        "export",
        archive_export,
        reads=("archive",),
        help="print archived frames, one per line",
    )
    p.add_argument("--since", type=cli_time, help="received at or after (ISO 8601; China time)")
    p.add_argument("--until", type=cli_time, help="received before (ISO 8601; China time)")
    p.add_argument("--topic-prefix", help="only topics starting with this")
    p.add_argument(
        "--format",
        choices=["raw", "json"],
        default="raw",
        help="raw: the frames as received; json: one record per message with metadata",
    )
    p = command(
        archive,
        "prune",
        archive_prune,
        reads=("database", "archive"),
        help="apply the retention setting now",
    )
    p.add_argument("--days", type=int, help="keep this many days (default: archive.retention_days)")


def _open_archive(config: Config) -> RawArchive:
    path = config.service.archive_path
    try:
        return RawArchive(path, readonly=True)
    except FileNotFoundError:
        raise SystemExit(
            f"nonsite: no archive at {path} (check --config or NONSITE_DATA_DIR)"
        ) from None


def _export_lines(msg: ArchivedMessage, kind: str | None) -> Iterator[bytes]:
    if kind == "hj212":
        for line in msg.payload.replace(b"\r\n", b"\n").split(b"\n"):
            if line.strip():
                yield line
        return
    try:
        yield json.dumps(
            json.loads(msg.payload), ensure_ascii=False, separators=(",", ":")
        ).encode()
    except ValueError:
        yield msg.payload.replace(b"\r", b"\\r").replace(b"\n", b"\\n")


def _json_record(msg: ArchivedMessage) -> dict[str, Any]:
    record: dict[str, Any] = {
        "seq": msg.seq,
        "received_at": msg.received_at.astimezone(CHINA_TZ).isoformat(timespec="microseconds"),
        "topic": msg.topic,
    }
    if msg.truncated:  # above ingest.max_payload_bytes: the payload is only its start
        record.update(truncated=True, size=msg.size, sha256=(msg.full_sha256 or b"").hex())
    try:
        record["payload"] = msg.payload.decode("utf-8")
    except UnicodeDecodeError:
        record["payload_base64"] = base64.b64encode(msg.payload).decode()
    return record


def archive_export(args: argparse.Namespace) -> int:
    from nonsite.wiring import build_router

    config = config_for(args)
    archive = _open_archive(config)
    router = build_router(config)
    out = sys.stdout.buffer
    for msg in archive.export(args.since, args.until, args.topic_prefix):
        if args.format == "json":
            out.write(json.dumps(_json_record(msg), ensure_ascii=False).encode() + b"\n")
        elif msg.truncated:  # its start is not the message: say so rather than print it
            print(
                f"nonsite: message {msg.seq} ({msg.topic}) left out: {msg.size} bytes, above "
                f"ingest.max_payload_bytes; the archive keeps its first {len(msg.payload)} bytes "
                "(--format json shows them)",
                file=sys.stderr,
            )
        else:
            for line in _export_lines(msg, router.kind(msg.topic)):
                out.write(line + b"\n")
    out.flush()
    return 0


def archive_prune(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from ingest.store import load_checkpoint
    from nonsite.db import make_engine
    from nonsite.retention import prune_database

    config = config_for(args)
    if args.days is not None:
        config = config.model_copy(
            update={"archive": config.archive.model_copy(update={"retention_days": args.days})}
        )
    archive = RawArchive(config.service.archive_path, durability=config.archive.durability)
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=config.archive.retention_days)
    engine = make_engine(config.database_url())
    position = load_checkpoint(engine, "ingest")
    removed = archive.prune(cutoff, up_to_seq=position)
    pruned = prune_database(engine, config, now)
    print(
        f"removed {removed} messages and {pruned.dead_letters} dead letters received before "
        f"{cutoff.astimezone(CHINA_TZ):%Y-%m-%d %H:%M}"
        + (f"; dropped {', '.join(pruned.partitions)}" if pruned.partitions else "")
    )
    return 0
