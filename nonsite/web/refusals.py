"""A refusal of the alert domain (:class:`alerts.workflow.WorkflowError`) as the API's answer.

One table of HTTP status per refusal code for every module, so the same refusal answers the
same way wherever it is met: a state conflict is 409, a role or scope problem 403, a file of
the wrong type 415, one too large 413. A code not named is a fault of the request itself (422).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from alerts.workflow import WorkflowError
from nonsite.web.models import ErrorOut

STATUS = {
    "not_found": 404,
    "role_not_allowed": 403,
    "out_of_scope": 403,
    "invalid_transition": 409,
    "conflict": 409,
    "already_alarm": 409,
    "not_verified": 409,
    "positive_list": 409,
    "already_assignee": 409,
    "key_reused": 409,
    "clue_case": 409,
    "decision_pending": 409,
    "rectification_open": 409,
    "no_rectification": 409,
    "no_data": 409,
    "file_changed": 409,
    "nothing_to_change": 409,
    "already_drawn": 409,
    "inspection_case": 409,
    "too_large": 413,
    "unsupported_type": 415,
}


def refused(err: WorkflowError) -> HTTPException:
    return HTTPException(STATUS.get(err.code, 422), {"code": err.code, "message": str(err)})


def refusal_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of an endpoint that may refuse with these statuses."""
    return {status: {"model": ErrorOut} for status in statuses}


__all__ = ["STATUS", "refusal_responses", "refused"]
