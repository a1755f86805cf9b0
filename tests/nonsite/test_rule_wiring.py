from pathlib import Path

import pytest

from nonsite.config import ConfigError, load_config
from nonsite.config.load import parse_config
from nonsite.rule_wiring import build_outlet_params
from rules.params import effective_thresholds

EXAMPLE = Path(__file__).parents[2] / "deploy" / "nonsite.example.toml"


def config(outlet: dict):
    return parse_config(
        {
            "enterprises": [
                {
                    "id": "E1",
                    "name": "甲",
                    "outlets": [{"id": "DA001", "kind": "gas", "mn": "M", **outlet}],
                }
            ]
        },
        "test.toml",
        env={},
    )


def test_preset_list_merges_value_by_value_and_overrides_win():
    c = config({"preset": ["thermal_power_coal_boiler", "thermal_power_coal_ultra_low"],
                "limits": {"a21026": {"hour_alarm": 50, "range_max": 300}}})  # fmt: skip
    p = build_outlet_params(c)[("E1", "DA001")]
    so2 = p.factors["a21026"]
    assert (so2.thresholds.hour_alarm, so2.thresholds.hour_warning, so2.range_max) == (50, 35, 300)
    assert p.factors["a34013"].thresholds.hour_alarm == 30  # from GB 13223
    assert p.factors["a34013"].thresholds.hour_warning == 10  # from the ultra-low preset
    assert "configuration" in so2.source
    assert so2.unit


def test_factors_list_restricts_and_extends_the_preset():
    p = build_outlet_params(
        config({"preset": "thermal_power_coal_boiler", "factors": ["a21026", "a19001"]})
    )
    assert list(p[("E1", "DA001")].factors) == ["a21026", "a19001"]
    assert p[("E1", "DA001")].factors["a19001"].unit == "%"  # from the HJ 212 code table


def test_no_o2_conversion_override():
    p = build_outlet_params(
        config(
            {
                "preset": "thermal_power_coal_boiler",
                "limits": {"a34013": {"no_o2_conversion": True}},
            }
        )
    )
    assert p[("E1", "DA001")].factors["a34013"].reference_o2 is None


def test_unknown_preset_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError) as exc:
        config({"preset": ["thermal_power_coal_boiler", "coal_power_x"]})
    [issue] = exc.value.issues
    assert issue.entry == 'enterprises[0] (id "E1").outlets[0] (id "DA001").preset'
    assert "unknown preset 'coal_power_x'" in issue.problem
    assert "msw_incineration" in issue.problem


def test_example_configuration_uses_presets():
    params = build_outlet_params(load_config(EXAMPLE, env={}))
    incinerator = params[("E003", "DA001")]
    t = effective_thresholds(incinerator, incinerator.factors["a34013"])
    assert (t.hour_warning, t.day_alarm) == (30, 20)
    boiler = params[("E002", "DA001")]
    assert boiler.factors["a21026"].thresholds.hour_alarm == 200  # the override
