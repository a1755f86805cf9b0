#!/usr/bin/env python3
"""Re-derive the expectations of ``public_frames.jsonl`` from the frames alone.

This checker is deliberately independent of the project's ``ingest`` package: it uses only the
standard library and follows the standard (HJ 212-2017 §1 framing, §2 CRC, §3 data segment,
§13 split packets) as restated in README.md next to this file.

    python tests/ingest/hj212/corpus/derive_expectations.py            # re-derive and diff
    python tests/ingest/hj212/corpus/derive_expectations.py --write    # rewrite the "expect"s
    python tests/ingest/hj212/corpus/derive_expectations.py --explain  # one line per frame

Exit status 0 when every stored expectation equals the re-derived one, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "public_frames.jsonl"

MAX_SEGMENT = 1024

# HJ/T 212-2005 code -> HJ 212-2017 code, frozen from the standards' code lists (rows whose
# 2005 code is empty or "--" left out).
# Kept here so that this checker does not read the project's own copy of the table.
CODE_2005_TO_2017 = {
    "001": "w01001", "002": "w01002", "003": "w01012", "01": "a34013", "010": "w01017",
    "011": "w01018", "015": "w01020", "02": "a21026", "020": "w20111", "021": "w20113",
    "022": "w20115", "023": "w20116", "024": "w20117", "026": "w20119", "027": "w20120",
    "028": "w20121", "029": "w20122", "03": "a21002", "030": "w20123", "031": "w20124",
    "032": "w20125", "033": "w20126", "034": "w20127", "035": "w20128", "036": "w20092",
    "037": "w20023", "038": "w20061", "039": "w20012", "04": "a21005", "040": "w20038",
    "041": "w20089", "05": "a21028", "06": "a21018", "060": "w21003", "061": "w99001",
    "062": "w21004", "063": "w21006", "064": "w21007", "065": "w21001", "07": "a21017",
    "070": "w21016", "071": "w21019", "072": "w21017", "08": "a21024", "080": "w22001",
    "09": "a34038", "090": "w21022", "10": "a21001", "101": "w21011", "11": "a21022",
    "110": "w23002", "12": "a99051", "13": "a30022", "14": "a34039", "15": "a34040",
    "17": "a25003", "18": "a25005", "19": "a31001", "20": "a25044", "21": "a26001",
    "22": "a25023", "23": "a25010", "24": "a99049", "25": "a24087", "26": "a31002",
    "27": "a23001", "28": "a30001", "29": "a24046", "30": "a05001", "31": "a20057",
    "32": "a20043", "33": "a20025", "34": "a20091", "35": "a20063", "350": "w33001",
    "351": "w33007", "36": "a20016", "37": "a01010", "520": "w19002", "540": "w25043",
    "550": "w02003", "570": "w03001", "571": "w03002", "B01": "w00000", "B02": "a00000",
    "S01": "a19001", "S02": "a01011", "S03": "a01012", "S04": "a01017", "S05": "a01014",
    "S06": "a01015", "S07": "a01016", "S08": "a01013",
}  # fmt: skip

NUMERIC_SUFFIXES = frozenset(
    {
        "Rtd", "Avg", "Min", "Max", "Cou", "ZsRtd", "ZsAvg", "ZsMin", "ZsMax", "ZsCou",
        "Data", "DayData", "NightData", "RT", "Ala", "UpValue", "LowValue",
    }
)  # fmt: skip
INTEGER_SUFFIXES = frozenset({"RS", "ValidNum", "TotalNum"})
TIME_KEYS = frozenset({"DataTime", "RestartTime", "SystemTime", "BeginTime", "EndTime"})
TIME_SUFFIXES = frozenset({"SampleTime"})
REQUIRED = ("ST", "CN", "PW", "MN", "CP")
VERSIONS = {0: "2005", 1: "2017", 2: "2025"}

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")


class Reject(Exception):
    def __init__(self, code: str, detail: str, **extra: object) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.extra = extra


# ---------------------------------------------------------------- CRC (spec §2)


def _rounds(reg: int) -> int:
    """The 8 rounds both CRCs run for each byte: shift right, xor 0xA001 when a 1 fell out."""
    for _ in range(8):
        lsb = reg & 1
        reg >>= 1
        if lsb:
            reg ^= 0xA001
    return reg


def crc_hj212(data: bytes) -> int:
    """HJ 212 Appendix A: reg = (reg >> 8) ^ byte, then 8 rounds of shift / xor 0xA001."""
    reg = 0xFFFF
    for b in data:
        reg = _rounds((reg >> 8) ^ b)
    return reg


def crc_modbus(data: bytes) -> int:
    """CRC-16/MODBUS: reg ^= byte (the usual algorithm), then the same 8 rounds."""
    reg = 0xFFFF
    for b in data:
        reg = _rounds(reg ^ b)
    return reg


# ---------------------------------------------------------------- framing (spec §1)


def split_frame(frame: str) -> tuple[bytes, str]:
    """Return (data segment bytes, CRC field) of one frame, or raise Reject."""
    line = frame.rstrip("\r\n")
    if not line.strip():
        raise Reject("empty", "no bytes")
    if not line.startswith("##"):
        raise Reject("no_header", "does not start with '##'")
    length_field = line[2:6]
    if len(length_field) < 4 or not all(c in "0123456789" for c in length_field):
        raise Reject("bad_length_field", f"length field {length_field!r}")
    declared = int(length_field)
    rest = line[6:].encode("utf-8")
    if len(rest) < 4:
        raise Reject("truncated", f"{len(rest)} bytes after the length field")
    segment, crc_field = rest[:-4], rest[-4:].decode("utf-8", "replace")
    if len(segment) != declared:
        chars = len(segment.decode("utf-8", "replace"))
        hint = " (the length counts characters)" if chars == declared else ""
        raise Reject(
            "length_mismatch", f"declared {declared}, segment has {len(segment)} bytes{hint}"
        )
    if not _HEX4.fullmatch(crc_field):
        raise Reject("bad_crc_field", f"CRC field {crc_field!r}")
    got = int(crc_field, 16)
    want = crc_hj212(segment)
    if got != want:
        if got == crc_modbus(segment):
            raise Reject(
                "crc_modbus", f"{crc_field} is CRC-16/MODBUS; App.A gives {want:04X}", modbus=True
            )
        raise Reject(
            "crc_mismatch",
            f"{crc_field}; App.A gives {want:04X}, MODBUS {crc_modbus(segment):04X}",
        )
    # A policy limit, checked only once the packet is known to be intact.
    if declared > MAX_SEGMENT:
        raise Reject("segment_too_long", f"{declared} bytes > {MAX_SEGMENT}")
    return segment, crc_field


# ---------------------------------------------------------------- data segment (spec §3)


def parse_header(text: str) -> tuple[dict[str, str], str]:
    """Split ``key=value;...;CP=...`` into the header map and the raw CP value."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if text.startswith("CP=", pos):
            return fields, text[pos + 3 :]
        end = text.find(";", pos)
        part = text[pos:] if end < 0 else text[pos:end]
        pos = len(text) if end < 0 else end + 1
        if part == "":
            continue  # ';;' in the header: an empty entry, not a malformed one
        if "=" not in part:
            raise Reject("bad_field", f"header entry {part!r} has no '='")
        key, value = part.split("=", 1)
        fields.setdefault(key, value)
    raise Reject("missing_field", "no CP field")


