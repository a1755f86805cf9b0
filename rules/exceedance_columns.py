"""A2, A3 and B8-5 in columns, for the batch engine: the hour's valid value converted to the
reference O2 (折算, ``rules.emission.at_reference_o2``), the conversion's failure (A2), the
hourly exceedance in its two tiers (A3), and the converted value the device reports against
the recomputed one (B8-5); over every closed hour at once, as ``OutletJudge.hour`` judges
them hour by hour (``rules.judge_columns`` says why and how).

Which hours: a configured factor's valid hours with a value, except, at a gas outlet whose
valid flow is zero (not producing), every factor but the flow. A factor with a reference O2
needs a valid O2 hour below 21 %: without one A2 holds and nothing else is judged; with one
A2 clears and B8-5 is judged where the device reports a converted value (the mean of its
minute records' ZsAvg, or the device hour's own). A3 is judged on the (converted) value, but
not in an hour of zero flow: an intermittent discharger's still night emitted nothing. The
conversion and division are written as the judge writes them, operation for operation, so
the values are the same doubles (``rules.exact_round.divided``: polars would multiply by
the reciprocal of a constant).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import polars as pl

from rules.emission import amount_kg
from rules.exact_round import divided, rounded
from rules.findings import Finding, State, Tier
from rules.firing_columns import level_changes
from rules.hours import FIXED
from rules.judge import (
    conversion_failure,
    outlet_finding,
    zs_evidence,
)
from rules.params import (
    FactorParams,
    OutletParams,
    Thresholds,
    Versions,
    effective_thresholds,
)
from rules.timebase import HOUR

EXCEEDANCE_COLUMN_RULES = frozenset({"A2", "A3", "B8-5"})
FACTOR = "fkey"


_STILL = (pl.col("flow") == 0).fill_null(value=False)  # a valid zero flow: nothing left
_O2_OK = (pl.col("o2_valid") & pl.col("o2").is_not_null() & (pl.col("o2") < 21)).fill_null(
    value=False
)


def _producing_hours(hours: pl.LazyFrame) -> pl.LazyFrame:
    """The valid hours with a value that are judged: at a gas outlet that is not producing
    (zero flow), only the flow's."""
    idle = _STILL & pl.col("gas") & (pl.col("factor") != pl.col("flow_code"))
    return hours.filter(pl.col("valid") & pl.col("value").is_not_null() & ~idle)


def converted_hours(hours: pl.LazyFrame) -> pl.LazyFrame:
    """The hours judged on a value (``judged``: converted where the factor has a reference
    O2, and only where it can be): those A3 judges, but for still ones, and that count in
    the day (``rules.day_columns``)."""
    value, reference = pl.col("value"), pl.col("reference_o2")
    return (
        _producing_hours(hours)
        .filter(reference.is_null() | _O2_OK)
        .with_columns(
            pl.when(reference.is_not_null())
            .then(value * (21.0 - reference) / (21.0 - pl.col("o2")))
            .otherwise(value)
            .alias("judged")
        )
    )


