"""Build HJ 212 packets: data uploads (split into PNUM/PNO parts when long) and replies.

Used by the service (9014 data replies to uploads that ask for one) and by the simulator
(data uploads, 9011 request replies). Numbers are written without exponent notation, as
the standard's N14.2-style fields require, and round-trip exactly through the decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from ingest.china_time import CHINA_TZ
from ingest.hj212.crc import crc_hj212, crc_modbus
from ingest.hj212.model import (
    FLAG_ACK,
    FLAG_SPLIT,
    VERSION_FLAG_BASE,
    CpValue,
    CrcVariant,
    Hj212Frame,
    Version,
)
from ingest.hj212.timefmt import format_hj212_time

MAX_CP_BYTES = 950  # HJ 212-2017 Table 3: the CP area holds at most 950 bytes
MAX_SEGMENT_BYTES = 1024  # HJ 212-2017 Table 2
_NEEDS_TEXT_QUOTES = frozenset(";,=&")


def format_number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def format_value(value: CpValue) -> str:
    if isinstance(value, datetime):
        # The standard's YYYYMMDDhhmmss: sub-second precision is dropped, not sent as a
        # 17-digit time that strict receivers reject (only QN carries milliseconds).
        return format_hj212_time(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return format_number(value)
    if any(c in _NEEDS_TEXT_QUOTES for c in value) or value.startswith("//"):
        return f"//{value}//"
    return value


def _field_value(suffix: str, value: CpValue) -> str:
    # Info text is log text: always //quoted// so that it reads back as text, never a number.
    if suffix.endswith("Info") and isinstance(value, str):
        return f"//{value}//"
    return format_value(value)


def encode_cp(
    fields: Mapping[str, CpValue], pollutants: Mapping[str, Mapping[str, CpValue]]
) -> str:
    """The CP data area (without ``CP=&&`` and ``&&``): plain fields, then one group per code."""
    items = [f"{key}={format_value(v)}" for key, v in fields.items()]
    for code, values in pollutants.items():
        group = ",".join(
            f"{code}-{suffix}={_field_value(suffix, v)}" for suffix, v in values.items()
        )
        if group:
            items.append(group)
    return ";".join(items)


def encode_segment(
    *,
    st: str,
    cn: str,
    pw: str,
    mn: str,
    cp: str,
    qn: str | None = None,
    flag: int | None = None,
    pnum: int | None = None,
    pno: int | None = None,
) -> str:
    head = []
    if qn is not None:
        head.append(f"QN={qn}")
    head += [f"ST={st}", f"CN={cn}", f"PW={pw}", f"MN={mn}"]
    if flag is not None:
        head.append(f"Flag={flag}")
    if pnum is not None and pno is not None:
        head += [f"PNUM={pnum}", f"PNO={pno}"]
    return ";".join(head) + f";CP=&&{cp}&&"


def encode_packet(segment: str, *, crc_variant: CrcVariant = "hj212") -> bytes:
    """Wrap a data segment: ``##``, UTF-8 byte length, segment, CRC, CRLF."""
    data = segment.encode("utf-8")
    crc = crc_hj212(data) if crc_variant == "hj212" else crc_modbus(data)
    return b"##%04d%s%04X\r\n" % (len(data), data, crc)


def encode_frame(frame: Hj212Frame, *, crc_variant: CrcVariant | None = None) -> bytes:
    """Encode a decoded frame back to a packet (the inverse of ``decode_frame``)."""
    segment = encode_segment(
        st=frame.st,
        cn=frame.cn,
        pw=frame.pw,
        mn=frame.mn,
        qn=frame.qn,
        flag=frame.flag,
        pnum=frame.pnum,
        pno=frame.pno,
        cp=encode_cp(frame.fields, frame.pollutants),
    )
    return encode_packet(segment, crc_variant=crc_variant or frame.crc_variant)


def make_qn(when: datetime) -> str:
    """A request number ``YYYYMMDDhhmmsszzz`` in China time."""
    return format_hj212_time(when, with_ms=True)