def check_time(key: str, value: str) -> None:
    if not (len(value) in (14, 17) and value.isascii() and value.isdigit()):
        raise Reject("bad_time", f"{key}={value!r} is not YYYYMMDDhhmmss[zzz]")
    try:
        _dt.datetime(
            int(value[0:4]), int(value[4:6]), int(value[6:8]),
            int(value[8:10]), int(value[10:12]), int(value[12:14]),
        )  # fmt: skip
    except ValueError as exc:
        raise Reject("bad_time", f"{key}={value!r}: {exc}") from None


def iso_time(value: str) -> str:
    t = f"{value[0:4]}-{value[4:6]}-{value[6:8]}T{value[8:10]}:{value[10:12]}:{value[12:14]}"
    if len(value) == 17 and value[14:] != "000":
        t += "." + value[14:]
    return t + "+08:00"


def split_cp(cp: str) -> list[str]:
    """CP entries, split on ';' and ',' outside //text//."""
    if not (cp.startswith("&&") and cp.endswith("&&") and len(cp) >= 4):
        raise Reject("bad_cp", "CP is not '&&...&&'")
    body = cp[2:-2]
    entries: list[str] = []
    cur: list[str] = []
    in_text = False
    i = 0
    while i < len(body):
        if body.startswith("//", i):
            in_text = not in_text
            cur.append("//")
            i += 2
            continue
        c = body[i]
        if not in_text and c in ";,":
            entries.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if in_text:
        raise Reject("bad_cp", "unterminated //text//")
    if body:
        entries.append("".join(cur))
    return entries