def exceedance_findings(
    hours: pl.DataFrame, params: Mapping[tuple[str, str], OutletParams]
) -> list[Finding]:
    """A2, A3 and B8-5 over ``hours`` (``rules.judge_columns.closed_hours``)."""
    reference = pl.col("reference_o2")
    no_limit = pl.lit(None, dtype=pl.Float64).alias("limit")
    a2 = (
        _producing_hours(hours.lazy())
        .filter(reference.is_not_null())
        .with_columns(pl.when(~_O2_OK).then(pl.lit("warning")).alias("tier"), no_limit)
    )
    converted = converted_hours(hours.lazy())
    reported = (
        pl.when(pl.col("zs_n") > 0)
        .then(divided(pl.col("zs_sum") / pl.col("zs_n"), float(FIXED)))
        .when(pl.col("n") == 0)
        .then(pl.col("dev_zs"))
    )
    judged = pl.col("judged")
    bound = pl.col("zs_tolerance") * pl.max_horizontal(judged.abs(), pl.lit(1e-9))
    b8_5 = (
        converted.filter(reference.is_not_null())
        .with_columns(reported.alias("reported"))
        .filter(pl.col("reported").is_not_null())
        .with_columns(
            pl.when((pl.col("reported") - judged).abs() > bound)
            .then(pl.lit("warning"))
            .alias("tier"),
            rounded(judged).alias("limit"),  # the recomputed value, as a clear names it
        )
    )
    alarm, warning = pl.col("hour_alarm"), pl.col("hour_warning")
    over_alarm = alarm.is_not_null() & (judged > alarm)
    over_warning = warning.is_not_null() & (judged > warning)
    a3 = converted.filter(~_STILL).with_columns(
        pl.when(over_alarm).then(pl.lit("alarm")).when(over_warning).then(pl.lit("warning"))
        .alias("tier"),
        pl.when(over_alarm).then(alarm).when(over_warning).then(warning).alias("limit"),
    )  # fmt: skip
    unset = pl.lit(None, dtype=pl.Float64)
    a2 = a2.with_columns(unset.alias("judged"), unset.alias("reported"))
    a3 = a3.with_columns(unset.alias("reported"))
    a2_changes, a3_stated, b8_5_changes = pl.collect_all(
        [
            level_changes(a2, FACTOR).select(_Row._fields),
            _a3_stated(level_changes(a3, FACTOR)),
            level_changes(b8_5, FACTOR).select(_Row._fields),
        ]
    )
    factor = _Factors(params)
    out = _findings("A2", a2_changes, factor) + _a3_findings(a3_stated, factor)
    return out + _findings("B8-5", b8_5_changes, factor)


def _findings(rule: str, changes: pl.DataFrame, factor: _Factors) -> list[Finding]:
    out: list[Finding] = []
    for row in map(_Row._make, changes.iter_rows()):
        f = factor[(row.enterprise_id, row.outlet_id, row.factor)]
        found_value, evidence = _stated(rule, f, row)
        window = (row.hour, row.hour + HOUR)
        out.append(
            outlet_finding(
                f.outlet, f.version, rule, row.state, row.factor, window, row.tier,
                found_value, row.limit, evidence,
            )
        )  # fmt: skip
    return out


