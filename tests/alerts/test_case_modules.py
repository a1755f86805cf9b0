"""The case book's parts: each action of the workflow has its handler, and the facade's module
keeps the names its callers import from it."""

from __future__ import annotations


def test_every_workflow_action_has_its_handler():
    from alerts.actions import HANDLERS
    from alerts.workflow import TRANSITIONS

    assert HANDLERS.keys() == TRANSITIONS.keys()


def test_alerts_cases_keeps_its_names():
    from alerts import case_store, cases, findings_to_cases, workflow

    assert cases.open_key is case_store.open_key
    assert cases.Applied is findings_to_cases.Applied
    assert cases.OPEN_STATES is workflow.OPEN_STATES
    assert cases.permitted is workflow.permitted
