"""Markings: what they excuse, and the yearly caps (incineration: 60 h / 700 h)."""

from datetime import datetime

from ingest.china_time import CHINA_TZ
from rules.markings import INCINERATION_CAPS, Marking, MarkingBook, MarkingCap
from rules.timebase import HOUR

KEY = ("E1", "DA001")
CAPS = {KEY: INCINERATION_CAPS}


def at(month: int, day: int, hour: int = 0, year: int = 2026) -> int:
    return int(datetime(year, month, day, hour, tzinfo=CHINA_TZ).timestamp())


def mark(kind: str, start: int, hours: float, factor: str | None = None) -> Marking:
    return Marking(*KEY, kind, start, start + int(hours * HOUR), factor)


def excused(book: MarkingBook, t: int, factor: str = "a34013") -> bool:
    return book.marking_at(*KEY, factor, t) is not None


def test_without_caps_every_mark_excuses():
    book = MarkingBook([mark("fault", at(1, 1), 100), mark("fault", at(2, 1), 10)])
    assert excused(book, at(1, 4, 3))  # hour 99 of the first mark
    assert excused(book, at(2, 1, 9))
    assert book.over_cap == []


def test_caps_stop_excusing_once_the_year_total_is_used():
    start_2 = at(3, 1)
    book = MarkingBook([mark("startup", at(1, 1), 50), mark("fault", start_2, 20)], CAPS)
    assert excused(book, at(1, 2, 1))  # inside the first 50 h
    assert excused(book, start_2 + 9 * HOUR)  # hour 60 is the last one excused
    assert not excused(book, start_2 + 10 * HOUR)
    assert not excused(book, start_2 + 19 * HOUR)
    [over] = book.over_cap
    assert (over.start, over.end) == (start_2 + 10 * HOUR, start_2 + 20 * HOUR)


def test_overlapping_marks_count_once_and_groups_have_their_own_cap():
    first = at(4, 1)
    book = MarkingBook(
        [
            mark("startup", first, 40),
            mark("fault", first + 10 * HOUR, 40),  # 30 h beyond the first: 50 h in all
            mark("oven_drying", at(5, 1), 600),  # the 700-h group: untouched by the 60-h one
            mark("maintenance", at(6, 1), 200),  # no cap
        ],
        CAPS,
    )
    assert excused(book, first + 49 * HOUR)
    assert excused(book, at(5, 1) + 599 * HOUR)
    assert excused(book, at(6, 1) + 199 * HOUR)
    assert book.over_cap == []
    usage = {u["types"]: u for u in book.cap_usage(KEY, at(7, 1))}
    assert usage["startup+shutdown+fault+accident"]["marked_hours"] == 50.0
    assert usage["oven_drying+cooling"]["marked_hours"] == 600.0
    assert not any(u["exceeded"] for u in usage.values())


def test_a_new_natural_year_starts_a_new_budget():
    book = MarkingBook(
        [
            mark("fault", at(12, 1, year=2025), 50),
            mark("accident", at(12, 31, year=2025), 48),  # 24 h in each year
            mark("fault", at(1, 10), 70),
        ],
        CAPS,
    )
    new_year = at(1, 1)
    assert excused(book, new_year - 15 * HOUR)  # 2025: 50 + 9 h
    assert not excused(book, new_year - 14 * HOUR)  # 2025's 60 h are used up at 10:00
    assert excused(book, new_year + HOUR)  # 2026's budget counts from zero
    assert excused(book, at(1, 10) + 35 * HOUR)  # 24 h used on 1 January, 36 h left
    assert not excused(book, at(1, 10) + 36 * HOUR)
    assert book.cap_usage(KEY, at(1, 12))[0]["exceeded"] is True
    assert book.cap_usage(KEY, at(1, 10))[0]["marked_hours"] == 24.0


def test_factor_marks_keep_their_factor_when_truncated():
    cap = {KEY: (MarkingCap(("fault",), 2.0),)}
    book = MarkingBook([mark("fault", at(8, 1), 4, factor="a21026")], cap)
    assert excused(book, at(8, 1, 1), "a21026")
    assert not excused(book, at(8, 1, 1), "a34013")
    assert not excused(book, at(8, 1, 2), "a21026")
    assert book.yearly_hours(*KEY, 2026) == {"fault": 4.0}
