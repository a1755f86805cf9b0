"""Parse an HJ 212 data segment: the header fields and the CP data area (§6.3.2, §6.3.3).

The header is read as an order-free ``key=value`` map because real packets reorder fields;
names stay case-sensitive as the standard says (``FLAG`` is not ``Flag``: it is reported as
an unknown field). The CP area is split on ``;`` and ``,`` (both separate entries; ``,``
joins entries of one pollutant), then at the first ``=``, then the key at the first ``-``.
``//text//`` values are cut out first because log text may contain ``;``.
"""

from __future__ import annotations

from datetime import datetime
from math import isfinite
from typing import NamedTuple

from ingest.hj212.codes import codes_2005_to_2017
from ingest.hj212.errors import DecodeErrorCode, Hj212DecodeError
from ingest.hj212.model import FLAG_SPLIT, VERSION_BITS, CpValue, Hj212Frame, Version
from ingest.hj212.timefmt import parse_hj212_time

HEAD_FIELDS = frozenset({"QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"})
REQUIRED_HEAD = ("ST", "CN", "PW", "MN")

# Value types by pollutant-field suffix (Table 4 plus suffixes seen in the field).
NUMERIC_SUFFIXES = frozenset(
    {
        "Rtd", "Avg", "Min", "Max", "Cou",
        "ZsRtd", "ZsAvg", "ZsMin", "ZsMax", "ZsCou",
        "Data", "DayData", "NightData", "RT",
        "Ala", "UpValue", "LowValue",
    }
)  # fmt: skip
INTEGER_SUFFIXES = frozenset({"RS", "ValidNum", "TotalNum"})
TIME_SUFFIXES = frozenset({"SampleTime"})
# Non-pollutant CP fields with a defined type; any other is kept as text.
TIME_FIELDS = frozenset(
    {"DataTime", "RestartTime", "SystemTime", "BeginTime", "EndTime", "SKCreateTime", "AlarmTime"}
)
INTEGER_FIELDS = frozenset(
    {
        "QnRtn", "ExeRtn", "RtdInterval", "MinInterval", "OverTime", "ReCount",
        "VaseNo", "Ctime", "CTime", "Stime", "WarnTime",
    }
)  # fmt: skip

_TEXT_MARK = "\x00"  # stands in for a //text// value while the area is split


def _fail(code: DecodeErrorCode, detail: str) -> Hj212DecodeError:
    return Hj212DecodeError(code, detail)


def parse_number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail(DecodeErrorCode.BAD_VALUE, f"{key}={text!r} is not a number") from None
    if not isfinite(value) or "_" in text:
        raise _fail(DecodeErrorCode.BAD_VALUE, f"{key}={text!r} is not a number")
    return value


def parse_integer(key: str, text: str) -> int:
    stripped = text.strip()
    body = stripped[1:] if stripped[:1] in "+-" else stripped
    if not body.isdigit() or not body.isascii():
        raise _fail(DecodeErrorCode.BAD_VALUE, f"{key}={text!r} is not an integer")
    return int(stripped)


def parse_time(key: str, text: str) -> datetime:
    try:
        return parse_hj212_time(text)
    except ValueError as exc:
        raise _fail(DecodeErrorCode.BAD_TIME, f"{key}: {exc}") from None


def _split_head(head: str, warnings: list[str]) -> dict[str, str]:
    entries = [e for e in head.split(";") if e]
    try:
        values = dict(e.split("=", 1) for e in entries)
    except ValueError:
        for e in entries:
            if "=" not in e and not e.isspace():
                raise _fail(DecodeErrorCode.BAD_FIELD, f"header entry {e!r} has no '='") from None
        return _split_head_slowly(entries, warnings)  # only blank entries lack '='

    unknown = values.keys() - HEAD_FIELDS
    if unknown or len(values) != len(entries):
        return _split_head_slowly(entries, warnings)
    return values


