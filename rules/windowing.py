"""Event-time windows: the watermark, the grace period and lateness, for both engines.

The rules judge *event time* (a reading's DataTime, a meter sample's time) in windows that
close as a source's own data move on, never by the clock:

- **Watermark.** Per source (an outlet's logger; an enterprise's meters) the latest event
  time it has sent, ``NO_WATERMARK`` before its first reading. Readings come in arrival order,
  so the watermark before a reading is the running maximum of the source's earlier ones.
- **Closing.** A window [start, end) closes when the watermark reaches ``end`` + the grace
  period (``closed``). An outlet's windows are clock hours and natural days (China time,
  ``rules.timebase``); they are judged in event-time order (``close``), a day before the first
  hour after it. A meter sample is a window of its own, ending at its time: samples are judged
  in time order once the grace has passed them (``closed_until``), so samples arriving out of
  order within the grace are judged in their place. ``END_OF_DATA`` (the end of a replay or a
  test) closes every window.
- **Late.** A reading whose window had closed by the watermark before it (``closed`` with
  that watermark) is late: counted, not judged. The raw archive keeps it, so a replay with
  ``include_late`` re-evaluates it. Out-of-order readings within the grace are not late.
- **Future.** A reading stamped more than ``max_future_s`` after it was received (``future``)
  is not used, and moves no watermark: a device clock far ahead would otherwise close every
  window early.

The predicates are plain arithmetic and comparisons, so one definition serves both engines:
the streaming engine (``rules.stream``) applies them to integers, the batch engine
(``rules.batch``) to polars columns (``tests/rules/test_windowing.py`` checks the two agree).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from rules.findings import Finding
from rules.timebase import DAY, HOUR

if TYPE_CHECKING:
    import polars as pl

NO_WATERMARK = -(2**62)  # before a source's first reading: nothing is closed
END_OF_DATA = 2**62  # a watermark that closes every window (flush)

H = TypeVar("H")  # what an engine keeps of an open hour


@overload
def future(t: int, received: int, max_future_s: int) -> bool: ...
@overload
def future(t: pl.Expr, received: pl.Expr, max_future_s: int) -> pl.Expr: ...
def future(t: Any, received: Any, max_future_s: int) -> Any:
    """Stamped more than ``max_future_s`` after it was received: not used."""
    return t > received + max_future_s


@overload
def closed(end: int, watermark: int, grace_s: int) -> bool: ...
@overload
def closed(end: pl.Expr, watermark: pl.Expr, grace_s: int) -> pl.Expr: ...
def closed(end: Any, watermark: Any, grace_s: int) -> Any:
    """Whether the window ending at ``end`` has closed at ``watermark``; with the watermark
    before a reading of the window: whether that reading is late."""
    return end + grace_s <= watermark


def closes_at(end: int, grace_s: int) -> int:
    """The watermark at which the window ending at ``end`` closes."""
    return end + grace_s


def closed_until(watermark: int, grace_s: int) -> int:
    """Every window (and meter sample) ending at or before this is closed at ``watermark``."""
    return watermark - grace_s


class DayJudge(Protocol):
    """The days side of an outlet's judge (``rules.judge.OutletJudge``)."""

    def open_days(self) -> list[int]: ...

    def day(self, start: int) -> list[Finding]: ...


def close(
    hours: Iterable[tuple[int, H]],
    days: DayJudge,
    watermark: int,
    grace_s: int,
    judge_hour: Callable[[int, H], list[Finding]],
) -> list[Finding]:
    """Judge an outlet's windows that ``watermark`` closes, in event-time order: the open
    ``hours`` (start, what the engine kept of it; in start order) with ``judge_hour``, each
    after the days that ended before it, then the days now closed."""
    out: list[Finding] = []
    for start, hour in hours:
        if not closed(start + HOUR, watermark, grace_s):
            break
        for d in days.open_days():
            if d + DAY <= start:  # closed: it ended before this closed hour began
                out += days.day(d)
        out += judge_hour(start, hour)
    for d in days.open_days():
        if closed(d + DAY, watermark, grace_s):
            out += days.day(d)
    return out
