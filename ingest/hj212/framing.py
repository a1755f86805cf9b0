"""Split a byte stream (a broker payload or a line of a capture) into HJ 212 packets.

Packet layout (HJ 212-2017 §6.3.1): ``## LLLL <segment> CCCC <CR><LF>``. Real traffic also
has LF-only tails, no tail at all, and several packets back to back; after any failure the
scanner resynchronises at the next ``##``. The declared length counts UTF-8 *bytes*.

The scanner trusts the declared length when the four characters after the segment are
followed by a plausible end (CR, LF, the next ``##`` or the end of input). Otherwise it finds
the real end of the packet (the next line break or ``##``) to report the precise error:
a wrong length, a truncated packet, or a length that counts characters instead of bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.hj212.errors import DecodeErrorCode

HEADER = b"##"
_CRC_LEN = 4
_END_BYTES = (0x0D, 0x0A)  # CR, LF; a line break never belongs inside a packet


@dataclass(slots=True)  # not frozen: frozen dataclasses are slow to build on the hot path
class RawFrame:
    """One packet cut out of the input, not yet checked beyond its framing."""

    raw: bytes  # the packet from '##' through the CRC (tail excluded)
    segment: bytes
    crc_field: bytes
    declared_length: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FramingError:
    """Bytes that could not be cut into a packet, with the reason."""

    code: DecodeErrorCode
    detail: str
    raw: bytes


def _skip_tail(buf: bytes, i: int) -> int:
    if buf.startswith(b"\r\n", i):
        return i + 2
    if i < len(buf) and buf[i] in (0x0D, 0x0A):
        return i + 1
    return i


def _extent_end(buf: bytes, body: int) -> int:
    """Where the packet whose segment starts at ``body`` really ends."""
    candidates = [len(buf)]
    for marker in (b"\r", b"\n", HEADER):
        j = buf.find(marker, body)
        if j >= 0:
            candidates.append(j)
    return min(candidates)


def _length_detail(declared: int, segment: bytes) -> str:
    actual = len(segment)
    detail = f"declared {declared:04d}, data segment has {actual} bytes"
    try:
        chars = len(segment.decode("utf-8"))
    except UnicodeDecodeError:
        return detail
    if chars != actual and chars == declared:
        detail += f" ({chars} characters: the length counts characters, not UTF-8 bytes)"
    return detail


def split_frames(buf: bytes) -> list[RawFrame | FramingError]:
    """Every packet in ``buf`` in order, and an error for every unusable stretch."""
    out: list[RawFrame | FramingError] = []
    pos = 0
    n = len(buf)
    if not buf or buf.isspace():  # isspace: no copy of the buffer, unlike strip()
        return [FramingError(DecodeErrorCode.EMPTY, "no bytes to decode", buf)]
    while pos < n:
        start = buf.find(HEADER, pos)
        if start < 0:
            rest = buf[pos:]
            if rest.strip():
                detail = f"{len(rest.strip())} bytes without a '##' packet header"
                out.append(FramingError(DecodeErrorCode.NO_HEADER, detail, rest))
            return out
        warnings: tuple[str, ...] = ()
        if start > pos and buf[pos:start].strip():
            warnings = (f"skipped {len(buf[pos:start].strip())} bytes before '##'",)
        length_field = buf[start + 2 : start + 6]
        body = start + 6
        if len(length_field) < 4 or not length_field.isdigit():
            end = _extent_end(buf, start + 2)
            detail = f"length field {length_field!r} is not 4 decimal digits"
            out.append(FramingError(DecodeErrorCode.BAD_LENGTH_FIELD, detail, buf[start:end]))
            pos = _skip_tail(buf, end)
            continue
        declared = int(length_field)
        seg_end = body + declared
        crc_end = seg_end + _CRC_LEN
        # Fast path: the declared length lands on 4 CRC characters followed by a plausible end
        # (inlined: this runs for every packet).
        if (
            crc_end <= n
            and (crc_end == n or buf[crc_end] in _END_BYTES or buf.startswith(HEADER, crc_end))
            and (
                buf.find(b"\n", body, crc_end) < 0
                and buf.find(b"\r", body, crc_end) < 0
                and buf.find(b"#", seg_end, crc_end) < 0
            )
        ):
            raw = buf if start == 0 and crc_end == n else buf[start:crc_end]
            out.append(RawFrame(raw, buf[body:seg_end], buf[seg_end:crc_end], declared, warnings))
            pos = _skip_tail(buf, crc_end)
            continue
        out.append(_diagnose(buf, start, body, declared, warnings))
        pos = _skip_tail(buf, _extent_end(buf, body))
    return out


def _diagnose(
    buf: bytes, start: int, body: int, declared: int, warnings: tuple[str, ...]
) -> RawFrame | FramingError:
    """The declared length does not fit: find the packet's real end and say what is wrong."""
    end = _extent_end(buf, body)
    packet = buf[body:end].rstrip(b" \t")
    if len(packet) - _CRC_LEN == declared:
        # Only trailing blanks before the line end: the packet itself is consistent.
        return RawFrame(
            raw=buf[start : body + len(packet)],
            segment=packet[:-_CRC_LEN],
            crc_field=packet[-_CRC_LEN:],
            declared_length=declared,
            warnings=(*warnings, "blanks before the packet tail"),
        )
    if len(packet) < _CRC_LEN:
        return FramingError(
            DecodeErrorCode.TRUNCATED,
            f"declared {declared:04d} bytes but only {len(packet)} bytes follow the "
            "length field, not enough for a CRC",
            buf[start:end],
        )
    return FramingError(
        DecodeErrorCode.LENGTH_MISMATCH,
        _length_detail(declared, packet[:-_CRC_LEN]),
        buf[start:end],
    )
