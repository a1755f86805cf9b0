"""Pollutant codes: HJ/T 212-2005 numeric codes mapped to HJ 212-2017 codes (Appendix B)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class PollutantCode:
    code: str  # HJ 212-2017 code, e.g. "a21026"
    name_zh: str
    code_2005: str | None
    unit: str  # concentration unit, in Chinese as printed in Table B.1/B.2
    emission_unit: str
    data_type: str


@cache
def pollutant_table() -> dict[str, PollutantCode]:
    """All 2017 codes of Appendix B, keyed by code."""
    text = resources.files("ingest.hj212").joinpath("data/pollutant-codes.csv").read_text("utf-8")
    table: dict[str, PollutantCode] = {}
    for row in csv.DictReader(text.splitlines()):
        old = row["code_hj_t_212_2005"].strip()
        table[row["code_2017"]] = PollutantCode(
            code=row["code_2017"],
            name_zh=row["name_zh"],
            code_2005=None if old in ("", "--") else old,
            unit=row["default_unit_concentration"],
            emission_unit=row["default_unit_emission_amount"],
            data_type=row["default_data_type"],
        )
    return table


@cache
def codes_2005_to_2017() -> dict[str, str]:
    """2005 code → 2017 code. Water codes have 3 characters and gas codes 2, so they never clash."""
    return {p.code_2005: p.code for p in pollutant_table().values() if p.code_2005}
