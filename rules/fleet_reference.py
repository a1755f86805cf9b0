"""Fleet references: what outlets of one kind look like over history (B8-1's O2 reference).

The CRAES method (docs/rules.md, B8-1) takes as the alarm limit the 90th percentile of
the hourly O2 of outlets of the same type: an outlet whose O2 sits above what nine hours in
ten of its peers reach lets in air (dilution) or inflates its converted values. The reference
is computed from history by the batch engine's own hour values (``nonsite replay
--o2-reference``) and then configured (``[rules.o2_reference_by_preset]``), so that the
streaming and batch engines judge against the same number.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from rules.batch import BatchEngine, hour_agg
from rules.judge import OutletJudge

O2_PERCENTILE = 0.9


@dataclass(frozen=True, slots=True)
class Reference:
    kind: str  # the outlets' preset (their last one), or "" for outlets without one
    value: float  # the percentile of their valid hourly O2 while flue gas flowed, %
    hours: int
    outlets: int


def o2_references(engine: BatchEngine, frame: pl.DataFrame) -> list[Reference]:
    """Per kind of flue-gas outlet: the 90th percentile of its outlets' valid hourly O2 in
    the hours their flue gas flowed (a valid flow above 0)."""
    kept, _ = engine.accepted(frame)
    rows: list[tuple[str, str, float]] = []
    judges = {key: OutletJudge(p) for key, p in engine.params.items() if p.kind == "gas"}
    by_hour: dict[tuple[str, str, int], dict[str, dict[str, object]]] = {}
    for row in engine.hour_aggregates(kept).iter_rows(named=True):
        key = (row["enterprise_id"], row["outlet_id"])
        if key in judges:
            by_hour.setdefault((*key, row["hour"]), {})[row["factor"]] = row
    for (e, o, _), factors in by_hour.items():
        judge = judges[(e, o)]
        p = judge.params
        o2_row, flow_row = factors.get(p.o2_code), factors.get(p.flow_code)
        if o2_row is None or flow_row is None:
            continue
        o2, flow = judge.hour_value(hour_agg(o2_row)), judge.hour_value(hour_agg(flow_row))
        if o2.valid and o2.value is not None and flow.valid and (flow.value or 0) > 0:
            rows.append((p.preset[-1] if p.preset else "", f"{e}/{o}", o2.value))
    if not rows:
        return []
    df = pl.DataFrame(
        rows, schema={"kind": pl.String, "outlet": pl.String, "o2": pl.Float64}, orient="row"
    )
    summary = (
        df.group_by("kind")
        .agg(
            pl.col("o2").quantile(O2_PERCENTILE, interpolation="linear").alias("value"),
            pl.len().alias("hours"),
            pl.col("outlet").n_unique().alias("outlets"),
        )
        .sort("kind")
    )
    return [
        Reference(kind, round(value, 2), hours, outlets)
        for kind, value, hours, outlets in summary.iter_rows()
    ]


def references_toml(references: list[Reference]) -> str:
    """The references as the configuration takes them."""
    lines = [
        "# B8-1: the 90th percentile of valid hourly O2 (%) while flue gas flowed, per preset",
        "[rules.o2_reference_by_preset]",
    ]
    for r in references:
        name = r.kind or "(no preset: set o2_reference on these outlets)"
        entry = f"{r.kind} = {r.value}" if r.kind else f"# {name}: {r.value}"
        lines.append(f"{entry}  # {r.hours} hours of {r.outlets} outlets")
    return "\n".join(lines) + "\n"
