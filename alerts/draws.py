"""双随机 draws (随机抽取检查对象、随机选派执法检查人员): who is inspected this period, and by whom.

The inspection object library (名录库) is the fleet with each enterprise's region, industry,
size, supervision class (重点 / 特殊 / 一般), positive-list membership and risk rating. Each
class has its quota for the period, a share of its members rounded up ("重点监管单位和特殊监管
单位每季度不低于25%… 一般监管单位至少按照1:10"). Within a class the draw is weighted by the
risk rating (绿码 1, 黄码 2, 红码 4 by default): weighted sampling without replacement by
Efraimidis and Spirakis' keys (each candidate's ``u ** (1 / weight)``, the largest keys win),
so that a single pick's chance is exactly its weight's share. Positive-list members are left
out of on-site draws when so configured. Each drawn enterprise gets inspectors drawn uniformly
from its brigade's (two by default: 执法人员不少于两人).

Reproducible: the random numbers come from SHA-256 of the published seed and a counter, taken
in an order fixed by the inputs (enterprises and inspectors sorted), so anyone with the seed
and the recorded inputs (:func:`draw_json` keeps them) gets the same draw (:func:`redraw`).

Written by hand, why: ``random.Random(seed)`` is reproducible only within one Python's
implementation of its algorithms (``sample`` and ``choices`` have changed between versions);
a published draw must be re-runnable by anyone, so the generator is spelled out here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

DEFAULT_SHARES: Final = {"key": 0.25, "special": 0.25, "general": 0.10}
DEFAULT_COLOR_WEIGHTS: Final = {"green": 1.0, "yellow": 2.0, "red": 4.0}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entry of the inspection object library."""

    enterprise_id: str
    supervision_class: str
    color: str | None  # the latest risk rating's colour (None: not rated: weighed as green)
    positive_list: bool = False
    brigade: str | None = None
    region: str = ""
    industry: str = ""
    size: str = ""


@dataclass(frozen=True, slots=True)
class DrawRules:
    shares: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    color_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_COLOR_WEIGHTS))
    exclude_positive_list: bool = True
    inspectors_each: int = 2

    def weight(self, c: Candidate) -> float:
        return float(self.color_weights.get(c.color or "green", 1.0))


@dataclass(frozen=True, slots=True)
class Drawn:
    enterprise_id: str
    supervision_class: str
    color: str | None
    weight: float
    brigade: str | None
    inspectors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Quota:
    members: int  # the class's enterprises in the library
    share: float
    quota: int  # ceil(share × members)
    eligible: int  # those that may be drawn (positive-list members left out, if so configured)
    drawn: int


@dataclass(frozen=True, slots=True)
class Draw:
    seed: str
    period: str
    quotas: Mapping[str, Quota]
    drawn: tuple[Drawn, ...]
    short: tuple[str, ...]  # what could not be met (fewer eligible than the quota, inspectors)


class SeededStream:
    """Uniform numbers in (0, 1) from SHA-256(seed, counter): the same on any machine."""

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode()
        self._n = 0

    def uniform(self) -> float:
        digest = hashlib.sha256(self._seed + b"/" + str(self._n).encode()).digest()
        self._n += 1
        # 53 bits, shifted off zero: u in (0, 1), never 0 (0 ** (1 / w) would tie at 0).
        return (int.from_bytes(digest[:7], "big") >> 3 | 1) / 2.0**53

    def __iter__(self) -> Iterator[float]:
        while True:
            yield self.uniform()


def quota_of(share: float, members: int) -> int:
    """A class's quota: its share of the members, rounded up (at least the share)."""
    return min(members, math.ceil(share * members - 1e-9))


def draw(
    candidates: Sequence[Candidate],
    inspectors: Mapping[str, Sequence[str]],
    rules: DrawRules,
    seed: str,
    period: str,
) -> Draw:
    """The period's draw from the library and the brigades' inspectors, by the seed."""
    stream = SeededStream(f"{period}/{seed}")
    ordered = sorted(candidates, key=lambda c: c.enterprise_id)
    quotas: dict[str, Quota] = {}
    drawn: list[Drawn] = []
    short: list[str] = []
    for cls in sorted(rules.shares):
        members = [c for c in ordered if c.supervision_class == cls]
        eligible = [c for c in members if not (rules.exclude_positive_list and c.positive_list)]
        quota = quota_of(rules.shares[cls], len(members))
        # Efraimidis-Spirakis: one number per eligible candidate, in library order.
        keyed = [(u ** (1.0 / rules.weight(c)), c) for c, u in zip(eligible, stream, strict=False)]
        keyed.sort(key=lambda kc: (-kc[0], kc[1].enterprise_id))
        chosen = [c for _, c in keyed[:quota]]
        if len(chosen) < quota:
            short.append(f"{cls}: {len(eligible)} eligible for a quota of {quota}")
        quotas[cls] = Quota(len(members), rules.shares[cls], quota, len(eligible), len(chosen))
        for c in chosen:
            pool = sorted(inspectors.get(c.brigade or "", ()))
            picked = _pick(pool, rules.inspectors_each, stream)
            if len(picked) < rules.inspectors_each:
                short.append(f"{c.enterprise_id}: {len(picked)} inspectors in {c.brigade}")
            drawn.append(Drawn(c.enterprise_id, cls, c.color, rules.weight(c), c.brigade, picked))
    return Draw(seed, period, quotas, tuple(drawn), tuple(short))


def _pick(pool: list[str], k: int, stream: SeededStream) -> tuple[str, ...]:
    """``k`` of ``pool`` uniformly, without replacement (a partial Fisher-Yates shuffle)."""
    pool = list(pool)
    for i in range(min(k, len(pool))):
        j = i + int(stream.uniform() * (len(pool) - i))
        pool[i], pool[j] = pool[j], pool[i]
    return tuple(pool[: min(k, len(pool))])


def draw_json(
    d: Draw,
    candidates: Sequence[Candidate],
    inspectors: Mapping[str, Sequence[str]],
    rules: DrawRules,
) -> dict[str, Any]:
    """The draw with everything it was made from: re-run it with :func:`redraw`."""
    return {
        "seed": d.seed,
        "period": d.period,
        "quotas": {k: asdict(q) for k, q in d.quotas.items()},
        "drawn": [asdict(x) | {"inspectors": list(x.inspectors)} for x in d.drawn],
        "short": list(d.short),
        "inputs": {
            "candidates": [asdict(c) for c in sorted(candidates, key=lambda c: c.enterprise_id)],
            "inspectors": {b: sorted(v) for b, v in sorted(inspectors.items())},
            "rules": {
                "shares": dict(rules.shares),
                "color_weights": dict(rules.color_weights),
                "exclude_positive_list": rules.exclude_positive_list,
                "inspectors_each": rules.inspectors_each,
            },
        },
    }


def redraw(doc: Mapping[str, Any]) -> Draw:
    """A recorded draw made again from its own inputs and seed."""
    inputs = doc["inputs"]
    return draw(
        [Candidate(**c) for c in inputs["candidates"]],
        inputs["inspectors"],
        DrawRules(**inputs["rules"]),
        doc["seed"],
        doc["period"],
    )


__all__ = [
    "DEFAULT_COLOR_WEIGHTS",
    "DEFAULT_SHARES",
    "Candidate",
    "Draw",
    "DrawRules",
    "Drawn",
    "Quota",
    "SeededStream",
    "draw",
    "draw_json",
    "quota_of",
    "redraw",
]
