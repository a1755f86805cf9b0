"""Cut HJ 212 packets out of a byte stream (a data logger's TCP connection) as bytes arrive.

A TCP read holds any part of the stream: half a packet, three packets, junk and a packet. The
framer keeps what it cannot cut yet and hands out *pieces*: a packet from ``##`` through its
CRC (the tail is dropped), or a stretch of bytes that is not one (junk, a packet whose
declared length does not fit). Pieces go on to ``ingest.hj212.framing.split_frames``, which
reports what is wrong with each, so the stream and a broker payload get the same diagnosis.

When a packet is complete (the same rule as ``split_frames``): the declared length lands on
four CRC characters followed by a plausible end, which is CR, LF, the next ``##``, or the end
of what has arrived, this last only when the check code holds (else more may be on its way).
A packet whose declared length does not fit ends at its first line break
or the next ``##``; until one arrives it is incomplete, up to the longest packet the
four-digit length allows (``MAX_PACKET_BYTES``, 10 KB), so a packet waits on at most that;
junk without any ``##`` is handed out at each line break
and whenever ``max_junk_bytes`` have gathered, so no stream makes the buffer grow.
"""

from __future__ import annotations

from ingest.hj212.crc import crc_hj212, crc_modbus

HEADER = b"##"
_CRC_LEN = 4
# The longest packet the four-digit length allows: '##', the length, 9999 bytes, the CRC.
MAX_PACKET_BYTES = 2 + 4 + 9999 + _CRC_LEN
_LINE_ENDS = b"\r\n"


class StreamFramer:
    """The framing state of one connection."""

    __slots__ = ("_buf", "max_junk_bytes")

    def __init__(self, max_junk_bytes: int = 4096) -> None:
        self._buf = bytearray()
        self.max_junk_bytes = max_junk_bytes

    @property
    def pending(self) -> int:
        """Bytes received that are not yet part of a handed-out piece."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the pieces they complete, in stream order."""
        buf = self._buf
        buf += data
        pieces: list[bytes] = []
        while buf:
            start = buf.find(HEADER)
            if start != 0:
                junk_end = self._junk_end(start)
                if junk_end == 0:
                    break
                junk = bytes(buf[:junk_end])
                del buf[:junk_end]
                if junk.strip():
                    pieces.append(junk)
                continue
            end = self._packet_end()
            if end is None:
                break
            piece_end, consumed = end
            pieces.append(bytes(buf[:piece_end]))
            del buf[:consumed]
        return pieces

    def flush(self) -> bytes:
        """What is left when the connection ends or a packet takes too long: an incomplete
        packet or junk, for the record (``split_frames`` reports it as truncated or the like)."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest if rest.strip() else b""

    def _junk_end(self, header_at: int) -> int:
        """How many leading bytes (before any packet) to hand out as junk now; 0: wait."""
        buf = self._buf
        if header_at > 0:
            return header_at
        # No '##' yet. A trailing '#' may be half of one: keep it.
        limit = len(buf) - 1 if buf.endswith(b"#") else len(buf)
        line_end = max(buf.rfind(b"\n", 0, limit), buf.rfind(b"\r", 0, limit))
        if line_end >= 0:
            return line_end + 1
        if limit >= self.max_junk_bytes or (limit and buf[:limit].isspace()):
            return limit
        return 0

    def _packet_end(self) -> tuple[int, int] | None:
        """(end of the piece, bytes to consume) for the packet at the start of the buffer, or
        None while it is incomplete."""
        buf = self._buf
        n = len(buf)
        if n < 6:
            return None
        length_field = bytes(buf[2:6])
        if length_field.isdigit():
            seg_end = 6 + int(length_field)
            crc_end = seg_end + _CRC_LEN
            if crc_end <= n:
                fits = (
                    (crc_end == n or buf[crc_end] in _LINE_ENDS or buf.startswith(HEADER, crc_end))
                    and buf.find(b"\n", 6, crc_end) < 0
                    and buf.find(b"\r", 6, crc_end) < 0
                    and buf.find(b"#", seg_end, crc_end) < 0
                )
                if fits and crc_end == n and not _crc_holds(buf, seg_end, crc_end):
                    # Ending just where the declared length says, and its check code wrong: as
                    # likely a packet longer than declared whose rest has not arrived. Wait
                    # for its line end or the next '##', as for one that does not fit.
                    fits = False
                if fits:
                    return crc_end, _after_tail(buf, crc_end)
        # The declared length does not fit (or is not a number): the packet ends at its first
        # line break or at the next '##'; split_frames says what is wrong with it.
        ends = [j for j in (buf.find(b"\r", 2), buf.find(b"\n", 2), buf.find(HEADER, 2)) if j >= 0]
        if not ends:
            if n > MAX_PACKET_BYTES:  # no packet is this long: hand it out, bounded
                return MAX_PACKET_BYTES, MAX_PACKET_BYTES
            return None
        end = min(ends)
        return end, _after_tail(buf, end)


def _crc_holds(buf: bytearray, seg_end: int, crc_end: int) -> bool:
    """Whether the four characters at ``seg_end`` are the segment's check code (either
    variant: which one a logger may use is the ingest stage's decision)."""
    try:
        received = int(bytes(buf[seg_end:crc_end]), 16)
    except ValueError:
        return False
    segment = bytes(buf[6:seg_end])
    return received in (crc_hj212(segment), crc_modbus(segment))


def _after_tail(buf: bytearray, i: int) -> int:
    if buf.startswith(b"\r\n", i):
        return i + 2
    if i < len(buf) and buf[i] in _LINE_ENDS:
        return i + 1
    return i
