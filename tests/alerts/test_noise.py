"""Silences and offline inhibition: suppressed findings open no case but are not lost."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from alerts.noise import active_silences, add_silence
from alerts.schema import suppressed
from tests.alerts.conftest import finding


def silence(store, clock, **scope):
    with store.begin() as conn:
        return add_silence(
            conn,
            reason="脱硫塔检修",
            created_by="李监管",
            starts_at=clock.now,
            ends_at=clock.now + timedelta(hours=4),
            now=clock.now,
            **scope,
        )


def suppressed_rows(store):
    with store.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(suppressed.c.finding_id, suppressed.c.reason, suppressed.c.ref)
            )
        ]


@pytest.mark.parametrize(
    ("scope", "silenced"),
    [
        ({"enterprise_id": "E1"}, True),
        ({"enterprise_id": "E1", "source_id": "DA001"}, True),
        ({"enterprise_id": "E1", "source_id": "DA002"}, False),
        ({"rule": "A3"}, True),
        ({"rule": "B2"}, False),
    ],
)
def test_a_silence_suppresses_what_it_covers_and_records_it(store, book, clock, scope, silenced):
    sid = silence(store, clock, **scope)
    f = finding()
    with store.begin() as conn:
        done = book.apply(conn, [f])
    assert (done.suppressed, len(done.opened)) == ((1, 0) if silenced else (0, 1))
    assert suppressed_rows(store) == ([(f.id, "silence", str(sid))] if silenced else [])


def test_a_silence_ends_and_the_condition_then_opens_its_case(store, book, clock):
    silence(store, clock, enterprise_id="E1")
    with store.begin() as conn:
        assert book.apply(conn, [finding()]).opened == []
    clock.advance(hours=4)
    with store.connect() as conn:
        assert active_silences(conn, clock.now) == []
    with store.begin() as conn:
        assert len(book.apply(conn, [finding(hour=4)]).opened) == 1


def test_an_offline_logger_inhibits_its_outlets_exceedance_and_anomaly_cases(store, book):
    offline = finding("B8", tier="warning", factor=None, value=900.0, limit=600.0)
    with store.begin() as conn:
        [b8] = book.apply(conn, [offline]).opened
        done = book.apply(
            conn,
            [
                finding(),  # A3 on the offline outlet: inhibited
                finding("B2", tier="warning", limit=None),  # B2 likewise
                finding(source="DA002"),  # another outlet: its own case
            ],
        )
    assert done.suppressed == 2 and len(done.opened) == 1
    assert {r[1:] for r in suppressed_rows(store)} == {("inhibited", str(b8))}
    with store.begin() as conn:  # back online: the next exceedance opens a case
        book.apply(conn, [finding("B8", state="clear", tier="warning", factor=None, hour=1)])
        assert len(book.apply(conn, [finding(hour=2)]).opened) == 1


def test_clears_are_never_suppressed(store, book, clock):
    with store.begin() as conn:
        [cid] = book.apply(conn, [finding("B2", tier="warning", limit=None)]).opened
    silence(store, clock, enterprise_id="E1")
    with store.begin() as conn:
        done = book.apply(conn, [finding("B2", "clear", "warning", hour=1, limit=None)])
    assert done.resolved == [cid] and done.suppressed == 0


def test_a_silence_needs_a_reason_an_end_after_its_start_and_an_enterprise_for_a_source(
    store, clock
):
    with store.begin() as conn:
        for kw, problem in (
            ({"reason": " "}, "needs a reason"),
            ({"ends_at": clock.now - timedelta(hours=1)}, "end after"),
            ({"source_id": "DA001"}, "name its enterprise"),
        ):
            args = {
                "reason": "检修",
                "created_by": "x",
                "starts_at": clock.now,
                "ends_at": clock.now + timedelta(hours=1),
                "now": clock.now,
                **kw,
            }
            with pytest.raises(ValueError, match=problem):
                add_silence(conn, **args)
