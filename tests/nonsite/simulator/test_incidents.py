"""The scripted incidents produce the findings they promise, through the service's own
decoding and rules (the replay engine, with its clock ticking at each minute received); the
real fleet's conditions raise none of the rules they must not; and the untouched enterprises
raise nothing, the enterprises without a scripted alarm nothing at alarm tier."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import get_args

from ingest.archive import ArchivedMessage
from ingest.china_time import CHINA_TZ
from nonsite.replay import replay
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import ALL_OUTLETS, FOREVER, NO_ALARM, Kind, scripted_config
from nonsite.simulator.traffic import LOST_PREFIX, FleetTraffic

START = int(datetime(2026, 11, 23, 0, 0, tzinfo=CHINA_TZ).timestamp())  # as the demo starts
# The wastewater day, the plant's stop (from noon, across the midnight) and its restart
# judged, with the grace and an hour to spare.
END = START + 28 * 3600
STOP_HOURS = 14


def _traffic(seed: int = 3):
    config, incidents = scripted_config(demo_fleet(35), START, END, stop_hours=STOP_HOURS)
    traffic = FleetTraffic(config, seed=seed, incidents=incidents, since=START)
    messages, seq = [], 0
    for minute in range((END - START) // 60):
        t = START + 60 * minute
        for topic, payload in traffic.frames(t):
            if topic.startswith(LOST_PREFIX):
                continue  # lost on the way (link_lost): the platform never sees it
            seq += 1
            messages.append(ArchivedMessage(seq, (t + 30) * 1_000_000, topic, payload))
    return config, incidents, messages


def test_every_incident_opens_its_rule_at_its_tier_and_the_clean_fleet_stays_below_alarm():
    config, incidents, messages = _traffic()
    kinds = {i.kind for i in incidents}
    assert kinds == set(get_args(Kind))
    result = replay(config, messages, absence=True)
    fired = [f for f in result.findings if f.state == "fire"]
    problems: list[str] = []
    for i in incidents:
        for rule, tier in i.expect:
            hits = [f for f in fired if (f.enterprise_id, f.rule) == (i.enterprise_id, rule)]
            if tier not in {f.tier for f in hits}:
                problems.append(f"{i.name}: no {rule} at {tier} ({sorted({f.tier for f in hits})})")
    # Replay judges the windows still open when its input ends; a stream would not yet.
    closed = [f for f in fired if f.window_end + config.rules.grace_s <= END]
    for i in incidents:
        mine = [
            f
            for f in closed
            if f.enterprise_id == i.enterprise_id and i.source_id in (f.source_id, ALL_OUTLETS)
        ]
        for rule in i.expect_not:
            wrong = [f for f in mine if (f.tier == "alarm" if rule == NO_ALARM else f.rule == rule)]
            if wrong:
                problems.append(f"{i.name}: {rule} must not fire: {_brief(wrong)}")
    touched = {i.enterprise_id for i in incidents}
    untouched = [f for f in closed if f.enterprise_id not in touched]
    if untouched:  # the whole first day is sent, so not even B10
        problems.append(f"untouched enterprises: {_brief(untouched)}")
    alarmed = {i.enterprise_id for i in incidents for _rule, tier in i.expect if tier == "alarm"}
    alarms = [f for f in closed if f.enterprise_id not in alarmed and f.tier == "alarm"]
    if alarms:
        problems.append(f"alarms without a scripted alarm: {_brief(alarms)}")
    assert not problems, "\n".join(problems)
    assert result.late >= 1 and result.duplicates >= 1
    assert any("crc" in reason for reason in result.dead_letters), result.dead_letters
    assert any(i.end == FOREVER for i in incidents)


def _brief(findings: list) -> str:
    return str(Counter((f.enterprise_id, f.source_id, f.rule, f.tier) for f in findings))
