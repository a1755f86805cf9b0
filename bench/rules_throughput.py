"""Rule engines: incremental and batch throughput, and memory per key.

The traffic is the typical mix a CEMS fleet sends: per flue-gas outlet and factor, real-time
values every 30 s (CN 2011), 10-minute records (CN 2051) and hour values (CN 2061); per
meter a sample a minute. Readings are generated first; only the engines are timed.

  incremental   StreamEngine, readings in arrival order, one core; its baseline is the least
                any per-reading Python engine does: a loop adding each reading into a dict of
                hourly sums per key
  batch         BatchEngine.run over the same readings as polars frames (the replay engine;
                building the frames from Python objects is timed separately); its baseline
                is polars' plain hourly mean per key over the same frames

Each is the median of ``--rounds`` rounds, and is also given as a ratio to its baseline measured
in the same run, because the machines are shared and noisy.
  memory        the streaming engine holding state for 100,000 outlet × factor keys and
                20,000 meters, measured with tracemalloc

Writes bench/results/rules.json and prints a table.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.readings import Measurement, PowerSample
from rules.batch import BatchEngine, readings_frames
from rules.params import FactorParams, OutletParams, Thresholds
from rules.power_params import EnterprisePowerParams, MeterParams
from rules.stream import StreamEngine

START = 1_795_190_400  # 2026-11-20 00:00 +08:00
FACTORS = {
    "a21026": FactorParams("a21026", "mg/m³", Thresholds(hour_alarm=100), reference_o2=6),
    "a21002": FactorParams("a21002", "mg/m³", Thresholds(hour_alarm=100), reference_o2=6),
    "a34013": FactorParams("a34013", "mg/m³", Thresholds(hour_alarm=30), reference_o2=6),
    "a19001": FactorParams("a19001", "%"),
    "a00000": FactorParams("a00000", "m³/s"),
    "a01012": FactorParams("a01012", "°C", allow_negative=True),
    "a01013": FactorParams("a01013", "kPa"),
    "a01014": FactorParams("a01014", "%"),
}
BASE = {
    "a21026": 40.0,
    "a21002": 60.0,
    "a34013": 10.0,
    "a19001": 7.0,
    "a00000": 100.0,
    "a01012": 50.0,
    "a01013": 1.0,
    "a01014": 8.0,
}


def _dt(t: int, cache: dict[int, datetime]) -> datetime:
    d = cache.get(t)
    if d is None:
        d = cache[t] = datetime.fromtimestamp(t, tz=UTC)
    return d


def traffic(outlets: int, meters_per: int, hours: int) -> tuple[dict, dict, list]:
    params = {
        (f"E{i:05d}", "DA001"): OutletParams(f"E{i:05d}", "DA001", "gas", factors=dict(FACTORS))
        for i in range(outlets)
    }
    power = {}
    for i in range(outlets):
        ent = f"E{i:05d}"
        meters = {f"{ent}-P": MeterParams(ent, f"{ent}-P", "production", rated_kw=100)}
        meters |= {
            f"{ent}-K{k}": MeterParams(
                ent, f"{ent}-K{k}", "control", rated_kw=20, serves=(f"{ent}-P",)
            )
            for k in range(meters_per - 1)
        }
        power[ent] = EnterprisePowerParams(ent, meters)
    cache: dict[int, datetime] = {}
    readings: list[Measurement | PowerSample] = []
    seq = 0
    for t in range(START, START + hours * 3600, 30):
        rt = _dt(t + 5, cache)
        for i in range(outlets):
            ent = f"E{i:05d}"
            j = (i * 7 + t // 30) % 13
            for code, base in BASE.items():
                v = base + j * 0.1
                readings.append(
                    Measurement(
                        ent, "DA001", "MN", code, "rtd", _dt(t, cache), v,
                        None, None, None, None, "N", None, rt, seq,
                    )
                )  # fmt: skip
                # The 10-minute record of the window just ended, and the hour's at its end.
                for every, interval in ((600, "minute"), (3600, "hour")):
                    if t % every == every - 30:
                        readings.append(
                            Measurement(
                                ent, "DA001", "MN", code, interval,
                                _dt(t - every + 30, cache), v, v - 1, v + 1,
                                None, None, "N", None, rt, seq,
                            )
                        )  # fmt: skip
            if t % 60 == 0:
                for m in power[ent].meters:
                    kw = 80.0 if m.endswith("-P") else 15.0
                    readings.append(
                        PowerSample(ent, m, _dt(t, cache), kw + j * 0.1, None, None, None, rt, seq)
                    )
            seq += 1
    return params, power, readings


def incremental(params: dict, power: dict, readings: list) -> float:
    engine = StreamEngine(params, power=power, grace_s=600)
    measurements = [r for r in readings if isinstance(r, Measurement)]
    samples = [r for r in readings if isinstance(r, PowerSample)]
    gc.collect()
    start = time.perf_counter()
    engine.process_measurements(measurements)
    engine.process_power(samples)
    engine.flush()
    return len(readings) / (time.perf_counter() - start)


def incremental_baseline(readings: list) -> float:
    """Hourly count and sum per key in a dict: the floor of per-reading Python work."""
    measurements = [r for r in readings if isinstance(r, Measurement)]
    samples = [r for r in readings if isinstance(r, PowerSample)]
    sums: dict[tuple, list[float]] = {}
    gc.collect()
    start = time.perf_counter()
    for m in measurements:
        key = (m.enterprise_id, m.outlet_id, m.factor, int(m.data_time.timestamp()) // 3600)
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = [0, 0.0]
        acc[0] += 1
        acc[1] += m.value or 0.0
    for p in samples:
        key = (p.enterprise_id, p.meter_id, "", int(p.ts.timestamp()) // 3600)
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = [0, 0.0]
        acc[0] += 1
        acc[1] += p.active_power_kw or 0.0  # None: a running state only
    return len(readings) / (time.perf_counter() - start)


def batch(params: dict, power: dict, frames: tuple[pl.DataFrame, pl.DataFrame]) -> float:
    frame, power_frame = frames
    engine = BatchEngine(params, power=power, grace_s=600)
    start = time.perf_counter()
    engine.run(frame, power_frame=power_frame)
    return (frame.height + power_frame.height) / (time.perf_counter() - start)


def batch_baseline(frames: tuple[pl.DataFrame, pl.DataFrame]) -> float:
    """Polars' plain hourly mean per key over the same frames."""
    frame, power_frame = frames
    start = time.perf_counter()
    frame.group_by("enterprise_id", "outlet_id", "factor", pl.col("t") // 3600).agg(
        pl.col("value").mean()
    )
    power_frame.group_by("enterprise_id", "meter_id", pl.col("ts") // 3600).agg(
        pl.col("p_kw").mean()
    )
    return (frame.height + power_frame.height) / (time.perf_counter() - start)


