"""The finding itself: made by its hand-written constructor (``rules.findings``), a value that
cannot change."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from rules.findings import Finding

ALL = {
    "rule": "A3",
    "state": "fire",
    "enterprise_id": "E1",
    "source_id": "DA001",
    "factor": "a21026",
    "window_start": 3600,
    "window_end": 7200,
    "tier": "alarm",
    "value": 62.5,
    "limit": 50.0,
    "unit": "mg/m3",
    "multiple": 0.25,
    "params_id": "p1",
    "params_version": "abc",
    "evidence": {"measured": 60.1},
}


def test_every_field_is_what_was_given_by_name_or_in_order() -> None:
    by_name = Finding(**ALL)  # type: ignore[arg-type]
    in_order = Finding(*ALL.values())  # type: ignore[arg-type]
    assert dataclasses.asdict(by_name) == ALL
    assert in_order == by_name


def test_the_defaults_are_the_declared_ones_and_evidence_is_a_dict_of_its_own() -> None:
    a = Finding("B1", "clear", "E1", "DA001", None, 0, 3600)
    b = Finding("B1", "clear", "E1", "DA001", None, 0, 3600)
    defaults = {f.name: f.default for f in dataclasses.fields(Finding)}
    for name in ("tier", "value", "limit", "unit", "multiple", "params_id", "params_version"):
        assert getattr(a, name) == defaults[name]
    assert a.evidence == {}
    assert a.evidence is not b.evidence


def test_a_finding_cannot_change_and_copies_as_a_dataclass() -> None:
    f = Finding(**ALL)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.value = 1.0  # type: ignore[misc]
    assert dataclasses.replace(f, tier="warning").tier == "warning"
    assert f.tier == "alarm"
    assert pickle.loads(pickle.dumps(f)) == f
