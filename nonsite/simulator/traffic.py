"""What a configured fleet sends, minute by minute: HJ 212 frames from every outlet's logger
and power JSON from every meter, with daily load curves and noise.

Values are placed relative to each factor's own limits (a clean enterprise runs at 30–60 %
of them), so the same generator serves any configuration: the example's six enterprises or
the demo's two hundred. Time is simulated: ``frames(t)`` answers for the minute starting at
``t`` (epoch seconds), so the caller decides how fast simulated time runs.

A logger sends its 10-minute (CN 2051), hour (CN 2061) and day (CN 2031) records; real-time
data (CN 2011) only while ``realtime`` is set, as a logger backfilling history does not
resend it. Every third outlet speaks the 2025 edition of HJ 212, the others 2017.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime

from ingest.hj212.encoder import data_packets, encode_packet, make_qn
from ingest.hj212.model import CpValue, Version
from nonsite.config.model import Config, MeterConfig
from nonsite.rule_wiring import build_outlet_params
from nonsite.simulator.incidents import (
    DILUTED_O2,
    DILUTION_FACTOR,
    Incident,
    dilution,
    flag_override,
    power_off,
    silent,
    value_override,
)
from rules.params import OutletParams, effective_thresholds
from rules.timebase import CHINA_OFFSET, DAY, HOUR

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
FLOWS = ("a00000", "w00000")
LATE_BY = 3 * HOUR  # how long a late_duplicate incident holds an hour frame back


def _load(kind: str, t: int) -> float:
    """The production load at ``t`` (0..1): power plants follow the day's demand around the
    clock; other industry works 06:00–22:00 China time."""
    hour = ((t + CHINA_OFFSET) % 86400) / 3600
    if kind == "power":
        return 0.75 + 0.2 * math.sin((hour - 9) / 24 * 2 * math.pi)
    return 1.0 if 6 <= hour < 22 else 0.0


class FleetTraffic:
    def __init__(
        self,
        config: Config,
        *,
        seed: int = 212,
        incidents: list[Incident] | None = None,
        since: int | None = None,
    ) -> None:
        self.config = config
        # The loggers start here: no record covers time before it (a record of the
        # previous day would make that day look nearly empty).
        self.since = since
        self.incidents = incidents or []
        # The minute values of each open hour: a logger's hour value is their mean.
        self._hour_sums: dict[tuple[str, str, str, int], list[float]] = {}
        # The hour values (and flows) of each open day: the day value is their mean.
        self._day_hours: dict[tuple[str, str, int], list[tuple[dict[str, float], str]]] = {}
        self._held: dict[int, list[Message]] = {}  # frames a late_duplicate holds back
        self._corrupted: set[Incident] = set()
        self.realtime = False
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
        self.versions: dict[tuple[str, str], Version] = {
            key: "2025" if n % 3 == 2 else "2017" for n, key in enumerate(self.params)
        }

    def frames(self, t: int) -> Iterator[Message]:
        """Everything due in the minute starting at ``t``."""
        for key, params in self.params.items():
            frames: list[Message] = []
            if self.realtime:
                frames += self._realtime_frame(key, params, t)
            if (t // 60) % params.minute_interval_min == 0 and self._since(
                t - params.minute_interval_s
            ):
                frames += self._minute_frame(key, params, t)
            if t % HOUR == 0 and self._since(t - HOUR):
                frames += self._hour_frame(key, params, t - HOUR)
            if (t + CHINA_OFFSET) % DAY == 0 and self._since(t - DAY):
                frames += self._day_frame(key, t - DAY)
            if not silent(self.incidents, key, t):
                yield from self._misbehave(key, t, frames)
        yield from self._held.pop(t, [])
        for enterprise_id, meter in self.meters:
            yield self._power(enterprise_id, meter, t)

    def _since(self, t: int) -> bool:
        return self.since is None or t >= self.since

    def _misbehave(self, key: tuple[str, str], t: int, frames: list[Message]) -> list[Message]:
        """The frames as the incidents deliver them: garbled, doubled or held back."""
        out: list[Message] = []
        for i in self.incidents:
            if not (i.active(t) and (i.enterprise_id, i.source_id) == key and frames):
                continue
            if i.kind == "corrupt" and i not in self._corrupted:
                self._corrupted.add(i)
                topic, payload = frames[0]
                # A digit of the data changed in transit: the CRC no longer matches.
                at = payload.index(b"=", payload.index(b"CP=&&") + 5) + 1
                digit = b"7" if payload[at : at + 1] != b"7" else b"3"
                out.append((topic, payload[:at] + digit + payload[at + 1 :]))
            if i.kind == "late_duplicate":
                if t < i.start + HOUR:
                    # Sent twice as is (a re-delivery), then once more as a backfill (补发,
                    # a new QN) of data already received.
                    out += frames + [_resent(m, t + 30) for m in frames]
                if t == i.start + HOUR:
                    # The hour's values are backfilled again hours after the hour closed.
                    late = [_resent(m, t + LATE_BY) for m in frames if b"CN=2061" in m[1]]
                    self._held.setdefault(t + LATE_BY, []).extend(late)
        return out + frames

    def value(self, key: tuple[str, str], params: OutletParams, code: str, t: int) -> float:
        load = _load(self.kind.get(key[0], "industry"), t)
        fp = params.factors[code]
        limits = effective_thresholds(params, fp)
        limit = limits.hour_alarm or limits.day_alarm
        if code in BASELINES or limit is None:
            base, sd = BASELINES.get(code, (1.0, 0.05))
            if code in FLOWS:
                base *= max(load, 0.02)
            value = self.rng.gauss(base, sd)
        else:
            value = limit * (0.3 + 0.3 * load) * self.rng.uniform(0.9, 1.1)
        if dilution(self.incidents, key, t):
            if code == "a19001":
                value = self.rng.gauss(DILUTED_O2, 0.2)
            elif code in FLOWS:
                value /= DILUTION_FACTOR**0.5  # the fan draws more, not all of the air
            elif code not in BASELINES:
                value *= DILUTION_FACTOR
        if not fp.allow_negative:
            value = max(value, 0.0)
        noise = self.rng.uniform(0.95, 1.05)
        forced = value_override(
            self.incidents, key, code, t, limits.hour_alarm, limits.day_alarm, noise
        )
        return forced if forced is not None else round(value, 2)

    def _packets(
        self,
        key: tuple[str, str],
        params: OutletParams,
        cn: str,
        t: int,
        pollutants: dict[str, dict[str, CpValue]],
    ) -> list[Message]:
        mn, pw = self.mns[key]
        return [
            (f"hj212/{mn}", payload)
            for payload in data_packets(
                st="32" if params.kind == "water" else "31",
                cn=cn,
                pw=pw,
                mn=mn,
                data_time=datetime.fromtimestamp(t, tz=UTC),
                pollutants=pollutants,
                version=self.versions[key],
                ack=False,
            )
        ]

    def _realtime_frame(self, key: tuple[str, str], params: OutletParams, t: int) -> list[Message]:
        values: dict[str, dict[str, CpValue]] = {
            code: {"Rtd": self.value(key, params, code, t), "Flag": self._flag(key, code, t)}
            for code in params.factors
        }
        return self._packets(key, params, "2011", t, values)

    def _flag(self, key: tuple[str, str], code: str, t: int) -> str:
        return flag_override(self.incidents, key, code, t)

    def _minute_frame(self, key: tuple[str, str], params: OutletParams, t: int) -> list[Message]:
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
                "Flag": self._flag(key, code, window),
            }
        return self._packets(key, params, "2051", window, pollutants)

    def _hour_frame(self, key: tuple[str, str], params: OutletParams, hour: int) -> list[Message]:
        hour_values: dict[str, dict[str, CpValue]] = {}
        means: dict[str, float] = {}
        for code in params.factors:
            total, n = self._hour_sums.pop((*key, code, hour), (0.0, 0))
            mean = round(total / n, 4) if n else self.value(key, params, code, hour)
            flag = self._flag(key, code, hour)
            hour_values[code] = {"Avg": mean, "Flag": flag}
            if flag == "N":
                means[code] = mean
        day = hour - (hour + CHINA_OFFSET) % DAY
        self._day_hours.setdefault((*key, day), []).append((means, params.flow_code or ""))
        return self._packets(key, params, "2061", hour, hour_values)

    def _day_frame(self, key: tuple[str, str], day: int) -> list[Message]:
        """The day's values: the mean of its valid hours, flow-weighted for wastewater."""
        hours = self._day_hours.pop((*key, day), [])
        params = self.params[key]
        sums: dict[str, list[float]] = {}
        for means, flow_code in hours:
            weight = means.get(flow_code, 0.0) if params.kind == "water" else 1.0
            for code, v in means.items():
                acc = sums.setdefault(code, [0.0, 0.0])
                acc[0] += v * weight
                acc[1] += weight
        values: dict[str, dict[str, CpValue]] = {
            code: {"Avg": round(total / weight, 4), "Flag": "N"}
            for code, (total, weight) in sums.items()
            if weight > 0
        }
        return self._packets(key, params, "2031", day, values) if values else []

    def _power(self, enterprise_id: str, meter: MeterConfig, t: int) -> Message:
        rated = meter.rated_kw or 100.0
        load = _load(self.kind.get(enterprise_id, "industry"), t)
        p_kw = rated * (0.7 * load + 0.02) * self.rng.uniform(0.95, 1.05)
        if power_off(self.incidents, meter.id, enterprise_id, t):
            p_kw = 0.0
        body = {"ts": datetime.fromtimestamp(t, tz=UTC).isoformat(), "p_kw": round(p_kw, 2)}
        return f"power/{meter.id}", json.dumps(body).encode()


def _resent(message: Message, at: int) -> Message:
    """The same frame sent again at ``at`` as a new request (its own QN), as a logger
    backfilling history does."""
    topic, payload = message
    segment = payload[6:-6].decode()
    qn = make_qn(datetime.fromtimestamp(at, tz=UTC))
    return topic, encode_packet(re.sub(r"QN=\d+", f"QN={qn}", segment, count=1))
