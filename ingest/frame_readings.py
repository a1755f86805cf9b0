"""Turn a decoded HJ 212 data packet into typed readings: an outlet's measurements and device
states, and the power samples of the meters a logger reports (docs/power-telemetry.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Mapping
from datetime import datetime
from typing import Final, cast

from ingest.hj212.model import CpValue, Hj212Frame
from ingest.readings import INTERVAL_BY_CN, DeviceState, Measurement, PowerSample, ReadingBatch
from ingest.registry import Meter, Outlet

# CNs whose packets carry values at a DataTime (uploads); they are unusable without one.
DATA_CNS = frozenset({"2011", "2051", "2061", "2031", "2021", "2041"})
STATE_CNS = frozenset({"2021", "2041"})

# HJ 212-2025 用电监控 (power-usage monitoring): every value of such a packet is a facility's
# power data, never a pollutant's.
POWER_ST: Final = "44"
# Where a meter's samples come from: real-time values (CN 2011 ``-Rtd``, the only form ST=44
# data takes) and running states (CN 2021 ``SBx-RS``). Windowed data is not a sample.
METER_CNS = frozenset({"2011", "2021"})

# CN 2021 SBx-RS → whether the facility is on, i.e. treating. Running (1), in alarm (4: the
# alarm does not stop it) and blowing back (5, 反吹: part of running a dust collector) are on.
# Stopped (0), calibrating (2) and under maintenance (3) are off: a facility being calibrated
# or maintained is not treating, whatever it draws.
RUNNING_STATE_ON: Final[Mapping[int, bool]] = {
    0: False,
    1: True,
    2: False,
    3: False,
    4: True,
    5: True,
}

# Data flags (HJ 212 §6.6.4) under which a meter's value measures its power: N (normal) and
# T (above the meter's range: still a lower bound). F, M, S, D, C and B mark values that do not.
MEASURED_FLAGS = frozenset({"N", "T"})

# Why a value a logger sent for meters became no sample (nonsite_ingest_unused_power_values).
UNCONFIGURED_CODE: Final = "unconfigured_code"  # no meter is configured for (MN, code)
INVALID_FLAG: Final = "invalid_flag"  # its flag says it measures nothing
NO_VALUE: Final = "no_value"  # neither a real-time value nor a known running state

_NO_CODES: frozenset[str] = frozenset()

# The decoder guarantees the types: numeric suffixes (Rtd, Avg, Min, ...) hold floats and
# Flag/EFlag hold text, so values are read without per-field checks (hot path).
_Number = float | None
_Text = str | None


def add_frame_readings(
    batch: ReadingBatch,
    frame: Hj212Frame,
    outlet: Outlet,
    data_time: datetime,
    received_at: datetime,
    seq: int,
    meter_codes: Container[str] = _NO_CODES,
) -> None:
    """Append the packet's measurements and device states to ``batch``. A code in
    ``meter_codes`` is a meter's power value, not a measurement of the outlet (a running state
    stays a device state as well)."""
    interval = INTERVAL_BY_CN.get(frame.cn)
    windowed = interval not in (None, "rtd")
    value_key, zs_key = ("Avg", "ZsAvg") if windowed else ("Rtd", "ZsRtd")
    for code, values in frame.pollutants.items():
        get = values.get
        if "RS" in values or "RT" in values:
            rs = get("RS")
            batch.device_states.append(
                DeviceState(
                    enterprise_id=outlet.enterprise_id,
                    outlet_id=outlet.outlet_id,
                    mn=frame.mn,
                    device=code,
                    data_time=data_time,
                    running_state=rs if isinstance(rs, int) else None,
                    running_hours=cast(_Number, get("RT")),
                    received_at=received_at,
                    archive_seq=seq,
                )
            )
            continue
        if interval is None or code in meter_codes:
            continue
        value, minimum, maximum = get(value_key), get("Min"), get("Max")
        cou, zs = get("Cou"), get(zs_key)
        if value is None and minimum is None and maximum is None and cou is None and zs is None:
            continue  # e.g. only an Info or SN entry: nothing to judge
        batch.measurements.append(
            Measurement(
                outlet.enterprise_id,
                outlet.outlet_id,
                frame.mn,
                code,
                interval,
                data_time,
                cast(_Number, value),
                cast(_Number, minimum),
                cast(_Number, maximum),
                cast(_Number, cou),
                cast(_Number, zs),
                cast(_Text, get("Flag")),
                cast(_Text, get("EFlag")),
                received_at,
                seq,
            )
        )


def add_meter_readings(
    batch: ReadingBatch,
    frame: Hj212Frame,
    meters: Mapping[str, Meter],
    data_time: datetime,
    received_at: datetime,
    seq: int,
    unused: Counter[str],
    *,
    all_power: bool,
) -> None:
    """Append a power sample for each value the packet (CN 2011 or 2021) carries for one of
    ``meters`` (code → meter), at its DataTime; count in ``unused`` why any other was not one.
    ``all_power``: every code of the packet is meant for a meter (an ST=44 packet, or a logger
    of meters only), so a code no meter is configured for is counted too."""
    realtime = frame.cn == "2011"
    for code, values in frame.pollutants.items():
        meter = meters.get(code)
        if meter is None:
            if all_power:
                unused[UNCONFIGURED_CODE] += 1
            continue
        reading = _meter_reading(values, realtime)
        if isinstance(reading, str):
            unused[reading] += 1
            continue
        kw, switch_on = reading
        batch.power.append(
            PowerSample(
                meter.enterprise_id,
                meter.meter_id,
                data_time,
                kw,
                None,
                None,
                switch_on,
                received_at,
                seq,
            )
        )


def _meter_reading(
    values: Mapping[str, CpValue], realtime: bool
) -> tuple[float | None, bool | None] | str:
    """(kW, on) from one code's values, or why they give neither: a running state (RS) gives
    only on/off; a real-time value (Rtd, kW) gives only the power."""
    rs = values.get("RS")
    if rs is not None:
        on = RUNNING_STATE_ON.get(rs) if isinstance(rs, int) else None
        return NO_VALUE if on is None else (None, on)
    kw = values.get("Rtd")
    if not realtime or not isinstance(kw, float):
        return NO_VALUE
    flag = values.get("Flag")
    if flag is not None and flag not in MEASURED_FLAGS:
        return INVALID_FLAG
    return kw, None
