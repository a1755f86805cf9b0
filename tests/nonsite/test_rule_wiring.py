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
                    "outlets": [
                        {"id": "DA001", "kind": "gas", "mn": "M", "pw": "123456", **outlet}
                    ],
                }
            ]
        },
        "test.toml",
        env={},
    )


def test_preset_list_merges_value_by_value_and_overrides_win():
    c = config(
        {
            "preset": ["thermal_power_coal_boiler", "thermal_power_coal_ultra_low"],
            "limits": {"a21026": {"hour_alarm": 50, "range_max": 300}},
        }
    )
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


def enterprise(**kw):
    base = {
        "id": "E1",
        "name": "甲",
        "outlets": [{"id": "DA001", "kind": "gas", "mn": "M", "pw": "123456"}],
        "meters": [
            {"id": "P1", "role": "production", "rated_kw": 100},
            {"id": "K1", "role": "control", "rated_kw": 20, "serves": ["P1"]},
        ],
    }
    base.update(kw)
    return parse_config({"enterprises": [base]}, "test.toml", env={})


def test_power_params_links_orders_and_defaults():
    from datetime import datetime

    from ingest.hj212.timefmt import CHINA_TZ
    from nonsite.rule_wiring import build_markings, build_power_params

    c = enterprise(
        orders=[
            {
                "kind": "staggered",
                "reference": "错峰1",
                "start": datetime(2026, 11, 1, tzinfo=CHINA_TZ),
                "end": datetime(2027, 1, 1, tzinfo=CHINA_TZ),
                "devices": ["P1"],
                "daily": "22:00-06:00",
            }
        ],
        markings=[
            {
                "outlet": "DA001",
                "type": "maintenance",
                "start": datetime(2026, 11, 21, 8, tzinfo=CHINA_TZ),
                "end": datetime(2026, 11, 21, 9, tzinfo=CHINA_TZ),
                "factor": "a21026",
            }
        ],
    )
    power = build_power_params(c)["E1"]
    assert power.meters["K1"].serves == ("P1",)
    assert power.meters["P1"].on_kw == 10
    assert power.meters["K1"].offline_after_s == 1800
    [order] = power.orders
    assert order.daily == (22 * 3600, 6 * 3600)
    [marking] = build_markings(c)
    assert (marking.type, marking.factor, marking.end - marking.start) == (
        "maintenance",
        "a21026",
        3600,
    )


@pytest.mark.parametrize(
    ("kw", "entry", "problem"),
    [
        (
            {"meters": [{"id": "K1", "role": "control", "serves": ["X"]}]},
            'meters[0] (id "K1").serves[0]',
            "not a production meter",
        ),
        (
            {"meters": [{"id": "P1", "role": "production", "serves": ["P1"]}]},
            'meters[0] (id "P1").serves[0]',
            "only a control device",
        ),
        (
            {"meters": [{"id": "P1", "role": "production", "outlets": ["DA009"]}]},
            'meters[0] (id "P1").outlets[0]',
            "not an outlet of this enterprise",
        ),
        (
            {"meters": [{"id": "K1", "role": "control", "outlets": ["DA001"]}]},
            'meters[0] (id "K1").outlets[0]',
            "only a production device",
        ),
        (
            {
                "orders": [
                    {
                        "kind": "emergency",
                        "reference": "r",
                        "start": "2026-11-21T00:00:00+08:00",
                        "end": "2026-11-22T00:00:00+08:00",
                        "devices": ["nope"],
                    }
                ]
            },
            "orders[0].devices[0]",
            "not a meter",
        ),
        (
            {
                "orders": [
                    {
                        "kind": "staggered",
                        "reference": "r",
                        "start": "2026-11-21T00:00:00+08:00",
                        "end": "2026-11-22T00:00:00+08:00",
                        "devices": ["P1"],
                        "daily": "8-11",
                    }
                ]
            },
            "orders[0].daily",
            "HH:MM-HH:MM",
        ),
        (
            {
                "orders": [
                    {
                        "kind": "emergency",
                        "reference": "r",
                        "start": "2026-11-22T00:00:00+08:00",
                        "end": "2026-11-21T00:00:00+08:00",
                        "devices": ["P1"],
                    }
                ]
            },
            "orders[0]",
            "end must be after start",
        ),
        (
            {
                "orders": [
                    {
                        "kind": "emergency",
                        "reference": "r",
                        "start": "2026-11-21T00:00:00",
                        "end": "2026-11-22T00:00:00+08:00",
                        "devices": ["P1"],
                    }
                ]
            },
            "orders[0].start",
            "timezone",
        ),
        (
            {
                "markings": [
                    {
                        "outlet": "DA009",
                        "type": "startup",
                        "start": "2026-11-21T00:00:00+08:00",
                        "end": "2026-11-21T01:00:00+08:00",
                    }
                ]
            },
            "markings[0].outlet",
            "not an outlet",
        ),
        (
            {
                "markings": [
                    {
                        "outlet": "DA001",
                        "type": "party",
                        "start": "2026-11-21T00:00:00+08:00",
                        "end": "2026-11-21T01:00:00+08:00",
                    }
                ]
            },
            "markings[0].type",
            "unknown marking type",
        ),
    ],
)
def test_power_and_marking_entries_are_validated(kw, entry, problem):
    with pytest.raises(ConfigError) as exc:
        enterprise(**kw)
    found = [(i.entry, i.problem) for i in exc.value.issues]
    assert any(e.endswith(entry) and problem in p for e, p in found), found


