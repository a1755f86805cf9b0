import gc
import weakref
from dataclasses import replace

from rules import params
from rules.params import FactorParams, OutletParams, Thresholds, effective_thresholds
from rules.power_params import EnterprisePowerParams


def outlet(**kw) -> OutletParams:
    return OutletParams(
        "E1",
        "DA001",
        "gas",
        factors={"a21026": FactorParams("a21026", thresholds=Thresholds(hour_alarm=100))},
        **kw,
    )


def test_version_changes_exactly_when_a_parameter_changes():
    a = outlet()
    assert a.version == outlet().version
    assert a.version != outlet(valid_minutes_per_hour=40).version
    changed = replace(
        a, factors={"a21026": FactorParams("a21026", thresholds=Thresholds(hour_alarm=99))}
    )
    assert changed.version != a.version
    assert a.params_id == "E1/DA001"


def test_versions_are_cached_without_keeping_the_parameters_alive():
    """A configuration rebuilt (each marking declared online) leaves no parameter sets behind."""
    kept = outlet()
    version = kept.version
    assert params._DIGESTS[id(kept)][1] == version  # computed once, then looked up
    before = len(params._DIGESTS)
    for n in range(100):
        assert outlet(zero_minutes=1000 + n).version != version
        assert EnterprisePowerParams(f"E{n}").version
    rebuilt = outlet(zero_minutes=7)
    assert rebuilt.version != version
    gone = weakref.ref(rebuilt)
    del rebuilt
    gc.collect()
    assert gone() is None
    assert len(params._DIGESTS) <= before  # the rebuilt sets' entries went with them
    assert kept.version == version


def test_derived_warnings():
    o = outlet()
    assert effective_thresholds(o, o.factors["a21026"]).hour_warning == 80
    assert (
        effective_thresholds(outlet(warning_fraction=None), o.factors["a21026"]).hour_warning
        is None
    )
    water = OutletParams("E1", "DW001", "water")
    cod = FactorParams("w01018", thresholds=Thresholds(day_alarm=50))
    t = effective_thresholds(water, cod)
    assert (t.hour_warning, t.day_warning) == (50, 40)  # an hour above the daily limit warns
    own = FactorParams("w01018", thresholds=Thresholds(day_alarm=50, hour_warning=45))
    assert effective_thresholds(water, own).hour_warning == 45


def test_flow_code_and_day_validity_by_kind():
    assert (outlet().flow_code, outlet().valid_hours_per_day) == ("a00000", 20)
    water = OutletParams("E1", "DW001", "water")
    assert (water.flow_code, water.valid_hours_per_day) == ("w00000", 18)
