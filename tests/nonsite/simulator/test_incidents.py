"""The scripted incidents produce the findings they promise, through the service's own
decoding and rules (the replay engine), and the clean enterprises raise no alarm."""

from __future__ import annotations

from datetime import datetime

from ingest.archive import ArchivedMessage
from ingest.hj212.timefmt import CHINA_TZ
from nonsite.config.load import parse_config
from nonsite.replay import replay
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import demo_incidents
from nonsite.simulator.traffic import FleetTraffic

START = int(datetime(2026, 11, 23, 6, 0, tzinfo=CHINA_TZ).timestamp())


def test_each_incident_raises_its_rule_and_the_clean_fleet_stays_below_alarm():
    config = parse_config(demo_fleet(40), "demo", env={})
    incidents = demo_incidents(config, START)
    assert {i.expect_rule for i in incidents} == {"A3", "B2", "C1"}
    traffic = FleetTraffic(config, seed=3, incidents=incidents)
    messages, seq = [], 0
    for minute in range(14 * 60):
        t = START + 60 * minute
        for topic, payload in traffic.frames(t):
            seq += 1
            messages.append(ArchivedMessage(seq, (t + 30) * 1_000_000, topic, payload))
    found = [f for f in replay(config, messages, absence=False).findings if f.state == "fire"]
    for i in incidents:
        hits = [f for f in found if (f.enterprise_id, f.rule) == (i.enterprise_id, i.expect_rule)]
        assert hits, i.name
        assert {f.tier for f in hits} == {i.expect_tier}, i.name
    involved = {i.enterprise_id for i in incidents}
    clean = {f.rule for f in found if f.enterprise_id not in involved}
    # The clean fleet raises nothing but B10: the run covers 14 h of a day, so each day's
    # effective transmission rate is below 90 % (a full day's traffic would not be).
    assert clean <= {"B10"}