def _split_head_slowly(entries: list[str], warnings: list[str]) -> dict[str, str]:
    """The same, with a warning for every unknown or repeated field."""
    values: dict[str, str] = {}
    for entry in entries:
        if entry.isspace():
            continue
        key, _, value = entry.partition("=")
        if key not in HEAD_FIELDS:
            warnings.append(f"unknown header field {key!r}")
            continue
        if key in values:
            warnings.append(f"header field {key} repeated; the last value is used")
        values[key] = value
    return values


def _cut_texts(area: str) -> tuple[str, list[str]]:
    """Replace each //text// with a marker so that ';' inside log text does not split."""
    parts = area.split("//")
    if len(parts) % 2 == 0:
        raise _fail(DecodeErrorCode.BAD_CP, "a //text// value is not terminated")
    texts = parts[1::2]
    rebuilt = [parts[0]]
    for i, rest in enumerate(parts[2::2]):
        rebuilt.append(f"{_TEXT_MARK}{i}{_TEXT_MARK}")
        rebuilt.append(rest)
    return "".join(rebuilt), texts


def _restore_texts(text: str, texts: list[str]) -> str | None:
    """The //text// a value stood for, or None when the value holds no cut-out text."""
    if _TEXT_MARK not in text:
        return None
    pieces = text.split(_TEXT_MARK)
    # pieces alternate: outside, index, outside, index, ..., outside
    if len(pieces) == 3 and not pieces[0] and not pieces[2]:
        return texts[int(pieces[1])]
    return "".join(p if i % 2 == 0 else f"//{texts[int(p)]}//" for i, p in enumerate(pieces))


def _pollutant_value(key: str, suffix: str, text: str, texts: list[str]) -> CpValue:
    restored = _restore_texts(text, texts)
    if restored is not None:
        text = restored
        if suffix.endswith("Info"):
            return text
    if suffix in NUMERIC_SUFFIXES:
        return parse_number(key, text)
    if suffix in INTEGER_SUFFIXES:
        return parse_integer(key, text)
    if suffix in TIME_SUFFIXES:
        return parse_time(key, text)
    if suffix.endswith("Info"):
        # Info carries numbers for status and parameter codes (i12xxx, i13xxx), text for logs.
        try:
            return parse_number(key, text)
        except Hj212DecodeError:
            return text
    return text


def _plain_value(key: str, text: str, texts: list[str]) -> CpValue:
    restored = _restore_texts(text, texts)
    if restored is not None:
        text = restored
    if key in TIME_FIELDS:
        return parse_time(key, text)
    if key in INTEGER_FIELDS:
        return parse_integer(key, text)
    return text


# What a CP key means: (pollutant code in 2017 form or "" for a plain field, suffix or the
# plain field name, kind, the code as written). Keys repeat across every packet of a fleet,
# so this is computed once per distinct key instead of once per entry (the decode hot path).
_PLAIN, _NUMBER, _TEXT, _OTHER = 0, 1, 2, 3
TEXT_SUFFIXES = frozenset({"Flag", "EFlag", "SN", "ID"})  # kept verbatim
_KeyInfo = tuple[str, str, int, str]
_KEY_INFO: dict[str, _KeyInfo] = {}
_KEY_INFO_MAX = 20_000


def _key_info(key: str, entry: str) -> _KeyInfo:
    info = _KEY_INFO.get(key)
    if info is not None:
        return info
    name = key.strip()  # the standard itself writes 'i12003-Info =0' (C.42)
    code, dash, suffix = name.partition("-")
    if not code:
        raise _fail(DecodeErrorCode.BAD_CP, f"CP entry {entry!r} has an empty key")
    if not dash:
        info = ("", name, _PLAIN, "")
    else:
        new_code = codes_2005_to_2017().get(code, code)
        if suffix in NUMERIC_SUFFIXES:
            kind = _NUMBER
        elif suffix in TEXT_SUFFIXES:
            kind = _TEXT
        else:
            kind = _OTHER
        info = (new_code, suffix, kind, code)
    if len(_KEY_INFO) >= _KEY_INFO_MAX:
        _KEY_INFO.clear()  # a flood of random keys must not grow memory without bound
    _KEY_INFO[key] = info
    return info


