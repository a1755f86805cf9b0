"""The newest reading per (outlet, factor) and per meter, by event time.

A reading sink the service always runs: status pages and the API read from it. Older data
arriving late never replaces newer data (the latest value is by event time, not arrival).
"""

from __future__ import annotations

import threading

from ingest.readings import Measurement, PowerSample, ReadingBatch


class LatestValues:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._measurements: dict[tuple[str, str, str], Measurement] = {}
        self._power: dict[str, PowerSample] = {}
        self.readings_seen = 0

    def __call__(self, batch: ReadingBatch) -> None:
        with self._lock:
            self.readings_seen += len(batch)
            for m in batch.measurements:
                key = (m.outlet_id, m.factor, m.interval)
                old = self._measurements.get(key)
                if old is None or m.data_time >= old.data_time:
                    self._measurements[key] = m
            for p in batch.power:
                old_p = self._power.get(p.meter_id)
                if old_p is None or p.ts >= old_p.ts:
                    self._power[p.meter_id] = p

    def measurement(self, outlet_id: str, factor: str, interval: str = "rtd") -> Measurement | None:
        with self._lock:
            return self._measurements.get((outlet_id, factor, interval))

    def power(self, meter_id: str) -> PowerSample | None:
        with self._lock:
            return self._power.get(meter_id)
