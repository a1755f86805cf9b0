"""The scripted incidents produce the findings they promise, through the service's own
decoding and rules (the replay engine, with its clock ticking at each minute received), and
the clean enterprises raise no alarm."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import get_args

from ingest.archive import ArchivedMessage
from ingest.hj212.timefmt import CHINA_TZ
from nonsite.replay import replay
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import FOREVER, Kind, scripted_config
from nonsite.simulator.traffic import FleetTraffic

START = int(datetime(2026, 11, 23, 0, 0, tzinfo=CHINA_TZ).timestamp())  # as the demo starts
END = START + 26 * 3600  # the wastewater day, its grace and an hour to spare


def _traffic(seed: int = 3):
    config, incidents = scripted_config(demo_fleet(30), START, END)
    traffic = FleetTraffic(config, seed=seed, incidents=incidents, since=START)
    messages, seq = [], 0
    for minute in range((END - START) // 60):
        t = START + 60 * minute
        for topic, payload in traffic.frames(t):
            seq += 1
            messages.append(ArchivedMessage(seq, (t + 30) * 1_000_000, topic, payload))
    return config, incidents, messages


def test_every_incident_opens_its_rule_at_its_tier_and_the_clean_fleet_stays_below_alarm():
    config, incidents, messages = _traffic()
    kinds = {i.kind for i in incidents}
    assert kinds == set(get_args(Kind))
    result = replay(config, messages, absence=True)
    fired = [f for f in result.findings if f.state == "fire"]
    for i in incidents:
        for rule, tier in i.expect:
            hits = [f for f in fired if (f.enterprise_id, f.rule) == (i.enterprise_id, rule)]
            assert hits, (i.name, rule)
            assert tier in {f.tier for f in hits}, (i.name, rule, {f.tier for f in hits})
    with_cases = {i.enterprise_id for i in incidents if i.expect}
    # Replay judges the windows still open when its input ends; a stream would not yet.
    closed = [f for f in fired if f.window_end + config.rules.grace_s <= END]
    clean = Counter((f.rule, f.tier) for f in closed if f.enterprise_id not in with_cases)
    assert not clean, clean  # the whole first day is sent, so not even B10
    assert result.late >= 1 and result.duplicates >= 1
    assert any("crc" in reason for reason in result.dead_letters), result.dead_letters
    assert any(i.end == FOREVER for i in incidents)
