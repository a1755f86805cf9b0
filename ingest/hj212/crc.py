"""The HJ 212 check code (Appendix A) and the CRC-16/MODBUS variant seen in the field.

Appendix A is not CRC-16/MODBUS: each byte is XORed into the register's *high* byte shifted
down (``reg = (reg >> 8) ^ byte``) before the eight shift rounds, so the register entering
the rounds is only 8 bits wide. The computation therefore has one byte of state:

    s[0] = 0xFF;  s[i+1] = H(s[i] ^ b[i]);  crc = T(s[n-1] ^ b[n-1])

where T is the CRC-16 (poly 0xA001) table and H(x) = T(x) >> 8. T is linear over GF(2), so H
is too, and unrolling the recurrence gives

    s[n-1] ^ b[n-1] = H^(n-1)(0xFF)  XOR  (XOR over i of H^(n-1-i)(b[i]))

Each output bit j is the parity of the message bits selected by a fixed mask (the j-th rows
of H^0, H^1, ... laid out from the last byte backwards). With the message read as one
big-endian integer, the whole check is 8 ANDs and 8 ``bit_count`` calls, done in C, instead
of a Python loop over every byte: this is the decode hot path.

No CRC library implements this non-standard variant, hence the hand-written code; the plain
byte-by-byte algorithm is kept as the reference and for segments longer than the masks.
"""

from __future__ import annotations

_POLY = 0xA001
_MAX_FAST = 2048  # segments up to this many bytes use the masks (the standard allows 1024)


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


def _build_masks(length: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Parity masks for the 8 state bits, and H^(n-1)(0xFF) for every length n."""
    # basis[k] = H^d(1 << k), advanced one power per byte position from the end.
    basis = [1 << k for k in range(8)]
    rows: list[list[int]] = [[] for _ in range(8)]  # rows[j][d]: input bits of H^d feeding bit j
    initial = [0] * (length + 1)  # initial[n] = H^(n-1)(0xFF)
    for d in range(length):
        for j in range(8):
            rows[j].append(sum(1 << k for k in range(8) if basis[k] >> j & 1))
        initial[d + 1] = 0
        for v in basis:
            initial[d + 1] ^= v  # 0xFF is the XOR of the eight basis bytes
        basis = [_NEXT[v] for v in basis]
    # Byte d from the end of the message meets rows[j][d]: lay the rows out the same way.
    masks = tuple(int.from_bytes(bytes(reversed(rows[j])), "big") for j in range(8))
    return masks, tuple(initial)


_MASKS, _INITIAL = _build_masks(_MAX_FAST)


def crc_hj212_reference(data: bytes) -> int:
    """Appendix A byte by byte (any length)."""
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
    if n == 0 or n > _MAX_FAST:
        return crc_hj212_reference(data)
    message = int.from_bytes(data, "big")
    m0, m1, m2, m3, m4, m5, m6, m7 = _MASKS
    x = (
        ((message & m0).bit_count() & 1)
        | ((message & m1).bit_count() & 1) << 1
        | ((message & m2).bit_count() & 1) << 2
        | ((message & m3).bit_count() & 1) << 3
        | ((message & m4).bit_count() & 1) << 4
        | ((message & m5).bit_count() & 1) << 5
        | ((message & m6).bit_count() & 1) << 6
        | ((message & m7).bit_count() & 1) << 7
    )
    return _TABLE[x ^ _INITIAL[n]]


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