def test_example_configuration_power_rules():
    from nonsite.rule_wiring import build_markings, build_power_params

    c = load_config(EXAMPLE, env={})
    power = build_power_params(c)
    assert power["E006"].meters["E006-M02"].serves == ("E006-M01",)
    assert {o.kind for o in power["E006"].orders} == {"emergency", "staggered"}
    assert [m.type for m in build_markings(c)] == ["startup"]
    assert power["E005"].meters["E005-M01"].outlets == ("DA001",)
    assert build_outlet_params(c)[("E005", "DA001")].flow_low == 1.5


def test_incinerator_preset_brings_the_a5_rules_and_the_yearly_marking_caps():
    p = build_outlet_params(config({"preset": "msw_incineration"}))[("E1", "DA001")]
    assert p.incineration and p.daily_rule == "A5-1"
    assert [(c.types, c.hours) for c in p.marking_caps] == [
        (("startup", "shutdown", "fault", "accident"), 60.0),
        (("oven_drying", "cooling"), 700.0),
    ]
    assert p.furnace_bound == 850
    assert (p.furnace_period_s, p.furnace_low_max_per_day) == (300, 5)
    custom = config(
        {"preset": "msw_incineration", "marking_caps": [{"types": ["fault"], "hours": 12}]}
    )
    [cap] = build_outlet_params(custom)[("E1", "DA001")].marking_caps
    assert (cap.types, cap.hours) == (("fault",), 12)
    boiler = build_outlet_params(config({"preset": "thermal_power_coal_boiler"}))
    assert boiler[("E1", "DA001")].marking_caps == ()
    assert boiler[("E1", "DA001")].daily_rule == "A4"


def test_an_unknown_marking_type_in_a_cap_names_the_entry():
    with pytest.raises(ConfigError) as err:
        config({"marking_caps": [{"types": ["holiday"], "hours": 5}]})
    text = str(err.value)
    assert "test.toml" in text and "marking_caps" in text and "holiday" in text


def test_incinerators_judge_the_combustion_o2_band_unless_configured_otherwise():
    incinerator = build_outlet_params(config({"preset": "msw_incineration"}))
    assert incinerator[("E1", "DA001")].o2_band == (6.0, 10.0)
    custom = build_outlet_params(config({"preset": "msw_incineration", "o2_band": [5, 11]}))
    assert custom[("E1", "DA001")].o2_band == (5.0, 11.0)
    boiler = build_outlet_params(config({"preset": "thermal_power_coal_boiler"}))
    assert boiler[("E1", "DA001")].o2_band is None


def test_a_reversed_o2_band_names_the_outlet_and_the_problem():
    with pytest.raises(ConfigError) as err:
        config({"o2_band": [10, 6]})
    text = str(err.value)
    assert "test.toml" in text and "o2_band" in text and "low < high" in text


def _with_rules(outlet: dict, rules: dict | None = None):
    raw: dict = {
        "enterprises": [
            {
                "id": "E1",
                "name": "甲",
                "outlets": [{"id": "DA001", "kind": "gas", "mn": "M", "pw": "123456", **outlet}],
            }
        ]
    }
    if rules is not None:
        raw["rules"] = rules
    return parse_config(raw, "test.toml", env={})


def test_every_catalogue_default_is_a_parameter_per_outlet():
    """B8-3's O2 level and the B1/B2 run lengths were fixed in code (issue 15)."""
    p = build_outlet_params(
        _with_rules({"rules": {"o2_high": 18.0, "zero_minutes": 30, "const_minutes": 90}})
    )[("E1", "DA001")]
    assert (p.o2_high, p.zero_minutes, p.const_minutes) == (18.0, 30, 90)
    site = build_outlet_params(_with_rules({}, {"o2_high": 19.5, "flag_hours_warning": 6}))
    assert (site[("E1", "DA001")].o2_high, site[("E1", "DA001")].flag_hours_warning) == (19.5, 6)


