"""Turn a decoded HJ 212 data packet into typed readings."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from ingest.hj212.model import Hj212Frame
from ingest.readings import INTERVAL_BY_CN, DeviceState, Measurement, ReadingBatch
from ingest.registry import Outlet

# CNs whose packets carry values at a DataTime (uploads); they are unusable without one.
DATA_CNS = frozenset({"2011", "2051", "2061", "2031", "2021", "2041"})
STATE_CNS = frozenset({"2021", "2041"})


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
) -> None:
    """Append the packet's measurements and device states to ``batch``."""
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
        if interval is None:
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
