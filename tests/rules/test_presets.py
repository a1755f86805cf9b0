import pytest

from rules.presets import preset_names, presets


def test_coal_power_new_and_existing_boilers():
    new = presets()["thermal_power_coal_boiler"].factors
    old = presets()["thermal_power_coal_boiler_existing"].factors
    assert (new["a34013"].thresholds.hour_alarm, new["a21026"].thresholds.hour_alarm) == (30, 100)
    # Existing boilers share the PM row and have their own SO2 limit.
    assert (old["a34013"].thresholds.hour_alarm, old["a21026"].thresholds.hour_alarm) == (30, 200)
    assert all(f.reference_o2 == 6 for f in new.values())


def test_incineration_hour_limits_warn_and_day_limits_alarm():
    f = presets()["msw_incineration"].factors
    pm = f["a34013"].thresholds
    assert (pm.hour_warning, pm.hour_alarm, pm.day_alarm) == (30, None, 20)
    assert f["a34013"].reference_o2 == 11
    assert f["a01901"].thresholds.value_low == 850  # furnace temperature, rule A5-2


def test_ultra_low_targets_are_warnings():
    f = presets()["thermal_power_coal_ultra_low"].factors
    assert {c: (t.thresholds.hour_warning, t.thresholds.hour_alarm) for c, t in f.items()} == {
        "a34013": (10, None),
        "a21026": (35, None),
        "a21002": (50, None),
    }


def test_wastewater_daily_limits_ph_range_and_grades():
    wwtp = presets()["municipal_wwtp_1A"].factors
    assert wwtp["w01018"].thresholds.day_alarm == 50
    assert (wwtp["w01001"].thresholds.value_low, wwtp["w01001"].thresholds.value_high) == (6, 9)
    assert presets()["municipal_wwtp_1B"].factors["w01001"].thresholds.value_high == 9
    grades = [presets()[f"industrial_wastewater_GB8978_petrochemical_grade{g}"] for g in (1, 2, 3)]
    assert [p.factors["w01018"].thresholds.day_alarm for p in grades] == [60, 120, 500]
    assert wwtp["w01018"].reference_o2 is None


def test_special_and_in_use_variants_exist():
    names = set(preset_names())
    assert {
        "industrial_boiler_coal",
        "industrial_boiler_coal_in_use",
        "industrial_boiler_coal_special",
        "cement_kiln_special",
        "steel_sinter_head_ultra_low",
    } <= names


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_factor_has_a_unit_and_a_limit(name):
    for factor in presets()[name].factors.values():
        assert factor.unit
        t = factor.thresholds
        assert any(
            v is not None
            for v in (t.hour_alarm, t.hour_warning, t.day_alarm, t.value_low, t.value_high)
        )
