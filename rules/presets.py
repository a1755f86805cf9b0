"""Industry presets: factor limits from the emission standards (rules/data/emission-limits.csv).

An outlet says ``preset = "thermal_power_coal_boiler"`` (or a list, later ones overriding
earlier ones) and overrides single values. Which table rows make which preset is written out
in ``_PRESET_ROWS`` rather than guessed from the standard's text, so that adding a row to the
table is a visible decision.

Tiers follow the catalogue (docs/rules.md, "Parameters"): a standard's limit is an alarm (报警,
超标); GB 18485's 1-hour values are warnings (预警) beside its 24-hour alarm limits (A5-3);
ultra-low-emission values are a policy target, so they are warnings unless an outlet makes
them alarms (A8).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

from rules.params import INCINERATION_O2_BAND, Thresholds

# (industry, standard) → presets the row belongs to. Rows of a table common to several
# variants ("GB 13223-2011 Table 1") are listed under each of them.
_PRESET_ROWS: dict[tuple[str, str], tuple[str, ...]] = {
    # Existing boilers share the new-boiler rows except where their own row (SO2) follows.
    ("thermal_power_coal_boiler", "GB 13223-2011 Table 1 (new boiler)"): (
        "thermal_power_coal_boiler",
        "thermal_power_coal_boiler_existing",
    ),
    ("thermal_power_coal_boiler", "GB 13223-2011 Table 1 (existing boiler)"): (
        "thermal_power_coal_boiler_existing",
    ),
    ("thermal_power_coal_boiler", "GB 13223-2011 Table 1"): (
        "thermal_power_coal_boiler",
        "thermal_power_coal_boiler_existing",
    ),
    ("thermal_power_coal_boiler", "GB 13223-2011 Table 2 special"): (
        "thermal_power_coal_boiler_special",
    ),
    # GB 18918's pH row is common to classes 1A and 1B.
    ("municipal_wwtp_1A", "GB 18918-2002 Table 1"): ("municipal_wwtp_1A", "municipal_wwtp_1B"),
}
# "60 / 120 / 500 (grade1/2/3)": one limit per discharge grade, one preset per grade.
_GRADES = re.compile(r"\s*([\d./\s]+?)\s*\(grade([\d/]+)\)\s*")
_SUFFIXES = (
    ("existing", "_existing"),
    ("in-use", "_in_use"),
    ("special", "_special"),
)
_NO_CODE = "(no HJ 212 code)"


@dataclass(frozen=True, slots=True)
class PresetFactor:
    factor: str
    unit: str
    thresholds: Thresholds
    reference_o2: float | None
    source: str


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    industry: str
    standards: tuple[str, ...]
    factors: dict[str, PresetFactor]


def _preset_names(industry: str, standard: str) -> tuple[str, ...]:
    explicit = _PRESET_ROWS.get((industry, standard))
    if explicit is not None:
        return explicit
    lowered = standard.lower()
    for marker, suffix in _SUFFIXES:
        if marker in lowered:
            return (industry + suffix,)
    return (industry,)


def _window(averaging: str) -> str:
    text = averaging.lower()
    if "24h" in text or "daily" in text:
        return "day"
    if "any value" in text or "5 min" in text:
        return "value"
    return "hour"  # "1h valid average", "1h average", "measured average"


def _thresholds(industry: str, window: str, limit_text: str) -> Thresholds:
    low = high = None
    if m := re.fullmatch(r"\s*([\d.]+)\s*-\s*([\d.]+)\s*", limit_text):  # pH "6-9"
        low, high = float(m.group(1)), float(m.group(2))
    elif m := re.match(r"\s*>=\s*([\d.]+)", limit_text):  # furnace ">=850 ..."
        low = float(m.group(1))
    else:
        high = float(limit_text)
    if window == "value":
        return Thresholds(value_high=high, value_low=low)
    ultra_low = industry.endswith("_ultra_low")
    if window == "hour":
        if ultra_low:  # a policy target, not a legal limit: a warning, and the A8 assessment
            return Thresholds(hour_warning=high, ultra_low=high)
        warning = industry == "msw_incineration"  # GB 18485's 1-hour values: A5-3
        return Thresholds(hour_warning=high) if warning else Thresholds(hour_alarm=high)
    return Thresholds(day_alarm=high)


def _reference_o2(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "", "measured (no O2 conversion)"


def _expanded(rows: Iterable[dict[str, str]]) -> Iterator[dict[str, str]]:
    """Split multi-grade rows into one row per grade (industry suffixed _gradeN)."""
    for row in rows:
        m = _GRADES.fullmatch(row["limit"])
        if m is None:
            yield row
            continue
        limits = [v.strip() for v in m.group(1).split("/")]
        for limit, grade in zip(limits, m.group(2).split("/"), strict=True):
            yield {**row, "industry": f"{row['industry']}_grade{grade}", "limit": limit}


@cache
def presets() -> dict[str, Preset]:
    """Every preset, by name."""
    text = resources.files("rules").joinpath("data/emission-limits.csv").read_text("utf-8")
    factors: dict[str, dict[str, PresetFactor]] = {}
    industries: dict[str, str] = {}
    standards: dict[str, list[str]] = {}
    for row in _expanded(csv.DictReader(text.splitlines())):
        code = row["pollutant_code"].strip()
        if code == "" and "furnace temperature" in row["pollutant"]:
            # 炉膛温度 (the 5-minute furnace mean, a01901): its lower bound is judged by rule
            # A5-2 (more than 5 five-minute means below it in a natural day), not per value.
            code = "a01901"
        if not code:
            continue  # a pollutant with no HJ 212 code cannot be monitored online
        window = _window(row["averaging"])
        new = PresetFactor(
            factor=code,
            unit=row["unit"],
            thresholds=_thresholds(row["industry"], window, row["limit"]),
            reference_o2=_reference_o2(row["reference_o2"]),
            source=row["standard"],
        )
        for name in _preset_names(row["industry"], row["standard"]):
            industries[name] = row["industry"]
            standards.setdefault(name, [])
            if row["standard"] not in standards[name]:
                standards[name].append(row["standard"])
            table = factors.setdefault(name, {})
            if code == "a01901":
                new = replace(new, thresholds=new.thresholds.merged(FURNACE_BAND))
            old = table.get(code)
            if old is not None:  # e.g. GB 18485's 1-hour and 24-hour rows of one factor
                new_thresholds = old.thresholds.merged(new.thresholds)
                ref = old.reference_o2 if old.reference_o2 is not None else new.reference_o2
                new = PresetFactor(code, old.unit, new_thresholds, ref, old.source)
            table[code] = new
    return {
        name: Preset(name, industries[name], tuple(standards[name]), table)
        for name, table in factors.items()
    }


def preset_names() -> list[str]:
    return sorted(presets())


# Rule parameters an industry judges with other than the [rules] defaults (OutletParams field
# names); the configuration's explicit [rules] values and an outlet's own override them.
INDUSTRY_RULE_PARAMS: dict[str, dict[str, object]] = {
    "msw_incineration": {
        # CJJ/T 212: furnace-outlet O2 of normal combustion 6–10 % (B8-2).
        "o2_band": INCINERATION_O2_BAND,
        # HJ 1307 as the plants' rule sheets quote it (S3): start-up and shutdown marks last
        # at most 4 h per occurrence (grate furnaces 40 min–4 h), fault and accident 4 h (A7).
        "marking_max_hours": (
            ("startup", 4.0),
            ("shutdown", 4.0),
            ("fault", 4.0),
            ("accident", 4.0),
        ),
    },
}
# The furnace temperature's 1-h band on incinerator platforms (S3, A5-3): above 1200 ℃ 偏高,
# above 1300 ℃ 过高.
FURNACE_BAND = Thresholds(band_high=1200.0, band_high_2=1300.0)


def preset_rule_params(names: Iterable[str]) -> dict[str, object]:
    """The rule parameters of these presets' industries, later presets overriding."""
    out: dict[str, object] = {}
    for name in names:
        out |= INDUSTRY_RULE_PARAMS.get(presets()[name].industry, {})
    return out
