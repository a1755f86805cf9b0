"""Who may send data: enterprises' outlets (by data-logger MN) and power meters (by id).

Built from the configuration by the wiring layer; ingest only looks things up. A message
from an MN or meter that is not registered becomes a dead letter, never a reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

OutletKind = Literal["gas", "water"]
MeterRole = Literal["production", "control"]


@dataclass(frozen=True, slots=True)
class Outlet:
    enterprise_id: str
    outlet_id: str
    mn: str
    pw: str | None  # None: the password is not checked for this logger
    kind: OutletKind
    name: str = ""
    accept_modbus_crc: bool = False  # tolerate the CRC-16/MODBUS variant from this logger
    max_segment_bytes: int = 1024  # tolerate over-long segments from this logger


@dataclass(frozen=True, slots=True)
class Meter:
    enterprise_id: str
    meter_id: str
    role: MeterRole
    name: str = ""
    rated_kw: float | None = None


class Registry:
    """Lookup tables for the hot path; rebuilt (not mutated) when the configuration changes."""

    def __init__(self, outlets: Iterable[Outlet] = (), meters: Iterable[Meter] = ()) -> None:
        self._by_mn: dict[str, Outlet] = {}
        for outlet in outlets:
            if outlet.mn in self._by_mn:
                raise ValueError(f"MN {outlet.mn!r} registered twice")
            self._by_mn[outlet.mn] = outlet
        self._meters: dict[str, Meter] = {}
        for meter in meters:
            if meter.meter_id in self._meters:
                raise ValueError(f"meter {meter.meter_id!r} registered twice")
            self._meters[meter.meter_id] = meter

    def outlet(self, mn: str) -> Outlet | None:
        return self._by_mn.get(mn)

    def meter(self, meter_id: str) -> Meter | None:
        return self._meters.get(meter_id)

    @property
    def outlets(self) -> list[Outlet]:
        return list(self._by_mn.values())

    @property
    def meters(self) -> list[Meter]:
        return list(self._meters.values())