def _a3_stated(changes: pl.LazyFrame) -> pl.LazyFrame:
    """A3's rows that fire or clear with what their findings state, computed in columns as
    ``outlet_finding`` and ``hour_evidence`` compute it in Python (A3's findings are often
    the most: one an hour wherever an hour exceeds). Rounded as Python rounds
    (``rules.exact_round.rounded``); every other operation a product or a division by a
    column, the same doubles in both."""
    judged, value, limit, flow = pl.col("judged"), pl.col("value"), pl.col("limit"), pl.col("flow")
    per_hour = pl.col("flow_per_hour")
    amount = pl.when(flow.is_not_null() & per_hour.is_not_null()).then(
        amount_kg(value, flow, per_hour)
    )
    over = pl.coalesce("hour_alarm", "hour_warning")  # the limit an amount's excess is above
    excess = pl.when(over.is_not_null() & (judged > over)).then(
        pl.when(judged <= 0).then(0.0).otherwise(pl.col("amount") * (judged - over) / judged)
    )
    multiple = pl.when((pl.col("state") == "fire") & limit.is_not_null() & (limit != 0)).then(
        rounded(pl.col("ratio"), 4)
    )
    covered = pl.min_horizontal(pl.lit(HOUR), pl.col("n_valid") * pl.col("interval_s"))
    # What is rounded made a column first: ``rounded`` reads its argument many times, and
    # polars would compute an expression again for each.
    return (
        changes.with_columns(amount.alias("amount"), ((judged - limit) / limit).alias("ratio"))
        .with_columns(excess.alias("excess"))
        .select(
            "enterprise_id", "outlet_id", "factor", "hour", "state", "tier", "limit",
            rounded(judged).alias("stated"),
            multiple.alias("multiple"),
            pl.when(pl.col("device")).then(pl.lit("device"))
            .when(pl.col("realtime")).then(pl.lit("realtime"))
            .otherwise(pl.lit("minutes")).alias("source"),
            rounded(value).alias("measured"),
            (covered // 60).alias("valid_minutes"),
            rounded(pl.col("o2")).alias("o2"),
            rounded(pl.col("amount")).alias("emission_kg"),
            rounded(pl.col("excess")).alias("excess_kg"),
        )
    )  # fmt: skip


def _a3_findings(stated: pl.DataFrame, factor: _Factors) -> list[Finding]:
    """A3's findings from ``_a3_stated``'s rows: what ``outlet_finding`` makes of
    ``hour_evidence`` (the same keys in the same order)."""
    out: list[Finding] = []
    append = out.append
    # The rows come factor by factor (sorted by it): what a finding takes of its factor's
    # parameters is looked up once per factor (150,000 findings on a month of 200 outlets).
    last: tuple[str, str, str] | None = None
    names: tuple[str, str, str, str, str] = ("", "", "", "", "")
    reference_o2: float | None = None
    for (
        enterprise, outlet, code, hour, state, tier, limit, stated_value, multiple,
        source, measured, valid_minutes, o2, emission, excess,
    ) in stated.iter_rows():  # fmt: skip
        if (enterprise, outlet, code) != last:
            last = (enterprise, outlet, code)
            f = factor[last]
            p = f.outlet
            names = (p.enterprise_id, p.outlet_id, f.params.unit, p.params_id, f.version)
            reference_o2 = f.params.reference_o2
        evidence: dict[str, Any] = {"source": source, "measured": measured}
        if source != "device":
            evidence["valid_minutes"] = valid_minutes
        if reference_o2 is not None:
            evidence["o2"] = o2
            evidence["reference_o2"] = reference_o2
            evidence["converted"] = stated_value
        if emission is not None:
            evidence["emission_kg"] = emission
            if excess is not None:
                evidence["excess_kg"] = excess
        enterprise_id, outlet_id, unit, params_id, version = names
        append(
            Finding(
                "A3", state, enterprise_id, outlet_id, code, hour, hour + HOUR, tier,
                stated_value, limit, unit, multiple, params_id, version, evidence,
            )
        )  # fmt: skip
    return out


class _Row(NamedTuple):
    """What a finding is stated from (a row that fires or clears)."""

    enterprise_id: str
    outlet_id: str
    factor: str
    hour: int
    state: State
    tier: Tier
    limit: float | None
    value: float
    judged: float | None
    reported: float | None
    o2: float | None
    o2_valid: bool | None
    flow: float | None
    device: bool
    realtime: bool
    n_valid: int
    interval_s: int
    flag: str | None


class _Factor(NamedTuple):
    outlet: OutletParams
    version: str
    params: FactorParams
    thresholds: Thresholds


class _Factors(dict[tuple[str, str, str], _Factor]):
    """Each outlet factor's parameters as its findings read them, made once."""

    def __init__(self, params: Mapping[tuple[str, str], OutletParams]) -> None:
        super().__init__()
        self._params = params
        self._versions = Versions(params)

    def __missing__(self, key: tuple[str, str, str]) -> _Factor:
        p = self._params[key[:2]]
        fp = p.factors[key[2]]
        found = _Factor(p, self._versions[key[:2]], fp, effective_thresholds(p, fp))
        self[key] = found
        return found


def _stated(rule: str, f: _Factor, row: _Row) -> tuple[float | None, dict[str, Any]]:
    """An A2 or B8-5 finding's value and evidence, as the judge states them on a row that
    changes (A3's: ``_a3_stated``)."""
    if rule == "A2":
        fire = row.state == "fire"
        return None, conversion_failure(bool(row.o2_valid), row.o2) if fire else {}
    assert row.judged is not None
    assert row.reported is not None
    evidence = zs_evidence(row.reported, row.judged, f.outlet.zs_tolerance)
    return evidence["reported"], evidence
