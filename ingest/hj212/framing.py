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

from collections.abc import Iterator
from dataclasses import dataclass

from ingest.hj212.errors import DecodeErrorCode

HEADER = b"##"
_CRC_LEN = 4


@dataclass(frozen=True, slots=True)
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


def _ends_packet(buf: bytes, i: int) -> bool:
    if i >= len(buf):
        return True
    c = buf[i]
    return c in (0x0D, 0x0A) or buf.startswith(HEADER, i)


def _has_break(buf: bytes, start: int, end: int) -> bool:
    # A line break never belongs inside a packet: it marks where the packet really ends.
    return buf.find(b"\n", start, end) >= 0 or buf.find(b"\r", start, end) >= 0


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


def iter_frames(buf: bytes) -> Iterator[RawFrame | FramingError]:
    """Yield every packet in ``buf`` in order, and an error for every unusable stretch."""
    pos = 0
    n = len(buf)
    if not buf.strip():
        yield FramingError(DecodeErrorCode.EMPTY, "no bytes to decode", buf)
        return
    while pos < n:
        start = buf.find(HEADER, pos)
        if start < 0:
            rest = buf[pos:]
            if rest.strip():
                yield FramingError(
                    DecodeErrorCode.NO_HEADER,
                    f"{len(rest.strip())} bytes without a '##' packet header",
                    rest,
                )
            return
        warnings: tuple[str, ...] = ()
        if buf[pos:start].strip():
            warnings = (f"skipped {len(buf[pos:start].strip())} bytes before '##'",)
        length_field = buf[start + 2 : start + 6]
        body = start + 6
        if len(length_field) < 4 or not length_field.isdigit():
            end = _extent_end(buf, start + 2)
            yield FramingError(
                DecodeErrorCode.BAD_LENGTH_FIELD,
                f"length field {length_field!r} is not 4 decimal digits",
                buf[start:end],
            )
            pos = _skip_tail(buf, end)
            continue
        declared = int(length_field)
        seg_end = body + declared
        crc_end = seg_end + _CRC_LEN
        if (
            crc_end <= n
            and _ends_packet(buf, crc_end)
            and not _has_break(buf, body, crc_end)
            and HEADER not in buf[seg_end:crc_end]
        ):
            yield RawFrame(
                raw=buf[start:crc_end],
                segment=buf[body:seg_end],
                crc_field=buf[seg_end:crc_end],
                declared_length=declared,
                warnings=warnings,
            )
            pos = _skip_tail(buf, crc_end)
            continue
        end = _extent_end(buf, body)
        packet = buf[body:end].rstrip(b" \t")
        if len(packet) - _CRC_LEN == declared:
            # Only trailing blanks before the line end: the packet itself is consistent.
            yield RawFrame(
                raw=buf[start : body + len(packet)],
                segment=packet[:-_CRC_LEN],
                crc_field=packet[-_CRC_LEN:],
                declared_length=declared,
                warnings=(*warnings, "blanks before the packet tail"),
            )
        elif len(packet) < _CRC_LEN:
            yield FramingError(
                DecodeErrorCode.TRUNCATED,
                f"declared {declared:04d} bytes but only {len(packet)} bytes follow the "
                "length field, not enough for a CRC",
                buf[start:end],
            )
        else:
            yield FramingError(
                DecodeErrorCode.LENGTH_MISMATCH,
                _length_detail(declared, packet[:-_CRC_LEN]),
                buf[start:end],
            )
        pos = _skip_tail(buf, end)
