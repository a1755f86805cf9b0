"""``nonsite decode``: HJ 212 frames, one per line, to JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ingest.hj212.decoder import MAX_SEGMENT_BYTES, DecodePolicy, decode_payload
from ingest.hj212.jsonview import result_to_json
from nonsite.cli.common import command

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands


def add_to(sub: Subcommands) -> None:
    p = command(
        sub,
        "decode",
        decode,
        config=False,
        help="decode HJ 212 frames, one per line, to JSON lines",
    )
    p.add_argument("file", nargs="?", type=Path, help="input file (default: stdin)")
    p.add_argument(
        "--accept-modbus",
        action="store_true",
        help="accept frames whose CRC is the CRC-16/MODBUS variant",
    )
    p.add_argument(
        "--max-segment-bytes",
        type=int,
        default=MAX_SEGMENT_BYTES,
        help="longest data segment accepted (the standard says 1024)",
    )
    p.add_argument(
        "--encoding",
        type=_encoding_arg,
        default="utf-8",
        help="text encoding of packets that are not plain ASCII: utf-8 (the standard's), gbk, "
        "gb18030",
    )


def _encoding_arg(value: str) -> str:
    from ingest.hj212.charset import text_encoding

    try:
        return text_encoding(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def decode(args: argparse.Namespace) -> int:
    policy = DecodePolicy(
        accept_modbus_crc=args.accept_modbus,
        max_segment_bytes=args.max_segment_bytes,
        encoding=args.encoding,
    )
    source: BinaryIO = open(args.file, "rb") if args.file else sys.stdin.buffer  # noqa: SIM115
    out = sys.stdout
    with source:
        for raw_line in source:
            line = raw_line.rstrip(b"\r\n")
            if not line.strip():
                continue  # blank lines carry no frame
            for result in decode_payload(line, policy):
                out.write(json.dumps(result_to_json(result), ensure_ascii=False) + "\n")
    out.flush()
    return 0