def rounds(n: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(n))


def memory(keys: int, meters: int) -> dict[str, float]:
    """Bytes per key of the streaming engine's state with ``keys`` outlet × factor keys and
    ``meters`` meters, each holding state (an open hour, a judged hour, a device state)."""
    outlets = keys // len(FACTORS)
    params = {
        (f"M{i:06d}", "DA001"): OutletParams(f"M{i:06d}", "DA001", "gas", factors=dict(FACTORS))
        for i in range(outlets)
    }
    # Spread the meters over the enterprises: some get one more than others.
    counts = [meters // outlets + (1 if i < meters % outlets else 0) for i in range(outlets)]
    power = {}
    for i in range(outlets):
        ent = f"M{i:06d}"
        power[ent] = EnterprisePowerParams(
            ent,
            {
                f"{ent}-{k}": MeterParams(
                    ent,
                    f"{ent}-{k}",
                    "production" if k == 0 else "control",
                    rated_kw=100,
                    serves=() if k == 0 else (f"{ent}-0",),
                )
                for k in range(counts[i])
            },
        )
    cache: dict[int, datetime] = {}
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine = StreamEngine(params, power=power, grace_s=600)
    for hour in range(2):  # one judged hour (history, day accumulators) and one open hour
        for (ent, out), _ in params.items():
            rows = [
                Measurement(
                    ent,
                    out,
                    "MN",
                    code,
                    "minute",
                    _dt(START + hour * 3600 + 600 * k, cache),
                    BASE[code] + k * 0.1,
                    None,
                    None,
                    None,
                    None,
                    "N",
                    None,
                    _dt(START + hour * 3600 + 600 * k + 60, cache),
                    0,
                )
                for code in FACTORS
                for k in range(6)
            ]
            engine.process_measurements(rows)
            engine.process_power(
                [
                    PowerSample(
                        ent,
                        m,
                        _dt(START + hour * 3600 + 60 * k, cache),
                        50.0,
                        None,
                        None,
                        None,
                        _dt(START + hour * 3600 + 60 * k + 5, cache),
                        0,
                    )
                    for m in power[ent].meters
                    for k in range(3)
                ]
            )
            engine.take_history()  # as the rule stage does with every batch it stores
    del cache
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    n_keys = outlets * len(FACTORS)
    n_meters = sum(counts)
    return {
        "keys": n_keys,
        "meters": n_meters,
        "bytes": used,
        "bytes_per_key": used / (n_keys + n_meters),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outlets", type=int, default=50)
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    params, power, readings = traffic(args.outlets, 3, args.hours)
    start = time.perf_counter()
    frames = readings_frames(readings)
    build = len(readings) / (time.perf_counter() - start)
    inc = rounds(args.rounds, lambda: incremental(params, power, readings))
    inc_base = rounds(args.rounds, lambda: incremental_baseline(readings))
    bat = rounds(args.rounds, lambda: batch(params, power, frames))
    bat_base = rounds(args.rounds, lambda: batch_baseline(frames))
    mem = memory(args.keys, args.meters)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "readings": len(readings),
        "mix": "per gas outlet × 8 factors: rtd every 30 s, 10-min records, hour values; 3 meters at 1 min",
        "rounds": args.rounds,
        "incremental_readings_per_s": round(inc),
        "incremental_baseline_readings_per_s": round(inc_base),
        "incremental_ratio": round(inc / inc_base, 3),
        "batch_readings_per_s": round(bat),
        "batch_baseline_readings_per_s": round(bat_base),
        "batch_ratio": round(bat / bat_base, 3),
        "batch_frame_build_readings_per_s": round(build),
        "memory": mem,
        "goals": {"incremental": 200_000, "batch": 2_000_000, "bytes_per_key": 2048},
    }
    out = Path(__file__).parent / "results" / "rules.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'readings in the mix':<44}{len(readings):>14,}")
    print(f"{'incremental (StreamEngine), one core':<44}{inc:>14,.0f} readings/s   goal 200,000")
    print(
        f"{'  baseline: hourly sums in a dict':<44}{inc_base:>14,.0f} readings/s   ratio {inc / inc_base:.3f}"
    )
    print(f"{'batch (BatchEngine over frames)':<44}{bat:>14,.0f} readings/s   goal 2,000,000")
    print(
        f"{'  baseline: polars hourly mean per key':<44}{bat_base:>14,.0f} readings/s   ratio {bat / bat_base:.3f}"
    )
    print(f"{'  building the frames from Python objects':<44}{build:>14,.0f} readings/s")
    print(
        f"{'memory per key':<44}{mem['bytes_per_key']:>14,.0f} bytes        goal 2,048"
        f"  ({mem['keys']:,} outlet×factor keys, {mem['meters']:,} meters)"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
