"""``level_changes`` is ``Level`` over columns: on random sequences of judged windows of
several keys (a condition holding at a tier and limit, or nothing; a key's first window
following another key's last), the rows it returns are the fires and clears ``Level.judge``
gives window by window, with the same tier and limit."""

from __future__ import annotations

import random

import polars as pl
import pytest

from rules.firing import Level
from rules.firing_columns import level_changes

CONDITIONS = [None, None, None, ("warning", 50.0), ("alarm", 100.0), ("warning", None)]


def _windows(seed: int) -> list[tuple[str, int, str | None, float | None]]:
    rng = random.Random(seed)
    rows = []
    for key in ("a", "b", "c"):
        for t in range(rng.randint(0, 40)):
            condition = rng.choice(CONDITIONS)
            tier, limit = condition if condition is not None else (None, rng.choice([None, 1.0]))
            rows.append((key, t, tier, limit))
    return rows


@pytest.mark.parametrize("seed", range(25))
def test_level_changes_are_levels_fires_and_clears(seed):
    rows = _windows(seed)
    level: Level[str, tuple[str, float | None]] = Level()
    expected = []
    for key, t, tier, limit in rows:
        change = level.judge(key, None if tier is None else (tier, limit))
        if change is not None:
            state, (held_tier, held_limit) = change
            expected.append((key, t, state, held_tier, held_limit))
    frame = pl.DataFrame(
        rows,
        schema={"key": pl.String, "t": pl.Int64, "tier": pl.String, "limit": pl.Float64},
        orient="row",
    )
    got = level_changes(frame, "key").select("key", "t", "state", "tier", "limit").rows()
    assert got == expected
    assert {state for *_, state, _tier, _limit in got} <= {"fire", "clear"}


def test_a_clear_names_what_held_and_then_nothing_until_it_holds_again():
    frame = pl.DataFrame(
        {
            "key": ["x"] * 5,
            "t": [0, 1, 2, 3, 4],
            "tier": ["alarm", None, None, "warning", None],
            "limit": [100.0, 7.0, None, 50.0, None],
        }
    )
    got = level_changes(frame, "key").select("t", "state", "tier", "limit").rows()
    assert got == [
        (0, "fire", "alarm", 100.0),
        (1, "clear", "alarm", 100.0),
        (3, "fire", "warning", 50.0),
        (4, "clear", "warning", 50.0),
    ]