def version_flag(version: Version, *, ack: bool = False, split: bool = False) -> int:
    return VERSION_FLAG_BASE[version] | (FLAG_ACK if ack else 0) | (FLAG_SPLIT if split else 0)


def data_packets(
    *,
    st: str,
    cn: str,
    pw: str,
    mn: str,
    data_time: datetime,
    pollutants: Mapping[str, Mapping[str, CpValue]],
    version: Version = "2017",
    ack: bool = True,
    qn_time: datetime | None = None,
    extra_fields: Mapping[str, CpValue] | None = None,
    max_cp_bytes: int = MAX_CP_BYTES,
    crc_variant: CrcVariant = "hj212",
) -> list[bytes]:
    """Data upload packets (CN 2011/2051/2061/2031/...) for one DataTime.

    When the CP area would exceed ``max_cp_bytes`` the pollutant groups are spread over
    several packets with the split bit, PNUM/PNO, their own QN (1 ms apart) and the same
    DataTime, never cutting inside a group (Appendix C.49/C.50).
    """
    fields: dict[str, CpValue] = {"DataTime": data_time}
    if extra_fields:
        fields.update(extra_fields)
    # The whole segment must also stay within 1024 bytes: budget for the longest header.
    longest_head = encode_segment(
        st=st, cn=cn, pw=pw, mn=mn, qn="0" * 17, flag=255, pnum=9999, pno=9999, cp=""
    )
    cp_budget = min(max_cp_bytes, MAX_SEGMENT_BYTES - len(longest_head.encode()))
    groups = _pack_groups(fields, pollutants, cp_budget)
    base_qn_time = (qn_time or data_time).astimezone(CHINA_TZ)
    split = len(groups) > 1
    packets = []
    for i, group in enumerate(groups, start=1):
        segment = encode_segment(
            st=st,
            cn=cn,
            pw=pw,
            mn=mn,
            qn=make_qn(base_qn_time + timedelta(milliseconds=i - 1)),
            flag=version_flag(version, ack=ack, split=split),
            pnum=len(groups) if split else None,
            pno=i if split else None,
            cp=encode_cp(fields, group),
        )
        packets.append(encode_packet(segment, crc_variant=crc_variant))
    return packets


def _pack_groups(
    fields: Mapping[str, CpValue],
    pollutants: Mapping[str, Mapping[str, CpValue]],
    max_cp_bytes: int,
) -> list[dict[str, Mapping[str, CpValue]]]:
    groups: list[dict[str, Mapping[str, CpValue]]] = [{}]
    for code, values in pollutants.items():
        candidate = {**groups[-1], code: values}
        if groups[-1] and len(encode_cp(fields, candidate).encode()) > max_cp_bytes:
            groups.append({code: values})
        else:
            groups[-1] = candidate
    return groups


def _reply(request: Hj212Frame, cn: str, cp: str) -> bytes:
    """A system-interaction packet (ST=91) answering ``request``: same QN, PW and MN, and the
    Flag of the request's edition without the ack bit (§6.5)."""
    return encode_packet(
        encode_segment(
            qn=request.qn,
            st="91",
            cn=cn,
            pw=request.pw,
            mn=request.mn,
            flag=version_flag(request.version),
            cp=cp,
        )
    )


def reply_9014(upload: Hj212Frame) -> bytes:
    """Data reply to an upload that asked for one, with an empty CP."""
    return _reply(upload, "9014", "")


def reply_9013(notification: Hj212Frame) -> bytes:
    """Notification reply (to a 1013 time-calibration request, a 2012/2022 notice)."""
    return _reply(notification, "9013", "")


def reply_9011(request: Hj212Frame, qn_rtn: int = 1) -> bytes:
    """Request reply from the field side, with a QnRtn code (Table 7)."""
    return _reply(request, "9011", f"QnRtn={qn_rtn}")


def reply_9012(request: Hj212Frame, exe_rtn: int = 1) -> bytes:
    """Execution result from the field side (Table 6)."""
    return _reply(request, "9012", f"ExeRtn={exe_rtn}")
