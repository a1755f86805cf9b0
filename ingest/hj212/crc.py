"""The HJ 212 check code (Appendix A) and the CRC-16/MODBUS variant seen in the field.

Appendix A is not CRC-16/MODBUS: each byte is XORed into the register's *high* byte shifted
down (``reg = (reg >> 8) ^ byte``) before the eight shift rounds, so the register that enters
the rounds is only 8 bits wide. The rounds therefore depend on one byte of state and the whole
per-byte step is a 256-entry table lookup. That is why this is hand-written: no CRC library
implements this non-standard variant, and a table keeps it fast enough for the hot path.
"""

from __future__ import annotations

import sys
from array import array

_POLY = 0xA001


def _rounds(reg: int) -> int:
    for _ in range(8):
        lsb = reg & 1
        reg >>= 1
        if lsb:
            reg ^= _POLY
    return reg


# After ``reg = (reg >> 8) ^ byte`` the register holds a value 0..255, so the eight rounds
# are a function of that byte alone.
_HJ212_TABLE: tuple[int, ...] = tuple(_rounds(i) for i in range(256))
# Only the high byte of a table entry feeds the next step (``reg >> 8``).
_HJ212_NEXT: tuple[int, ...] = tuple(v >> 8 for v in _HJ212_TABLE)


def _pair_entry(word: int) -> int:
    # ``word`` holds two consecutive bytes little-endian (first byte low), with the current
    # state already XORed into the first byte.
    return _HJ212_NEXT[_HJ212_NEXT[word & 0xFF] ^ (word >> 8)]


# Two bytes per lookup halves the interpreted loop (the hot path of every decode).
_HJ212_PAIR: tuple[int, ...] = tuple(_pair_entry(w) for w in range(65536))
_BIG_ENDIAN = sys.byteorder == "big"

# Standard reflected CRC-16/MODBUS table (init 0xFFFF, poly 0xA001).
_MODBUS_TABLE: tuple[int, ...] = tuple(_rounds(i) for i in range(256))


def crc_hj212(data: bytes) -> int:
    """Appendix A check code of ``data`` (the data segment only)."""
    if not data:
        return 0xFFFF
    state = 0xFF  # high byte of the initial register 0xFFFF
    body_len = (len(data) - 1) & ~1  # all but the last byte, rounded down to pairs
    if body_len:
        pair = _HJ212_PAIR
        words = array("H", data[:body_len])
        if _BIG_ENDIAN:
            words.byteswap()
        for word in words:
            state = pair[word ^ state]
    nxt = _HJ212_NEXT
    for b in data[body_len:-1]:
        state = nxt[state ^ b]
    return _HJ212_TABLE[state ^ data[-1]]


def crc_modbus(data: bytes) -> int:
    """CRC-16/MODBUS of ``data``, as printed high byte first by the devices that use it."""
    table = _MODBUS_TABLE
    reg = 0xFFFF
    for b in data:
        reg = (reg >> 8) ^ table[(reg ^ b) & 0xFF]
    return reg


def format_crc(value: int) -> str:
    """Four uppercase hex digits, as the standard prints them."""
    return f"{value:04X}"
