"""The demo fleet is a valid configuration of the kinds the rules know."""

from collections import Counter

from nonsite.config.load import parse_config
from nonsite.rule_wiring import build_outlet_params
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.traffic import FleetTraffic


def test_the_demo_fleet_validates_and_mixes_the_kinds():
    config = parse_config(demo_fleet(200), "demo", env={})
    assert len(config.enterprises) == 200
    kinds = Counter(e.industry for e in config.enterprises)
    assert kinds == {
        "thermal_power": 20,
        "heating": 40,
        "msw_incineration": 1,
        "municipal_wastewater": 30,
        "manufacturing": 109,
    }
    mns = [o.mn for e in config.enterprises for o in e.outlets]
    assert len(mns) == len(set(mns)) and all(len(mn) == 24 for mn in mns)
    params = build_outlet_params(config)
    assert any(p.incineration for p in params.values())
    assert sum(1 for e in config.enterprises if e.positive_list) > 0
    assert list(FleetTraffic(config).frames(1_795_190_400))  # it produces traffic
    assert demo_fleet(200) == demo_fleet(200)  # the same seed, the same fleet
