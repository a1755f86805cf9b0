"""Typed readings: what ingest hands to the rule stage, in batches.

Readings are NamedTuples: immutable, and cheap to build by the hundred thousand per second.
Every reading carries the archive sequence number of the message it came from, so a rule
finding can point back at the raw bytes, and the receive time next to the event time
(clock skew is visible, and absence rules never run on device clocks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

# HJ 212 command code → the interval a data packet covers.
Interval = Literal["rtd", "minute", "hour", "day"]
INTERVAL_BY_CN: dict[str, Interval] = {
    "2011": "rtd",
    "2051": "minute",
    "2061": "hour",
    "2031": "day",
}


class Measurement(NamedTuple):
    """One factor's values from one HJ 212 data packet (CN 2011/2051/2061/2031)."""

    enterprise_id: str
    outlet_id: str
    mn: str
    factor: str  # HJ 212-2017 pollutant code (2005 codes already translated)
    interval: Interval
    data_time: datetime  # aware, China time; the window start for minute/hour/day data
    value: float | None  # Rtd, or Avg for windowed data
    minimum: float | None
    maximum: float | None
    cou: float | None  # cumulative amount over the window
    zs: float | None  # converted (折算) value: ZsRtd or ZsAvg
    flag: str | None  # data flag N/F/M/S/D/C/T/B
    eflag: str | None
    received_at: datetime
    archive_seq: int


class DeviceState(NamedTuple):
    """A treatment-facility running state (CN 2021 ``SBx-RS``) or day running time (2041 ``RT``)."""

    enterprise_id: str
    outlet_id: str
    mn: str
    device: str  # e.g. "SB1"
    data_time: datetime
    running_state: int | None  # 0 off, 1 running, 2 calibrating, 3 maintenance, 4 alarm, 5 blowback
    running_hours: float | None
    received_at: datetime
    archive_seq: int


class LoggerSeen(NamedTuple):
    """Any valid packet from a data logger: what offline detection and clock-skew checks use."""

    enterprise_id: str
    outlet_id: str
    mn: str
    cn: str
    data_time: datetime | None
    received_at: datetime
    archive_seq: int


class PowerSample(NamedTuple):
    """One power-meter reading: JSON over MQTT, an HJ 212-2025 ST=44 value, or a facility's
    running state from CN 2021 ``SBx-RS`` (docs/power-telemetry.md)."""

    enterprise_id: str
    meter_id: str
    ts: datetime  # aware
    active_power_kw: float | None  # None: the source gives only a state (switch_on)
    current_a: tuple[float, ...] | None  # per phase
    energy_kwh: float | None
    switch_on: bool | None
    received_at: datetime
    archive_seq: int


@dataclass(slots=True)
class ReadingBatch:
    """The readings decoded from one run of archived messages, in archive order."""

    first_seq: int
    last_seq: int
    measurements: list[Measurement] = field(default_factory=list)
    device_states: list[DeviceState] = field(default_factory=list)
    loggers: list[LoggerSeen] = field(default_factory=list)
    power: list[PowerSample] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.measurements) + len(self.device_states) + len(self.power)
