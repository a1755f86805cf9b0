"""What a configured fleet sends, minute by minute: HJ 212 frames from every outlet's logger
and power JSON from every meter, with daily load curves and noise.

Values are placed relative to each factor's own limits (a clean enterprise runs at 30–60 %
of them), so the same generator serves any configuration: the example's six enterprises or
the demo's two hundred. Time is simulated: ``frames(t)`` answers for the minute starting at
``t`` (epoch seconds), so the caller decides how fast simulated time runs.

A logger sends its minute (CN 2051: every 10 minutes, or its outlet's ``minute_interval_min``),
hour (CN 2061) and day (CN 2031) records; real-time data (CN 2011) only while ``realtime`` is
set, as a logger backfilling history does not resend it. A meter takes a sample every minute
and sends each at once; with ``meter_batch_min``, while history is sent (not ``realtime``) it
sends them that many to a message, as a gateway uploading what it stored does (the demo's
day of 200 enterprises: a tenth of the messages). Every third outlet speaks the 2025 edition
of HJ 212, the others 2017. The incidents change what a logger does: one sends minute
data every minute whatever its configuration says (its temperature, pressure and humidity
sensors update every 8 minutes, so these repeat), one sends real-time data every 30 s and
nothing else, one stores its records while cut off and resends them in order when it is back.
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
    backfilling,
    dilution,
    flag_override,
    link_lost,
    logger_down,
    minute_logger,
    power_off,
    realtime_only,
    silent,
    stopped,
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
# What a stopped plant's analysers read (停运, flagged F): ambient air in a still, cold duct.
# Factors with a limit read a few per cent of it.
STOPPED_LEVELS = {
    "a19001": (20.6, 0.1),
    "a01012": (22.0, 1.0),
    "a01013": (0.02, 0.01),
    "a01014": (1.5, 0.3),
    "a00000": (0.3, 0.1),
    "a01901": (120.0, 10.0),
    "w00000": (0.05, 0.03),
    "w01001": (7.2, 0.15),
}
Message = tuple[str, bytes]
# The topic prefix of a packet the link lost (incident link_lost): publishers do not send it;
# a simulated TCP logger keeps it in its history, to answer a recall with it.
LOST_PREFIX = "lost/"
FLOWS = ("a00000", "w00000")
LATE_BY = 3 * HOUR  # how long a late_duplicate incident holds an hour frame back
DEFAULT_MINUTE_INTERVAL_MIN = 10  # a logger's MinInterval when nothing configures one
REALTIME_ONLY_INTERVAL_S = 30  # RtdInterval of a logger that sends real-time data only
# A 1-minute logger's slow sensors (flue-gas temperature, pressure, humidity) update this
# often: their minute values repeat in between (not 恒值: a few minutes, not an hour).
SLOW_FACTORS = ("a01012", "a01013", "a01014")
SLOW_UPDATE_S = 8 * 60


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
        meter_batch_min: int = 1,
        acked: frozenset[str] = frozenset(),
    ) -> None:
        self.config = config
        # Loggers whose packets ask for a 9014 reply (the A bit), as loggers on TCP do.
        self.acked = acked
        # History: a meter's samples of each this many minutes go in one message.
        self.meter_batch_s = meter_batch_min * 60
        # The loggers start here: no record covers time before it (a record of the
        # previous day would make that day look nearly empty).
        self.since = since
        self.incidents = incidents or []
        # The minute values of each open hour: a logger's hour value is their mean.
        self._hour_sums: dict[tuple[str, str, str, int], list[float]] = {}
        # The hour values (and flows) of each open day: the day value is their mean.
        self._day_hours: dict[tuple[str, str, int], list[tuple[dict[str, float], str]]] = {}
        self._held: dict[int, list[Message]] = {}  # frames a late_duplicate holds back
        # What a cut-off logger stores to resend (补发) when it is back, in order.
        self._stored: dict[tuple[str, str], list[Message]] = {}
        # A slow sensor's current reading: (outlet, factor) → (update period, value).
        self._slow: dict[tuple[str, str, str], tuple[int, float]] = {}
        self._corrupted: set[Incident] = set()
        # History: each meter's samples not yet sent (ts, kW), sent every meter_batch_s.
        self._samples: dict[str, list[tuple[int, float]]] = {}
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
        # Each logger's MinInterval in minutes: its outlet's setting, else [rules]' default.
        default = config.rules.minute_interval_min or DEFAULT_MINUTE_INTERVAL_MIN
        self.minute_interval = {
            (e.id, o.id): o.minute_interval_min or default
            for e in config.enterprises
            for o in e.outlets
        }
        self.versions: dict[tuple[str, str], Version] = {
            key: "2025" if n % 3 == 2 else "2017" for n, key in enumerate(self.params)
        }

    def frames(self, t: int) -> Iterator[Message]:
        """Everything due in the minute starting at ``t``."""
        for key, params in self.params.items():
            live, recorded = self._due(key, params, t)
            if recorded and link_lost(self.incidents, key, t - HOUR):
                # Lost on the way: the logger keeps it (for a recall), the platform never
                # sees it. Yielded under LOST_PREFIX for the publisher to hand the logger.
                lost = [m for m in recorded if b"CN=2061" in m[1]]
                recorded = [m for m in recorded if b"CN=2061" not in m[1]]
                yield from ((LOST_PREFIX + topic, payload) for topic, payload in lost)
            if backfilling(self.incidents, key, t):
                # Cut off: the logger keeps its records; real-time values are not resent.
                self._stored.setdefault(key, []).extend(recorded)
                continue
            # Back: what it stored first (补发, in the order recorded), then the minute's own.
            frames = self._stored.pop(key, []) + live + recorded
            if not silent(self.incidents, key, t):
                yield from self._misbehave(key, t, frames)
        yield from self._held.pop(t, [])
        flush = self.realtime or (t + 60) % self.meter_batch_s == 0
        for enterprise_id, meter in self.meters:
            stored = self._samples.setdefault(meter.id, [])
            stored.append(self._power(enterprise_id, meter, t))
            if self.realtime and len(stored) > 1:  # live now: what history left, then this
                yield _power_message(meter.id, stored[:-1])
                del stored[:-1]
            if flush:
                yield _power_message(meter.id, stored)
                stored.clear()

    def _due(
        self, key: tuple[str, str], params: OutletParams, t: int
    ) -> tuple[list[Message], list[Message]]:
        """What the outlet's logger sends in the minute at ``t``: (real-time frames, recorded
        frames: minute, hour and day data)."""
        if realtime_only(self.incidents, key, t):
            times = range(t, t + 60, REALTIME_ONLY_INTERVAL_S)
            return [m for s in times for m in self._realtime_frame(key, params, s)], []
        down = logger_down(self.incidents, key)
        if down is not None and down[0] < t < down[1]:
            return [], []  # down: it sends nothing ...
        live = self._realtime_frame(key, params, t) if self.realtime else []
        recorded: list[Message] = []
        interval = self.minute_interval_s(key, t)
        window = t - interval
        lost = down is not None and down[0] <= window < down[1]  # ... and records nothing
        if t % interval == 0 and self._since(window) and not lost:
            recorded += self._minute_frame(key, params, t, interval)
        if t % HOUR == 0 and self._since(t - HOUR):
            recorded += self._hour_frame(key, params, t - HOUR)
        if (t + CHINA_OFFSET) % DAY == 0 and self._since(t - DAY):
            recorded += self._day_frame(key, t - DAY)
        return live, recorded

    def minute_interval_s(self, key: tuple[str, str], t: int) -> int:
        """How often the outlet's logger sends minute data (CN 2051) at ``t``."""
        if minute_logger(self.incidents, key, t):
            return 60
        return self.minute_interval[key] * 60

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
        if stopped(self.incidents, key, t):
            return self._stopped_value(code, limit, fp.allow_negative)
        if code in BASELINES or limit is None:
            base, sd = BASELINES.get(code, (1.0, 0.05))
            if code in FLOWS:
                # The flow and its noise follow the load: a source idling at night still
                # draws a little, never a flow that drops to 0 now and then (not producing).
                base, sd = base * max(load, 0.02), sd * max(load, 0.02)
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
            self.incidents,
            key,
            code,
            t,
            limits.hour_alarm,
            limits.day_alarm,
            noise,
            is_flow=code == params.flow_code,
        )
        return forced if forced is not None else _reading(value)

    def _stopped_value(self, code: str, limit: float | None, allow_negative: bool) -> float:
        if code in STOPPED_LEVELS:
            value = self.rng.gauss(*STOPPED_LEVELS[code])
        elif limit is not None:
            value = limit * self.rng.uniform(0.01, 0.05)
        else:
            base, sd = BASELINES.get(code, (1.0, 0.05))
            value = self.rng.gauss(base * 0.05, sd * 0.05)
        return round(value if allow_negative else max(value, 0.0), 2)

    def _minute_value(
        self, key: tuple[str, str], params: OutletParams, code: str, t: int, interval: int
    ) -> float:
        """A minute record's value; a 1-minute logger's slow sensors repeat theirs."""
        if interval != 60 or code not in SLOW_FACTORS:
            return self.value(key, params, code, t)
        period = t - t % SLOW_UPDATE_S
        held = self._slow.get((*key, code))
        if held is None or held[0] != period:
            held = self._slow[(*key, code)] = (period, self.value(key, params, code, period))
        return held[1]

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
                ack=mn in self.acked,
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

    def _minute_frame(
        self, key: tuple[str, str], params: OutletParams, t: int, interval: int
    ) -> list[Message]:
        window = t - interval
        pollutants: dict[str, dict[str, CpValue]] = {}
        for code in params.factors:
            v = self._minute_value(key, params, code, window, interval)
            acc = self._hour_sums.setdefault((*key, code, window - window % HOUR), [0.0, 0])
            acc[0] += v
            acc[1] += 1
            pollutants[code] = {
                "Avg": v,
                "Min": _reading(v * 0.95),
                "Max": _reading(v * 1.05),
                "Flag": self._flag(key, code, window),
            }
        return self._packets(key, params, "2051", window, pollutants)

    def _hour_frame(self, key: tuple[str, str], params: OutletParams, hour: int) -> list[Message]:
        hour_values: dict[str, dict[str, CpValue]] = {}
        means: dict[str, float] = {}
        # HJ 212: an hour of flue gas with fewer than 75 % of its minute records is flagged D.
        due = HOUR // self.minute_interval_s(key, hour)
        for code in params.factors:
            total, n = self._hour_sums.pop((*key, code, hour), (0.0, 0))
            mean = round(total / n, 4) if n else self.value(key, params, code, hour)
            flag = self._flag(key, code, hour)
            if 0 < n < 0.75 * due and flag == "N" and params.kind == "gas":
                flag = "D"
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

    def _power(self, enterprise_id: str, meter: MeterConfig, t: int) -> tuple[int, float]:
        """The meter's sample at ``t``: (ts, kW)."""
        rated = meter.rated_kw or 100.0
        load = _load(self.kind.get(enterprise_id, "industry"), t)
        p_kw = rated * (0.7 * load + 0.02) * self.rng.uniform(0.95, 1.05)
        if power_off(self.incidents, meter.id, enterprise_id, t):
            p_kw = 0.0
        return t, round(p_kw, 2)


def _power_message(meter_id: str, samples: list[tuple[int, float]]) -> Message:
    """Power JSON on the meter's own topic: one reading, or an array of them."""
    bodies = [
        {"ts": datetime.fromtimestamp(t, tz=UTC).isoformat(), "p_kw": kw} for t, kw in samples
    ]
    return f"power/{meter_id}", json.dumps(bodies[0] if len(bodies) == 1 else bodies).encode()


def _reading(value: float) -> float:
    """A value as an analyser reports it: to 0.01, or to 0.001 below 1 (total phosphorus at
    0.15 mg/L to 0.01 would repeat itself for an hour now and then: a false 恒值)."""
    return round(value, 3 if abs(value) < 1 else 2)


def _resent(message: Message, at: int) -> Message:
    """The same frame sent again at ``at`` as a new request (its own QN), as a logger
    backfilling history does."""
    topic, payload = message
    segment = payload[6:-6].decode()
    qn = make_qn(datetime.fromtimestamp(at, tz=UTC))
    return topic, encode_packet(re.sub(r"QN=\d+", f"QN={qn}", segment, count=1))