def test_outlet_values_override_site_values_which_override_the_industry_preset():
    incinerator = {"preset": "msw_incineration"}
    assert build_outlet_params(_with_rules(incinerator))[("E1", "DA001")].o2_band == (6.0, 10.0)
    own = {**incinerator, "rules": {"valid_minutes_per_hour": 50, "furnace_period_min": 10}}
    p = build_outlet_params(_with_rules(own, {"valid_minutes_per_hour": 40}))[("E1", "DA001")]
    assert (p.valid_minutes_per_hour, p.furnace_period_s, p.o2_band) == (50, 600, (6.0, 10.0))
    p = build_outlet_params(_with_rules(incinerator, {"valid_minutes_per_hour": 40}))
    assert p[("E1", "DA001")].valid_minutes_per_hour == 40


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"o2_hi": 18}, "o2_hi: unknown setting"),
        ({"o2_high": 30}, "o2_high: Input should be less than or equal to 21"),
        ({"zero_minutes": 0}, "zero_minutes: Input should be greater than or equal to 1"),
        ({"grace_s": 60}, "grace_s: unknown setting"),  # service-wide, not per outlet
    ],
)
def test_an_outlets_rule_values_are_checked_and_the_error_names_the_entry(rules, problem):
    with pytest.raises(ConfigError) as e:
        _with_rules({"rules": rules})
    assert f'enterprises[0] (id "E1").outlets[0] (id "DA001").rules.{problem}' in str(e.value)


def test_the_interval_is_read_from_the_data_unless_configured():
    assert build_outlet_params(_with_rules({}))[("E1", "DA001")].minute_interval_min is None
    site = build_outlet_params(_with_rules({}, {"minute_interval_min": 5}))
    assert site[("E1", "DA001")].minute_interval_min == 5
    own = build_outlet_params(_with_rules({"minute_interval_min": 1}, {"minute_interval_min": 5}))
    assert own[("E1", "DA001")].minute_interval_min == 1


def test_fleet_o2_references_apply_by_preset_and_an_outlet_may_set_its_own():
    rules = {"o2_reference_by_preset": {"industrial_boiler_coal": 11.0}}
    p = build_outlet_params(_with_rules({"preset": "industrial_boiler_coal"}, rules))
    assert p[("E1", "DA001")].o2_reference == 11.0
    own = {"preset": "industrial_boiler_coal", "rules": {"o2_reference": 10.0}}
    assert build_outlet_params(_with_rules(own, rules))[("E1", "DA001")].o2_reference == 10.0
    assert build_outlet_params(_with_rules({}, rules))[("E1", "DA001")].o2_reference is None
    with pytest.raises(ConfigError) as e:
        _with_rules({}, {"o2_reference_by_preset": {"coal_x": 9.0}})
    assert "rules.o2_reference_by_preset: unknown preset 'coal_x'" in str(e.value)


def test_every_rules_setting_reaches_the_outlets_parameters():
    """Each name an outlet may override is a rule parameter, and the value arrives."""
    from dataclasses import fields

    from nonsite.config.model import OUTLET_RULE_PARAMS, RulesSection
    from rules.params import OutletParams

    names = {f.name for f in fields(OutletParams)}
    for name in OUTLET_RULE_PARAMS:
        assert name.replace("_min", "_s") in names or name in names, name
    p = build_outlet_params(
        _with_rules({"rules": {"plateau_range_share": 0.6, "copy_min_records": 12}})
    )[("E1", "DA001")]
    assert (p.plateau_range_share, p.copy_min_records) == (0.6, 12)
    assert RulesSection().plateau_max_minutes == p.plateau_max_minutes


def test_the_rule_setup_adds_the_markings_declared_online(tmp_path):
    from datetime import UTC, datetime

    from nonsite.db import make_engine, migrate
    from nonsite.rule_wiring import rule_setup
    from tests.rules.scenario import declare_day

    mark = {"outlet": "DA001", "type": "maintenance", "reason": "检修"}
    mark |= {"start": "2026-11-20T08:00:00+08:00", "end": "2026-11-20T12:00:00+08:00"}
    outlet = {"id": "DA001", "kind": "gas", "mn": "M", "pw": "123456"}
    c = parse_config(
        {"enterprises": [{"id": "E1", "name": "甲", "outlets": [outlet], "markings": [mark]}]},
        "test.toml",
        env={},
    )
    db = make_engine(f"sqlite:///{tmp_path / 'nonsite.db'}")
    migrate(db)
    with db.begin() as conn:
        declare_day(conn, "stopped", "停产")
    with db.connect() as conn:
        setup = rule_setup(c, conn)
    db.dispose()
    assert [m.type for m in setup.markings] == ["maintenance", "stopped"]
    assert len(setup.declared) == 1  # what the service counts as taken up
    assert rule_setup(c).markings == list(setup.configured)
    t = int(datetime(2026, 11, 24, 6, tzinfo=UTC).timestamp())
    assert setup.batch_engine().book.marking_at("E1", "DA001", "a21026", t) is not None
    assert setup.stream_engine()._markings.marking_at("E1", "DA001", "a21026", t) is not None
    one = setup.outlet(("E1", "DA001"))
    assert (list(one.params), one.markings) == ([("E1", "DA001")], setup.markings)
    assert setup.with_declared([]).markings == list(setup.configured)
