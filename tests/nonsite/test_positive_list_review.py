"""The positive list's daily check, on SQLite and PostgreSQL: six green months propose an entry,
a member turning yellow is proposed for exit, a member from the configuration is not proposed
for exit on the first day, and a rejected change waits before it is proposed again."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.positive_list import decide, pending
from alerts.risk import Item, RiskInputs, rate
from alerts.risk_record import keep
from alerts.workflow import Actor
from ingest.china_time import CHINA_TZ
from nonsite.config.load import parse_config
from nonsite.positive_list_review import check_fleet, review_if_due
from nonsite.risk_rating import weights_of

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=CHINA_TZ)
SUPERVISOR = Actor("李监管", "supervisor")


def config(**section: object):
    enterprises = [
        {"id": "E1", "name": "甲"},  # green for six months: proposed for entry
        {"id": "E2", "name": "乙", "positive_list": True},  # a member turned yellow
        {"id": "E3", "name": "丙", "positive_list": True},  # a member, rated once, green
        {"id": "E4", "name": "丁", "supervision_class": "key"},  # key class may not enter
    ]
    return parse_config(
        {
            "positive_list": {"classes": ["general", "special"], **section},
            "enterprises": enterprises,
        },
        "p.toml",
        env={},
    )


def rated(engine, cfg, eid: str, days: int, *, last_items: tuple[Item, ...] = ()) -> None:
    """``eid`` rated every day of the last ``days`` (green), the last with ``last_items``."""
    weights = weights_of(cfg)
    with engine.begin() as conn:
        for back in range(days - 1, -1, -1):
            at = NOW - timedelta(days=back)
            items = last_items if back == 0 else ()
            keep(
                conn, rate(RiskInputs(eid, items, 0.99, "general"), at.date(), weights), at, "daily"
            )


def test_the_daily_check_proposes_entries_and_exits(engine):
    cfg = config()
    rated(engine, cfg, "E1", 180)
    rated(engine, cfg, "E4", 180)
    yellow = tuple(Item("exceedance_alarm", f"case:{i}", NOW.date()) for i in range(3))
    rated(engine, cfg, "E2", 30, last_items=yellow)
    rated(engine, cfg, "E3", 1)
    checks = {c.enterprise_id: c for c in check_fleet(engine, cfg, NOW.date())}
    assert checks["E1"].entry_failed == ()
    assert checks["E1"].found["green_days"] == 180
    assert checks["E3"].hold_failed == () and checks["E3"].entry_failed  # only a day green
    assert "监管类别不在可纳入范围" in checks["E4"].entry_failed
    assert checks["E2"].hold_failed == ("当前非绿码",)

    assert review_if_due(engine, cfg, NOW) == 2
    with engine.connect() as conn:
        proposals = {p.enterprise_id: p for p in pending(conn)}
    assert sorted(proposals) == ["E1", "E2"]
    assert proposals["E1"].change == "enter" and proposals["E1"].criteria["green_days"] == 180
    assert (proposals["E2"].change, proposals["E2"].reason) == ("exit", "当前非绿码")
    assert review_if_due(engine, cfg, NOW + timedelta(hours=1)) == 0  # waiting already

    with engine.begin() as conn:
        decide(conn, proposals["E1"].id, SUPERVISOR, False, "信访件尚未办结", NOW)
    assert review_if_due(engine, cfg, NOW + timedelta(days=1)) == 0  # rejected: it waits
    later = NOW + timedelta(days=31)
    stale = {c.enterprise_id: c for c in check_fleet(engine, cfg, later.date())}["E1"]
    assert stale.entry_failed == ("最近评级为 2026-12-06，已过期",)  # not rated since
    with engine.begin() as conn:
        keep(conn, rate(RiskInputs("E1", (), 0.99, "general"), later.date(), weights_of(cfg)),
             later, "daily")  # fmt: skip
    assert review_if_due(engine, cfg, later) >= 1
    with engine.connect() as conn:
        assert any(p.enterprise_id == "E1" and p.change == "enter" for p in pending(conn))


def test_how_long_a_rejected_change_waits_is_configured(engine):
    cfg = config(repropose_after_days=3)
    rated(engine, cfg, "E1", 180)

    def e1_waiting() -> list:
        with engine.connect() as conn:
            return [p for p in pending(conn) if p.enterprise_id == "E1"]

    review_if_due(engine, cfg, NOW)
    (proposal,) = e1_waiting()
    with engine.begin() as conn:
        decide(conn, proposal.id, SUPERVISOR, False, "信访件尚未办结", NOW)
    for days in (1, 2, 3, 4):
        later = NOW + timedelta(days=days)
        with engine.begin() as conn:
            keep(conn, rate(RiskInputs("E1", (), 0.99, "general"), later.date(), weights_of(cfg)),
                 later, "daily")  # fmt: skip
        review_if_due(engine, cfg, later)
        assert len(e1_waiting()) == (1 if days > 3 else 0), days  # three days, not thirty


def test_a_member_whose_transmission_is_not_known_yet_is_not_proposed_for_exit(engine):
    """The second morning of a service (or of an enterprise's data): nothing kept yet, so no
    transmission rate; that is no evidence against a member, while an entry still needs it."""
    cfg = config()
    with engine.begin() as conn:
        for eid in ("E1", "E3"):  # E3 a member, E1 not: both green, neither with a rate yet
            keep(conn, rate(RiskInputs(eid, (), None, "general"), NOW.date(), weights_of(cfg)),
                 NOW, "daily")  # fmt: skip
    checks = {c.enterprise_id: c for c in check_fleet(engine, cfg, NOW.date())}
    assert checks["E3"].hold_failed == ()
    assert any("无有效传输率" in why for why in checks["E1"].entry_failed)
    review_if_due(engine, cfg, NOW)
    with engine.connect() as conn:
        assert not [p for p in pending(conn) if p.enterprise_id in ("E1", "E3")]
