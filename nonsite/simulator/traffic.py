"""What a configured fleet sends, minute by minute: HJ 212 frames from every outlet's logger
and power JSON from every meter, with daily load curves and noise.

Values are placed relative to each factor's own limits (a clean enterprise runs at 30–60 %
of them), so the same generator serves any configuration: the example's six enterprises or
the demo's two hundred. Time is simulated: ``frames(t)`` answers for the minute starting at
``t`` (epoch seconds), so the caller decides how fast simulated time runs.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime

from ingest.hj212.encoder import data_packets
from ingest.hj212.model import CpValue
from nonsite.config.model import Config, MeterConfig
from nonsite.rule_wiring import build_outlet_params
from nonsite.simulator.incidents import Incident, power_off, value_override
from rules.params import OutletParams, effective_thresholds
from rules.timebase import CHINA_OFFSET, HOUR

# Typical levels of the factors that have no limit of their own (unit as in HJ 212).
BASELINES = {
    "a19001": (7.5, 0.4),  # O2 %, flue gas of a boiler at load
    "a01012": (55.0, 3.0),  # flue-gas temperature ℃
    "a01013": (0.2, 0.02),  # flue-gas pressure kPa
    "a01014": (8.0, 0.5),  # humidity %
    "a00000": (120.0, 8.0),  # flue-gas flow m³/s
    "a01901": (950.0, 15.0),  # furnace temperature ℃
    "w00000": (40.0, 4.0),  # wastewater flow L/s
    "w01001": (7.2, 0.15),  # pH
}
Message = tuple[str, bytes]


def _load(kind: str, t: int) -> float:
    """The production load at ``t`` (0..1): power plants follow the day's demand around the
    clock; other industry works 06:00–22:00 China time."""
    hour = ((t + CHINA_OFFSET) % 86400) / 3600
    if kind == "power":
        return 0.75 + 0.2 * math.sin((hour - 9) / 24 * 2 * math.pi)
    return 1.0 if 6 <= hour < 22 else 0.0


class FleetTraffic:
    def __init__(
        self, config: Config, *, seed: int = 212, incidents: list[Incident] | None = None
    ) -> None:
        self.config = config
        self.incidents = incidents or []
        # The minute values of each open hour: a logger's hour value is their mean.
        self._hour_sums: dict[tuple[str, str, str, int], list[float]] = {}
        self.rng = random.Random(seed)
        self.params = build_outlet_params(config)
        self.kind = {
            e.id: "power" if "power" in e.industry or "热电" in e.name else "industry"
            for e in config.enterprises
        }
        self.mns = {
            (e.id, o.id): (o.mn, o.pw or "123456") for e in config.enterprises for o in e.outlets
        }
        self.meters = [(e.id, m) for e in config.enterprises for m in e.meters]

    def frames(self, t: int) -> Iterator[Message]:
        """Everything due in the minute starting at ``t``."""
        for key, params in self.params.items():
            if (t // 60) % params.minute_interval_min == 0:
                yield from self._minute_frame(key, params, t)
            if t % HOUR == 0:
                yield from self._hour_frame(key, params, t - HOUR)
        for enterprise_id, meter in self.meters:
            yield self._power(enterprise_id, meter, t)

    def value(self, key: tuple[str, str], params: OutletParams, code: str, t: int) -> float:
        load = _load(self.kind.get(key[0], "industry"), t)
        fp = params.factors[code]
        limits = effective_thresholds(params, fp)
        limit = limits.hour_alarm or limits.day_alarm
        if code in BASELINES or limit is None:
            base, sd = BASELINES.get(code, (1.0, 0.05))
            if code in ("a00000", "w00000"):
                base *= max(load, 0.02)
            value = self.rng.gauss(base, sd)
        else:
            value = limit * (0.3 + 0.3 * load) * self.rng.uniform(0.9, 1.1)
        if not fp.allow_negative:
            value = max(value, 0.0)
        forced = value_override(self.incidents, key, code, t, limit)
        return forced if forced is not None else round(value, 2)

    def _minute_frame(
        self, key: tuple[str, str], params: OutletParams, t: int
    ) -> Iterator[Message]:
        mn, pw = self.mns[key]
        window = t - params.minute_interval_s
        pollutants: dict[str, dict[str, CpValue]] = {}
        for code in params.factors:
            v = self.value(key, params, code, window)
            acc = self._hour_sums.setdefault((*key, code, window - window % HOUR), [0.0, 0])
            acc[0] += v
            acc[1] += 1
            pollutants[code] = {
                "Avg": v,
                "Min": round(v * 0.95, 2),
                "Max": round(v * 1.05, 2),
                "Flag": "N",
            }
        for payload in data_packets(
            st="32" if params.kind == "water" else "31",
            cn="2051",
            pw=pw,
            mn=mn,
            data_time=datetime.fromtimestamp(window, tz=UTC),
            pollutants=pollutants,
            ack=False,
        ):
            yield f"hj212/{mn}", payload

    def _hour_frame(
        self, key: tuple[str, str], params: OutletParams, hour: int
    ) -> Iterator[Message]:
        mn, pw = self.mns[key]
        hour_values: dict[str, dict[str, CpValue]] = {}
        for code in params.factors:
            total, n = self._hour_sums.pop((*key, code, hour), (0.0, 0))
            mean = round(total / n, 4) if n else self.value(key, params, code, hour)
            hour_values[code] = {"Avg": mean, "Flag": "N"}
        for payload in data_packets(
            st="32" if params.kind == "water" else "31",
            cn="2061",
            pw=pw,
            mn=mn,
            data_time=datetime.fromtimestamp(hour, tz=UTC),
            pollutants=hour_values,
            ack=False,
        ):
            yield f"hj212/{mn}", payload

    def _power(self, enterprise_id: str, meter: MeterConfig, t: int) -> Message:
        rated = meter.rated_kw or 100.0
        load = _load(self.kind.get(enterprise_id, "industry"), t)
        p_kw = rated * (0.7 * load + 0.02) * self.rng.uniform(0.95, 1.05)
        if power_off(self.incidents, meter.id, enterprise_id, t):
            p_kw = 0.0
        body = {"ts": datetime.fromtimestamp(t, tz=UTC).isoformat(), "p_kw": round(p_kw, 2)}
        return f"power/{meter.id}", json.dumps(body).encode()