def _parse_cp(area: str, frame: Hj212Frame) -> None:
    texts: list[str] = []
    if _TEXT_MARK in area:
        raise _fail(DecodeErrorCode.BAD_CP, "the CP area contains a NUL character")
    if "//" in area:
        area, texts = _cut_texts(area)
    # float() also accepts '1_0'; check for '_' once per area instead of once per value.
    plain_numbers = "_" not in area and not texts
    pollutants = frame.pollutants
    key_info = _KEY_INFO.get
    number_kind = _NUMBER if plain_numbers else -1  # -1: every number takes the general path
    text_kind, plain_kind = _TEXT, _PLAIN  # locals: this loop runs for every CP entry
    last_code = ""
    values: dict[str, CpValue] = {}
    for entry in area.replace(",", ";").split(";"):
        key, sep, text = entry.partition("=")
        if not sep:
            if not entry or entry.isspace():
                continue  # empty items, e.g. a trailing ';' before '&&'
            raise _fail(DecodeErrorCode.BAD_CP, f"CP entry {entry!r} has no '='")
        code, suffix, kind, written = key_info(key) or _key_info(key, entry)
        if kind == plain_kind:
            if not text and suffix in TIME_FIELDS:
                # An empty time ("DataTime=" in a command or its reply, e.g. a vendor's 5015
                # parameter query) is absent, not malformed: a data upload without one is
                # rejected by the ingest stage as missing_data_time.
                continue
            frame.fields[suffix] = _plain_value(suffix, text, texts)
            continue
        if code != last_code:  # entries of one pollutant are adjacent
            got = pollutants.get(code)
            if got is None:
                got = pollutants[code] = {}
                if written != code:
                    frame.codes_2005[code] = written
            values = got
            last_code = code
        if kind == number_kind:
            try:
                number = float(text)
            except ValueError:
                raise _fail(DecodeErrorCode.BAD_VALUE, f"{key}={text!r} is not a number") from None
            if number - number != 0.0:  # inf or nan
                raise _fail(DecodeErrorCode.BAD_VALUE, f"{key}={text!r} is not a number")
            values[suffix] = number
        elif kind == text_kind and _TEXT_MARK not in text:
            values[suffix] = text
        else:
            values[suffix] = _pollutant_value(key.strip(), suffix, text, texts)


class _Head(NamedTuple):
    """A validated header, without the QN that leads it."""

    st: str
    cn: str
    pw: str
    mn: str
    flag: int | None
    version: Version
    pnum: int | None
    pno: int | None
    qn: str | None  # a QN found after the first field (reordered headers)
    warnings: tuple[str, ...]


# A data logger sends the same header but for its QN in every packet, so the validated header
# is cached by the text after "QN=...;" (the decode hot path). Bounded: cleared when full.
_HEADS: dict[str, _Head] = {}
_HEADS_MAX = 50_000


def _parse_head(head_text: str) -> _Head:
    warnings: list[str] = []
    head = _split_head(head_text, warnings)
    missing = [name for name in REQUIRED_HEAD if name not in head]
    if missing:
        raise _fail(DecodeErrorCode.MISSING_FIELD, f"{', '.join(missing)} missing")
    cn = head["CN"]
    if len(cn) != 4 or not cn.isdigit() or not cn.isascii():
        raise _fail(DecodeErrorCode.BAD_CN, f"CN={cn!r} is not a 4-digit command code")
    flag: int | None = None
    version: Version = "2005"
    flag_text = head.get("Flag")
    if flag_text is not None:
        if not flag_text.isdigit() or not flag_text.isascii() or int(flag_text) > 255:
            raise _fail(DecodeErrorCode.BAD_FLAG, f"Flag={flag_text!r} is not an integer 0-255")
        flag = int(flag_text)
        found = VERSION_BITS.get(flag >> 2)
        if found is None:
            raise _fail(
                DecodeErrorCode.UNSUPPORTED_VERSION,
                f"Flag={flag} has version bits {flag >> 2:06b}",
            )
        version = found
    split = flag is not None and bool(flag & FLAG_SPLIT)
    pnum_text, pno_text = head.get("PNUM"), head.get("PNO")
    if split and (pnum_text is None or pno_text is None):
        raise _fail(
            DecodeErrorCode.MISSING_FIELD, "PNUM/PNO missing on a split packet (Flag D bit)"
        )
    pnum = pno = None
    if pnum_text is not None or pno_text is not None:
        if not split:
            warnings.append("PNUM/PNO present without the Flag split bit")
        pnum, pno = _packet_numbers(pnum_text, pno_text)
    return _Head(
        head["ST"], cn, head["PW"], head["MN"], flag, version, pnum, pno, head.get("QN"),
        tuple(warnings),
    )  # fmt: skip


