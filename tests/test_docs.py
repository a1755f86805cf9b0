"""The documented code lists match the code."""

import re
from pathlib import Path

from ingest.hj212.errors import DESCRIPTIONS as DECODE_CODES
from ingest.reasons import DESCRIPTIONS as REJECT_REASONS

DOCS = Path(__file__).parents[1] / "docs"


def table(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\| `([a-z_0-9]+)` \| (.+?) \|$", text, flags=re.M))


def test_hj212_error_codes_are_documented_exactly():
    documented = table((DOCS / "hj212-codec.md").read_text())
    assert documented == {str(k): v for k, v in DECODE_CODES.items()}


def test_dead_letter_reasons_are_documented_exactly():
    text = (DOCS / "ingest.md").read_text()
    section = text.split("## Dead letters", 1)[1].split("\n## ", 1)[0]
    documented = table(section)
    assert documented == {str(k): v for k, v in REJECT_REASONS.items()}


def test_workflow_actions_and_refusal_codes_are_documented_exactly():
    from alerts.workflow import TRANSITIONS

    text = (DOCS / "alerts.md").read_text()
    section = text.split("## Workflow", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)) == set(TRANSITIONS)
    source = "".join(p.read_text() for p in (DOCS.parent / "alerts").glob("*.py"))
    raised = set(re.findall(r'WorkflowError\(\s*"([a-z_]+)"', source))
    documented = set(
        re.findall(r"`([a-z_]+)`", section.split("stable code:", 1)[1].split(". An", 1)[0])
    )
    assert raised == documented
