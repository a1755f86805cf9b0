"""Enterprise risk rating (环保码: 红码 / 黄码 / 绿码), explainable and reproducible.

A rating is a sum of points, each point traceable to one thing on the record over the rating
window (``RiskWeights.window_days``, a year by default) ending on the rating's day:

- ``violation``: a confirmed violation (违法事实成立 on a brigade's report, or a penalty
  decision in effect: ``alerts.decisions``), per case;
- ``exceedance_alarm`` / ``exceedance_warning``: an exceedance case (超标: A3, A4, A4V, A5-x,
  A8) by its tier;
- ``fraud``: a case of a rule that suspects manipulation (O2 dilution B8-1 to B8-3, converted
  values that do not match B8-5, calibration-like plateaus B8-7, copied data B8-8, device hour
  values that differ A1D, marks contradicted by power A7-2);
- ``data_quality``: any other data case (B rules: zero, constant, missing, offline, …; C8);
- ``power``: a power-usage case (C1-C7: control off while producing, emergency orders, …);
- ``unexplained``: a reminder not explained by its deadline (overdue explanation);
- ``rectification_overdue`` / ``rectification_failed``: a rectification round past its deadline,
  or failing its verification;
- ``clue``: a complaint or other clue (线索) attributed to the enterprise;
- ``transmission``: each percentage point of the effective transmission rate (有效传输率) of the
  last ``transmission_days`` below ``transmission_target``;
- ``class``: the supervision class (重点 / 特殊 / 一般), a standing part.

A case the centre verified as a false positive counts nothing. The colour follows the score:
``red_at`` and above 红码, ``yellow_at`` and above 黄码, else 绿码. The rating keeps its inputs
(each counted item with its reference, date and points) and the weights it was made with, so
:func:`rate` over them gives the same rating again, and its contributions sum to its score.
It also says when it would change: the first day the window lets go of enough items to change
the colour, and how many points (what kind of case) would raise it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, Final, Literal

Color = Literal["green", "yellow", "red"]
COLOR_NAMES: Final = {"green": "绿码", "yellow": "黄码", "red": "红码"}
SupervisionClass = Literal["key", "special", "general"]
CLASS_NAMES: Final = {"key": "重点监管", "special": "特殊监管", "general": "一般监管"}

EXCEEDANCE_RULES: Final = frozenset({"A3", "A4", "A4V", "A5-1", "A5-2", "A5-3", "A8"})
FRAUD_RULES: Final = frozenset({"A1D", "A7-2", "B8-1", "B8-2", "B8-3", "B8-5", "B8-7", "B8-8"})
POWER_RULES: Final = frozenset({"C1", "C2", "C3", "C4", "C5", "C6", "C7"})

# What each kind of item is, in the field's words (the explanation's lines).
KIND_NAMES: Final = {
    "violation": "违法事实成立",
    "exceedance_alarm": "超标（报警）",
    "exceedance_warning": "超标（预警）",
    "fraud": "疑似弄虚作假",
    "data_quality": "数据异常",
    "power": "用电异常",
    "unexplained": "预警未按期说明",
    "rectification_overdue": "整改逾期",
    "rectification_failed": "整改核查未通过",
    "clue": "投诉举报线索",
    "transmission": "有效传输率不足",
    "class": "监管类别",
}
WINDOWED: Final = tuple(k for k in KIND_NAMES if k not in ("transmission", "class"))


@dataclass(frozen=True, slots=True)
class RiskWeights:
    """Points per item of each kind, the colour thresholds and the windows [I]."""

    window_days: int = 365
    transmission_days: int = 30
    transmission_target: float = 0.90  # effective transmission rate below it costs points
    yellow_at: float = 20.0
    red_at: float = 60.0
    points: Mapping[str, float] = field(
        default_factory=lambda: {
            "violation": 30.0,
            "exceedance_alarm": 10.0,
            "exceedance_warning": 3.0,
            "fraud": 15.0,
            "data_quality": 2.0,
            "power": 5.0,
            "unexplained": 5.0,
            "rectification_overdue": 8.0,
            "rectification_failed": 10.0,
            "clue": 3.0,
            "transmission": 1.0,  # per percentage point below the target
        }
    )
    class_points: Mapping[str, float] = field(
        default_factory=lambda: {"key": 10.0, "special": 5.0, "general": 0.0}
    )

    def color(self, score: float) -> Color:
        if score >= self.red_at:
            return "red"
        if score >= self.yellow_at:
            return "yellow"
        return "green"

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        return doc | {"points": dict(self.points), "class_points": dict(self.class_points)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RiskWeights:
        points, standing = dict(doc["points"]), dict(doc["class_points"])
        return cls(**(dict(doc) | {"points": points, "class_points": standing}))


@dataclass(frozen=True, slots=True)
class Item:
    """One thing on the record the rating counts: ``ref`` names it (``case:12``, ``clue:4``,
    ``rectification:3``), ``on`` is the China day it entered the record."""

    kind: str
    ref: str
    on: date
    note: str = ""


@dataclass(frozen=True, slots=True)
class RiskInputs:
    """What a rating is made from: the record's items (any age: the window picks), the
    effective transmission rate of the last ``transmission_days`` (None: nothing was due) and
    the supervision class."""

    enterprise_id: str
    items: tuple[Item, ...]
    transmission_rate: float | None
    supervision_class: SupervisionClass = "general"

    def to_json(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "items": [
                {"kind": i.kind, "ref": i.ref, "on": i.on.isoformat(), "note": i.note}
                for i in self.items
            ],
            "transmission_rate": self.transmission_rate,
            "supervision_class": self.supervision_class,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RiskInputs:
        return cls(
            doc["enterprise_id"],
            tuple(
                Item(i["kind"], i["ref"], date.fromisoformat(i["on"]), i.get("note", ""))
                for i in doc["items"]
            ),
            doc["transmission_rate"],
            doc["supervision_class"],
        )


@dataclass(frozen=True, slots=True)
class Contribution:
    kind: str
    name: str
    count: float  # items, or percentage points short for the transmission rate
    each: float  # points per item (per percentage point)
    points: float
    refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NextChange:
    """When the rating would change by itself (the window letting go of items), and how far
    it is from the next colour up."""

    falls_on: date | None  # the first day the colour falls, if nothing new comes
    falls_to: Color | None
    released: tuple[str, ...]  # the items whose leaving makes it fall
    rise_in: float | None  # points that would raise it to the next colour (None: red)
    rise_to: Color | None


@dataclass(frozen=True, slots=True)
class Rating:
    enterprise_id: str
    day: date
    score: float
    color: Color
    contributions: tuple[Contribution, ...]
    next_change: NextChange
    inputs: RiskInputs
    weights: RiskWeights


def _points(value: float) -> float:
    return round(value, 2)


def counted(items: Iterable[Item], day: date, weights: RiskWeights) -> list[Item]:
    """The items inside the window that ends on ``day`` (inclusive): entered on one of the
    ``window_days`` days up to it."""
    first = day - timedelta(days=weights.window_days - 1)
    return [i for i in items if first <= i.on <= day and i.kind in WINDOWED]


def _contributions(inputs: RiskInputs, day: date, weights: RiskWeights) -> list[Contribution]:
    by_kind: dict[str, list[Item]] = {}
    for item in counted(inputs.items, day, weights):
        by_kind.setdefault(item.kind, []).append(item)
    out: list[Contribution] = []
    for kind in WINDOWED:
        items = sorted(by_kind.get(kind, ()), key=lambda i: (i.on, i.ref))
        each = float(weights.points.get(kind, 0.0))
        if items and each:
            n = len(items)
            refs = tuple(i.ref for i in items)
            out.append(Contribution(kind, KIND_NAMES[kind], n, each, _points(n * each), refs))
    rate = inputs.transmission_rate
    if rate is not None and rate < weights.transmission_target:
        short = _points((weights.transmission_target - rate) * 100)
        each = float(weights.points.get("transmission", 0.0))
        if short and each:
            name = KIND_NAMES["transmission"]
            out.append(Contribution("transmission", name, short, each, _points(short * each), ()))
    standing = float(weights.class_points.get(inputs.supervision_class, 0.0))
    if standing:
        name = f"{KIND_NAMES['class']}：{CLASS_NAMES[inputs.supervision_class]}"
        out.append(Contribution("class", name, 1, standing, _points(standing), ()))
    return out


def _score(contributions: Sequence[Contribution]) -> float:
    return _points(sum(c.points for c in contributions))


def rate(inputs: RiskInputs, day: date, weights: RiskWeights) -> Rating:
    """The rating of ``inputs`` on ``day``: the same inputs and weights give the same rating."""
    contributions = tuple(_contributions(inputs, day, weights))
    score = _score(contributions)
    color = weights.color(score)
    return Rating(
        inputs.enterprise_id,
        day,
        score,
        color,
        contributions,
        _next_change(inputs, day, weights, color, score),
        inputs,
        weights,
    )


def _next_change(
    inputs: RiskInputs, day: date, weights: RiskWeights, color: Color, score: float
) -> NextChange:
    # The window lets go of an item on the day after its last counted day: step through those
    # days in order and see when the colour first falls (the transmission rate and the class
    # are taken as they are now).
    leaving = sorted(
        {i.on + timedelta(days=weights.window_days) for i in counted(inputs.items, day, weights)}
    )
    falls_on: date | None = None
    falls_to: Color | None = None
    released: tuple[str, ...] = ()
    for later in leaving:
        then = weights.color(_score(_contributions(inputs, later, weights)))
        if then != color:
            falls_on, falls_to = later, then
            gone = set(counted(inputs.items, day, weights)) - set(
                counted(inputs.items, later, weights)
            )
            released = tuple(sorted(i.ref for i in gone))
            break
    if color == "red":
        return NextChange(falls_on, falls_to, released, None, None)
    up: Color = "red" if color == "yellow" else "yellow"
    threshold = weights.red_at if up == "red" else weights.yellow_at
    return NextChange(falls_on, falls_to, released, _points(threshold - score), up)


def rating_json(r: Rating) -> dict[str, Any]:
    """The rating as the API and the store keep it (its inputs and weights with it)."""
    n = r.next_change
    return {
        "enterprise_id": r.enterprise_id,
        "day": r.day.isoformat(),
        "score": r.score,
        "color": r.color,
        "color_name": COLOR_NAMES[r.color],
        "contributions": [asdict(c) | {"refs": list(c.refs)} for c in r.contributions],
        "next_change": {
            "falls_on": n.falls_on.isoformat() if n.falls_on else None,
            "falls_to": n.falls_to,
            "falls_to_name": COLOR_NAMES[n.falls_to] if n.falls_to else None,
            "released": list(n.released),
            "rise_in": n.rise_in,
            "rise_to": n.rise_to,
            "rise_to_name": COLOR_NAMES[n.rise_to] if n.rise_to else None,
        },
        "inputs": r.inputs.to_json(),
        "weights": r.weights.to_json(),
    }


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


def rerate(stored: Mapping[str, Any]) -> Rating:
    """A stored rating made again from its own inputs and weights (anyone can check it)."""
    return rate(
        RiskInputs.from_json(stored["inputs"]),
        date.fromisoformat(stored["day"]),
        RiskWeights.from_json(stored["weights"]),
    )


__all__ = [
    "CLASS_NAMES",
    "COLOR_NAMES",
    "EXCEEDANCE_RULES",
    "FRAUD_RULES",
    "KIND_NAMES",
    "POWER_RULES",
    "Color",
    "Contribution",
    "Item",
    "NextChange",
    "Rating",
    "RiskInputs",
    "RiskWeights",
    "SupervisionClass",
    "counted",
    "dumps",
    "rate",
    "rating_json",
    "rerate",
]