def decode_segment(segment: bytes) -> dict[str, Any]:
    try:
        text = segment.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Reject("not_utf8", str(exc)) from None
    fields, cp = parse_header(text)
    for name in REQUIRED[:-1]:
        if name not in fields:
            raise Reject("missing_field", f"no {name}")
    cn = fields["CN"]
    if not (len(cn) == 4 and cn.isascii() and cn.isdigit()):
        raise Reject("bad_cn", f"CN={cn!r}")
    version = "2005"
    if "Flag" in fields:
        raw = fields["Flag"]
        if not (raw.isascii() and raw.isdigit() and 0 <= int(raw) <= 255):
            raise Reject("bad_flag", f"Flag={raw!r}")
        flag = int(raw)
        if flag >> 2 not in VERSIONS:
            raise Reject("unsupported_version", f"Flag={flag}: version bits {flag >> 2}")
        version = VERSIONS[flag >> 2]
        if flag & 2:
            for name in ("PNUM", "PNO"):
                if name not in fields:
                    raise Reject("missing_field", f"split packet (Flag={flag}) without {name}")
            pnum, pno = fields["PNUM"], fields["PNO"]
            if not (pnum.isascii() and pnum.isdigit() and pno.isascii() and pno.isdigit()):
                raise Reject("bad_packet_number", f"PNUM={pnum!r} PNO={pno!r}")
            if not 1 <= int(pno) <= int(pnum):
                raise Reject("bad_packet_number", f"PNUM={pnum} PNO={pno}")
    pairs: list[tuple[str, str]] = []
    for entry in split_cp(cp):
        if entry == "":
            continue  # an empty item, e.g. the ';' many devices leave before the closing '&&'
        if "=" not in entry:
            raise Reject("bad_cp", f"CP entry {entry!r} has no '='")
        key, value = entry.split("=", 1)
        pairs.append((key, value))
    codes: set[str] = set()
    data_time: str | None = None
    for key, value in pairs:
        suffix = key.rsplit("-", 1)[1] if "-" in key else None
        if suffix in NUMERIC_SUFFIXES and not _NUMBER.fullmatch(value):
            raise Reject("bad_value", f"{key}={value!r} is not a number")
        if suffix in INTEGER_SUFFIXES and not _INTEGER.fullmatch(value):
            raise Reject("bad_value", f"{key}={value!r} is not an integer")
        if key in TIME_KEYS or suffix in TIME_SUFFIXES:
            check_time(key, value)
        if key == "DataTime" and data_time is None:
            data_time = iso_time(value)
        if suffix is not None:
            code = key.split("-", 1)[0]
            codes.add(CODE_2005_TO_2017.get(code, code))
    return {
        "ok": True,
        "mn": fields["MN"],
        "st": fields["ST"],
        "cn": cn,
        "version": version,
        "data_time": data_time,
        "codes": sorted(codes),
    }


def analyse(frame: str) -> tuple[dict[str, Any], str]:
    """(expectation, human-readable detail) for one frame."""
    try:
        segment, _ = split_frame(frame)
        expect = decode_segment(segment)
    except Reject as exc:
        return {"ok": False, "error": exc.code, **exc.extra}, exc.detail
    return expect, "ok"


def derive(frame: str) -> dict[str, Any]:
    return analyse(frame)[0]


# ---------------------------------------------------------------- the corpus file


def load(path: Path = CORPUS) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def render(records: list[dict[str, Any]]) -> str:
    out = []
    for rec in records:
        ordered = {"frame": rec["frame"], "source": rec["source"], "expect": rec["expect"]}
        if rec.get("note"):
            ordered["note"] = rec["note"]
        out.append(json.dumps(ordered, ensure_ascii=False))
    return "\n".join(out) + "\n"


def rederive(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**rec, "expect": derive(str(rec["frame"]))} for rec in records]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", type=Path, default=CORPUS)
    ap.add_argument("--write", action="store_true", help="rewrite the expectations in place")
    ap.add_argument("--explain", action="store_true", help="print each frame's verdict")
    args = ap.parse_args(argv)
    records = load(args.path)
    fresh = rederive(records)
    if args.explain:
        for rec in fresh:
            _, detail = analyse(str(rec["frame"]))
            exp = rec["expect"]
            verdict = "ok" if exp["ok"] else exp["error"]
            print(f"{verdict:18} {rec['source']}  {detail}  {str(rec['frame'])[:60]}")
    diffs = 0
    for old, new in zip(records, fresh, strict=True):
        if old.get("expect") != new["expect"]:
            diffs += 1
            print(
                f"DIFF {old['source']}\n  frame: {old['frame']}\n  stored:  "
                f"{json.dumps(old.get('expect'), ensure_ascii=False)}\n  derived: "
                f"{json.dumps(new['expect'], ensure_ascii=False)}"
            )
    text = render(fresh)
    if args.write:
        args.path.write_text(text, encoding="utf-8")
        print(f"wrote {len(fresh)} records to {args.path}")
        return 0
    if diffs == 0 and args.path.read_text(encoding="utf-8") != text:
        print("expectations agree, but the file is not in canonical form (run --write)")
        return 1
    print(f"{len(records)} frames, {diffs} differing expectation(s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
