"""Turn a decoded HJ 212 data packet into typed readings."""

from __future__ import annotations

from datetime import datetime

from ingest.hj212.model import CpValue, Hj212Frame
from ingest.readings import INTERVAL_BY_CN, DeviceState, Measurement, ReadingBatch
from ingest.registry import Outlet

# CNs whose packets carry values at a DataTime (uploads); they are unusable without one.
DATA_CNS = frozenset({"2011", "2051", "2061", "2031", "2021", "2041"})
STATE_CNS = frozenset({"2021", "2041"})


def _num(values: dict[str, CpValue], key: str) -> float | None:
    value = values.get(key)
    return value if isinstance(value, float) else None


def _text(values: dict[str, CpValue], key: str) -> str | None:
    value = values.get(key)
    return value if isinstance(value, str) else None


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
        if "RS" in values or "RT" in values:
            rs = values.get("RS")
            batch.device_states.append(
                DeviceState(
                    enterprise_id=outlet.enterprise_id,
                    outlet_id=outlet.outlet_id,
                    mn=frame.mn,
                    device=code,
                    data_time=data_time,
                    running_state=rs if isinstance(rs, int) else None,
                    running_hours=_num(values, "RT"),
                    received_at=received_at,
                    archive_seq=seq,
                )
            )
            continue
        if interval is None:
            continue
        value = _num(values, value_key)
        minimum, maximum = _num(values, "Min"), _num(values, "Max")
        cou, zs = _num(values, "Cou"), _num(values, zs_key)
        if value is None and minimum is None and maximum is None and cou is None and zs is None:
            continue  # e.g. only an Info or SN entry: nothing to judge
        batch.measurements.append(
            Measurement(
                enterprise_id=outlet.enterprise_id,
                outlet_id=outlet.outlet_id,
                mn=frame.mn,
                factor=code,
                interval=interval,
                data_time=data_time,
                value=value,
                minimum=minimum,
                maximum=maximum,
                cou=cou,
                zs=zs,
                flag=_text(values, "Flag"),
                eflag=_text(values, "EFlag"),
                received_at=received_at,
                archive_seq=seq,
            )
        )
