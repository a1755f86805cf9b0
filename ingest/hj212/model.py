"""The decoded form of one HJ 212 packet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Version = Literal["2005", "2017", "2025"]
CrcVariant = Literal["hj212", "modbus"]
CpValue = float | int | str | datetime

# Flag bits (HJ 212-2017 §6.3.2): V5..V0 D A, bit 0 = A.
FLAG_ACK = 0b01
FLAG_SPLIT = 0b10
# Uploads answered with a 9014 data reply when their Flag has the A bit (§6.5).
DATA_REPLY_CNS = frozenset(
    {"2011", "2021", "2031", "2041", "2051", "2061", "2081", "3015", "3019", "3020"}
)
VERSION_BITS: dict[int, Version] = {0: "2005", 1: "2017", 2: "2025"}
VERSION_FLAG_BASE: dict[Version, int] = {"2005": 0, "2017": 4, "2025": 8}


@dataclass(slots=True)
class Hj212Frame:
    """A packet whose framing, CRC and data segment passed the standard's rules."""

    st: str
    cn: str
    pw: str
    mn: str
    qn: str | None = None
    flag: int | None = None
    version: Version = "2005"
    pnum: int | None = None
    pno: int | None = None
    # Non-pollutant CP fields (DataTime, QnRtn, RtdInterval, ...), typed.
    fields: dict[str, CpValue] = field(default_factory=dict)
    # Pollutant code (2017 code) → suffix (Rtd, Avg, Flag, ...) → value.
    pollutants: dict[str, dict[str, CpValue]] = field(default_factory=dict)
    # 2017 code → the 2005 code the packet used, for codes that were translated.
    codes_2005: dict[str, str] = field(default_factory=dict)
    crc: str = ""
    crc_variant: CrcVariant = "hj212"
    length: int = 0
    warnings: list[str] = field(default_factory=list)
    raw: bytes = b""

    @property
    def ack_requested(self) -> bool:
        return self.flag is not None and bool(self.flag & FLAG_ACK)

    @property
    def split(self) -> bool:
        return self.flag is not None and bool(self.flag & FLAG_SPLIT)

    @property
    def data_time(self) -> datetime | None:
        value = self.fields.get("DataTime")
        return value if isinstance(value, datetime) else None
