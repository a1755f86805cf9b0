"""A seeded fleet's database (tests/nonsite/report/test_figures.py) for the report's tests."""

from __future__ import annotations

import random

import pytest

from nonsite.rule_wiring import rule_setup
from tests.nonsite.report.test_figures import fleet_config, seed_fleet


@pytest.fixture
def fleet(engine):
    config = fleet_config()
    rules = rule_setup(config)
    seeded = seed_fleet(engine, config, rules, random.Random(20261206))
    return engine, config, rules, seeded