def _head_of(head_text: str) -> tuple[str | None, _Head]:
    """(QN, the rest of the header), using the cache when the header leads with its QN."""
    if not head_text.startswith("QN="):
        parsed = _parse_head(head_text)
        return parsed.qn, parsed
    first, _, rest = head_text.partition(";")
    cached = _HEADS.get(rest)
    if cached is None:
        cached = _parse_head(rest)
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        _HEADS[rest] = cached
    if cached.qn is not None:  # QN given twice: the last one wins, as for other fields
        return cached.qn, cached._replace(warnings=(*cached.warnings, _REPEATED_QN))
    return first[3:], cached


_REPEATED_QN = "header field QN repeated; the last value is used"


def parse_segment(text: str) -> Hj212Frame:
    """Parse a data segment (already checked for length and CRC) into a frame."""
    cp_at = text.find("CP=&&")
    if cp_at < 0:
        if "CP=" in text:
            raise _fail(DecodeErrorCode.BAD_CP, "CP does not start with '&&'")
        raise _fail(DecodeErrorCode.MISSING_FIELD, "CP is missing")
    rest = text[cp_at + 5 :]
    close = rest.rfind("&&")
    if close < 0:
        raise _fail(DecodeErrorCode.BAD_CP, "CP is not closed with '&&'")
    if rest[close + 2 :].strip():
        raise _fail(DecodeErrorCode.BAD_CP, f"text after the closing '&&': {rest[close + 2 :]!r}")
    qn, h = _head_of(text[:cp_at])
    frame = Hj212Frame(
        st=h.st,
        cn=h.cn,
        pw=h.pw,
        mn=h.mn,
        qn=qn,
        flag=h.flag,
        version=h.version,
        pnum=h.pnum,
        pno=h.pno,
        warnings=list(h.warnings),
    )
    _parse_cp(rest[:close], frame)
    return frame


def parse_header(text: str) -> Hj212Frame:
    """The header of a data segment as a frame without CP values: enough to attribute a
    packet and answer it (a receiver that forwards packets undecoded, like the TCP gateway).
    Raises Hj212DecodeError when the header is unusable."""
    cp_at = text.find("CP=")
    qn, h = _head_of(text if cp_at < 0 else text[:cp_at])
    return Hj212Frame(
        st=h.st, cn=h.cn, pw=h.pw, mn=h.mn, qn=qn, flag=h.flag, version=h.version,
        pnum=h.pnum, pno=h.pno,
    )  # fmt: skip


def _packet_numbers(pnum_text: str | None, pno_text: str | None) -> tuple[int, int]:
    if (
        pnum_text is None
        or pno_text is None
        or not (pnum_text.isdigit() and pno_text.isdigit())
        or not (pnum_text.isascii() and pno_text.isascii())
        or not 1 <= int(pno_text) <= int(pnum_text)
    ):
        raise _fail(
            DecodeErrorCode.BAD_PACKET_NUMBER,
            f"PNUM={pnum_text!r}, PNO={pno_text!r}: need integers with 1 <= PNO <= PNUM",
        )
    return int(pnum_text), int(pno_text)
