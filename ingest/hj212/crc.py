"""The HJ 212 check code (Appendix A) and the CRC-16/MODBUS variant seen in the field.

Appendix A is not CRC-16/MODBUS: each byte is XORed into the register's *high* byte shifted
down (``reg = (reg >> 8) ^ byte``) before the eight shift rounds, so the register entering
the rounds is only 8 bits wide. The computation therefore has one byte of state:

    s[0] = 0xFF;  s[i+1] = H(s[i] ^ b[i]);  crc = T(s[n-1] ^ b[n-1])

where T is the CRC-16 (poly 0xA001) table and H(x) = T(x) >> 8. T is linear over GF(2), so
H is too, and unrolling the recurrence gives

    s[n-1] ^ b[n-1] = H^(n-1)(0xFF)  XOR  (XOR over i of H^(n-1-i)(b[i]))

H has period 8 (H^8 is the identity; checked when this module loads), so H^d depends only on
d mod 8: the bytes whose distance from the end agree mod 8 can be XORed together first. That
is an XOR-fold of the message's 8-byte words aligned to its end, done on one Python integer
in a few C-level operations, then 8 table lookups: the decode hot path does no Python loop
over the bytes.

No CRC library implements this non-standard variant, hence the hand-written code; the plain
byte-by-byte algorithm is kept as the reference the tests compare against.
"""

from __future__ import annotations

_POLY = 0xA001


def _rounds(reg: int) -> int:
    for _ in range(8):
        lsb = reg & 1
        reg >>= 1
        if lsb:
            reg ^= _POLY
    return reg


# The CRC-16 table for poly 0xA001 (reflected), shared by both algorithms.
_TABLE: tuple[int, ...] = tuple(_rounds(i) for i in range(256))
# Only the high byte of a table entry feeds the next Appendix A step (``reg >> 8``).
_NEXT: tuple[int, ...] = tuple(v >> 8 for v in _TABLE)


def _power(r: int, x: int) -> int:
    for _ in range(r):
        x = _NEXT[x]
    return x


# _H[r][b] = H^r(b); _START[k] = H^k(0xFF).
_H: tuple[tuple[int, ...], ...] = tuple(tuple(_power(r, b) for b in range(256)) for r in range(8))
_START: tuple[int, ...] = tuple(_power(k, 0xFF) for k in range(8))
if any(_power(8, b) != b for b in range(256)):  # pragma: no cover - a property of the table
    raise AssertionError("Appendix A's byte map must have period 8")
_LOW_WORDS: list[int] = [(1 << (64 * k)) - 1 for k in range(129)]  # masks for folds up to 2 KiB


def crc_hj212_reference(data: bytes) -> int:
    """Appendix A byte by byte, as the standard writes it."""
    if not data:
        return 0xFFFF
    nxt = _NEXT
    state = 0xFF
    for b in data[:-1]:
        state = nxt[state ^ b]
    return _TABLE[state ^ data[-1]]


def crc_hj212(data: bytes) -> int:
    """Appendix A check code of ``data`` (the data segment only)."""
    n = len(data)
    if n == 0:
        return 0xFFFF
    # Fold the 8-byte words (aligned to the end) together by halves: XOR of all of them.
    m = int.from_bytes(data, "big")
    words = (n + 7) >> 3
    while words > 1:
        half = words >> 1
        low = _LOW_WORDS[half] if half < len(_LOW_WORDS) else (1 << (64 * half)) - 1
        m = (m >> (half << 6)) ^ (m & low)
        words -= half
    h0, h1, h2, h3, h4, h5, h6, h7 = _H
    x = (
        _START[(n - 1) & 7]
        ^ h0[m & 255]
        ^ h1[(m >> 8) & 255]
        ^ h2[(m >> 16) & 255]
        ^ h3[(m >> 24) & 255]
        ^ h4[(m >> 32) & 255]
        ^ h5[(m >> 40) & 255]
        ^ h6[(m >> 48) & 255]
        ^ h7[(m >> 56) & 255]
    )
    return _TABLE[x]


def crc_modbus(data: bytes) -> int:
    """CRC-16/MODBUS of ``data``, as printed high byte first by the devices that use it.

    Only computed when the Appendix A check fails, so the plain table loop is fast enough.
    """
    table = _TABLE
    reg = 0xFFFF
    for b in data:
        reg = (reg >> 8) ^ table[(reg ^ b) & 0xFF]
    return reg


def format_crc(value: int) -> str:
    """Four uppercase hex digits, as the standard prints them."""
    return f"{value:04X}"
