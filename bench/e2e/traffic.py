"""The benchmark's traffic: the simulator's, fixed by its seed, and the probes' frames.

The mix is what the demo fleet sends minute by minute (real-time CN 2011 from every outlet,
10-minute CN 2051, hour CN 2061 and day CN 2031 records, power JSON from every meter), from
00:00 China time two days back; the scripted incidents and the added exceedances are in it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

from ingest.hj212.encoder import data_packets
from nonsite.config.model import Config
from nonsite.simulator.incidents import FOREVER, Incident
from nonsite.simulator.traffic import FleetTraffic, Message
from rules.timebase import HOUR


def fleet_minutes(config: Config, incidents: list[Incident], start: int) -> Iterator[Message]:
    """The fleet's traffic from ``start``, minute after minute, without end."""
    traffic = FleetTraffic(config, incidents=incidents, since=start)
    traffic.realtime = True
    t = start
    while True:
        yield from traffic.frames(t)
        t += 60


def take(messages: Iterator[Message], n: int) -> list[Message]:
    out = []
    for message in messages:
        out.append(message)
        if len(out) == n:
            break
    return out


def describe(messages: list[Message]) -> dict[str, int]:
    """How many of each kind: CN of the HJ 212 frames, or power."""
    kinds: Counter[str] = Counter()
    for topic, payload in messages:
        if topic.startswith("power/"):
            kinds["power JSON"] += 1
        else:
            cn = payload.split(b"CN=", 1)[1][:4].decode()
            kinds[f"HJ 212 CN {cn}"] += 1
    return dict(sorted(kinds.items()))


def probe_priming(probes: Config, hour: int) -> list[Message]:
    """Every probe outlet's hour ``hour`` at 1.8 times its SO2 limit: minute records and the
    hour record. Nothing judges it until data of two hours later arrives (grace)."""
    incidents = [
        Incident(
            name="探针",
            kind="exceed",
            enterprise_id=e.id,
            source_id=o.id,
            start=hour,
            end=FOREVER,
            factor="a21026",
        )
        for e in probes.enterprises
        for o in e.outlets
    ]
    traffic = FleetTraffic(probes, incidents=incidents, since=hour)
    out: list[Message] = []
    for t in range(hour + 60, hour + HOUR + 60, 60):
        out += traffic.frames(t)
    return out


def probe_closer(mn: str, at: int) -> Message:
    """A real-time frame stamped ``at``: it moves the outlet's watermark past the primed
    hour's end + grace, which closes the hour and raises its exceedance."""
    [payload] = data_packets(
        st="31",
        cn="2011",
        pw="123456",
        mn=mn,
        data_time=datetime.fromtimestamp(at, tz=UTC),
        pollutants={
            "a21026": {"Rtd": 20.0, "Flag": "N"},
            "a19001": {"Rtd": 7.5, "Flag": "N"},
            "a00000": {"Rtd": 120.0, "Flag": "N"},
        },
        ack=False,
    )
    return f"hj212/{mn}", payload
