"""rules/windowing.py: one definition of lateness and closing, evaluated on integers (stream)
and on polars columns (batch) alike."""

import itertools

import polars as pl

from rules import windowing as w
from rules.findings import Finding
from rules.timebase import DAY, HOUR

GRACE = 600
T0 = 1_795_190_400  # a China midnight


def test_boundaries():
    end = T0 + HOUR
    assert not w.closed(end, end + GRACE - 1, GRACE)
    assert w.closed(end, end + GRACE, GRACE)  # end + grace reached: closed (a reading is late)
    assert w.closes_at(end, GRACE) == end + GRACE
    assert w.closed(w.closed_until(end + GRACE, GRACE), end + GRACE, GRACE)
    assert not w.closed(w.closed_until(end + GRACE, GRACE) + 1, end + GRACE, GRACE)
    assert not w.closed(end, w.NO_WATERMARK, GRACE)
    assert w.closed(end, w.END_OF_DATA, GRACE)
    assert not w.future(T0 + 300, T0, 300)
    assert w.future(T0 + 301, T0, 300)


def test_integers_and_columns_agree():
    times = [T0 - 1, T0, T0 + 1, T0 + GRACE, T0 + HOUR + GRACE, w.NO_WATERMARK]
    rows = list(itertools.product(times, repeat=2))
    frame = pl.DataFrame(rows, schema={"a": pl.Int64, "b": pl.Int64}, orient="row")
    got = frame.select(
        w.closed(pl.col("a"), pl.col("b"), GRACE).alias("closed"),
        w.future(pl.col("a"), pl.col("b"), 300).alias("future"),
    )
    assert got["closed"].to_list() == [w.closed(a, b, GRACE) for a, b in rows]
    assert got["future"].to_list() == [w.future(a, b, 300) for a, b in rows]


class _Days:
    def __init__(self, days: list[int]) -> None:
        self.days = days
        self.judged: list[tuple[str, int]] = []

    def open_days(self) -> list[int]:
        return sorted(self.days)

    def day(self, start: int) -> list[Finding]:
        self.days.remove(start)
        self.judged.append(("day", start))
        return []


def test_close_judges_in_event_time_order():
    days = _Days([T0])
    hours = [(T0 + 23 * HOUR, "a"), (T0 + DAY, "b"), (T0 + DAY + HOUR, "c")]

    def judge_hour(start: int, kept: str) -> list[Finding]:
        days.judged.append((kept, start))
        return []

    watermark = T0 + DAY + HOUR + GRACE  # closes the first two hours only
    w.close(hours, days, watermark, GRACE, judge_hour)
    assert days.judged == [("a", T0 + 23 * HOUR), ("day", T0), ("b", T0 + DAY)]
