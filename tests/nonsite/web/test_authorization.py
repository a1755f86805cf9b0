"""The authorization matrix: every role against every endpoint and action, including
cross-enterprise reads, with the expected allow or deny."""

from __future__ import annotations

import pytest

from tests.nonsite.web.conftest import USERS

ROLES = list(USERS)
ALL = {"e1_alarm", "e2_warning", "e1_warning"}

# What each user sees (reads are checked by content, not only by status).
VISIBLE_CASES = {
    "monitor": ALL,
    "supervisor": ALL,
    "admin": ALL,
    "enforcer1": {"e1_alarm"},  # its brigade's work order
    "enforcer2": set(),
    "ent1": {"e1_alarm", "e1_warning"},
    "ent2": {"e2_warning"},
    "town1": set(),  # a township follows its clues, not cases
    "hotline": set(),
    "legal1": ALL,  # the legal reviewer reads the cases whose decisions it reviews
}
VISIBLE_ENTERPRISES = {u: {"E1", "E2"} for u in ROLES} | {
    "ent1": {"E1"},
    "ent2": {"E2"},
    "town1": {"E1"},  # its area's (滨江区), to name them in a clue
    "hotline": set(),
}
WORK_ORDERS = {"monitor": 1, "supervisor": 1, "admin": 1, "enforcer1": 1, "enforcer2": 0}
# The clues each sees (the store has one, from the hotline, about E1 in 滨江区).
VISIBLE_CLUES = {"monitor": 1, "supervisor": 1, "admin": 1, "town1": 1, "hotline": 1}
NO_CASES = {"town1": 404, "hotline": 404}  # scoped out of every case

# Reads: path → {user: status}; unlisted users get the default (first key "*").
READS = {
    "/api/v1/me": {"*": 200},
    "/api/v1/enterprises": {"*": 200},
    "/api/v1/enterprises/E2": {"*": 200, "ent1": 404, "town1": 404, "hotline": 404},
    "/api/v1/enterprises/E1": {"*": 200, "ent2": 404, "hotline": 404},
    "/api/v1/cases": {"*": 200},
    "/api/v1/cases/{e2_warning}": {
        "*": 200,
        "ent1": 404,
        "enforcer1": 404,
        "enforcer2": 404,
        **NO_CASES,
    },
    "/api/v1/cases/{e1_alarm}": {"*": 200, "ent2": 404, "enforcer2": 404, **NO_CASES},
    "/api/v1/work-orders": {
        "*": 200,
        "ent1": 403,
        "ent2": 403,
        "town1": 403,
        "hotline": 403,
        "legal1": 403,
    },
    "/api/v1/silences": {"*": 403, "monitor": 200, "supervisor": 200, "admin": 200},
    "/api/v1/silences/1": {"*": 403, "monitor": 404, "supervisor": 404, "admin": 404},
    "/api/v1/dead-letters": {"*": 403, "monitor": 200, "supervisor": 200, "admin": 200},
    "/api/v1/quality": {"*": 403, "monitor": 200, "supervisor": 200, "admin": 200},
    "/api/v1/brigades": {"*": 200},
    "/api/v1/cases/{e2_warning}/record": {
        "*": 200,
        "ent1": 404,
        "enforcer1": 404,
        "enforcer2": 404,
        **NO_CASES,
    },
    "/api/v1/markings": {"*": 200},
    "/api/v1/cases/{e1_alarm}/follow-up": {"*": 200, "ent2": 404, "enforcer2": 404, **NO_CASES},
    "/api/v1/rechecks": {
        "*": 200,
        "ent1": 403,
        "ent2": 403,
        "town1": 403,
        "hotline": 403,
        "legal1": 403,
    },
    "/api/v1/decisions": {"*": 403, "monitor": 200, "supervisor": 200, "admin": 200, "legal1": 200},
    "/api/v1/cases/{e1_alarm}/decisions": {"*": 200, "ent2": 404, "enforcer2": 404, **NO_CASES},
    "/api/v1/clues": {"*": 403, **dict.fromkeys(VISIBLE_CLUES, 200)},
    "/api/v1/clues/{clue}": {"*": 403, **dict.fromkeys(VISIBLE_CLUES, 200)},
    # risk ratings: the fleet's for who plans inspections, an enterprise its own only
    "/api/v1/risk": {
        "*": 403,
        **dict.fromkeys(["monitor", "supervisor", "admin", "enforcer1", "enforcer2"], 200),
    },
    "/api/v1/enterprises/E1/risk": {
        "*": 200,
        "ent2": 404,
        "town1": 404,
        "hotline": 404,
        "legal1": 404,
    },
    "/api/v1/positive-list": {
        "*": 403,
        **dict.fromkeys(["monitor", "supervisor", "admin", "enforcer1", "enforcer2"], 200),
    },
    "/api/v1/statistics?period=2026Q4": {
        "*": 403,
        "monitor": 200,
        "supervisor": 200,
        "admin": 200,
    },
    "/api/v1/statistics/report?period=2026Q4&format=xlsx": {
        "*": 403,
        "monitor": 200,
        "supervisor": 200,
        "admin": 200,
    },
    "/api/v1/draws": {
        "*": 403,
        **dict.fromkeys(["monitor", "supervisor", "admin", "enforcer1", "enforcer2"], 200),
    },
    "/api/v1/draws/library": {
        "*": 403,
        **dict.fromkeys(["monitor", "supervisor", "admin", "enforcer1", "enforcer2"], 200),
    },
    # a complaint merged into E1's alarm: the brigade inspecting it reads it, E1 does not
    "/api/v1/cases/{e1_alarm}/clues": {
        "*": 403,
        "monitor": 200,
        "supervisor": 200,
        "admin": 200,
        "enforcer1": 200,
        "enforcer2": 404,
    },
}

# Writes: each on a fresh store. (method, path, body) → {user: status}.
WRITES = {
    "verify": (
        "POST",
        "/api/v1/cases/{e1_warning}/actions/verify",
        {"outcome": "confirmed"},
        {"*": 403, "monitor": 200, "enforcer1": 404, "enforcer2": 404, "ent2": 404, **NO_CASES},
    ),
    "risk recompute": (
        "POST",
        "/api/v1/risk/recompute",
        {"enterprise_id": "E1"},
        {"*": 403, "monitor": 200, "supervisor": 200, "admin": 200},
    ),
    "positive-list proposal": (
        "POST",
        "/api/v1/positive-list/proposals",
        {"enterprise_id": "E1", "change": "enter", "reason": "连续绿码"},
        {"*": 403, "supervisor": 201},
    ),
    "双随机 draw": (
        "POST",
        "/api/v1/draws",
        {"period": "2026Q4", "seed": "种子"},
        {"*": 403, "supervisor": 201},
    ),
    "bulk verify": (
        "POST",
        "/api/v1/cases/verify",
        {"case_ids": ["{e1_warning}"], "outcome": "confirmed"},
        {"*": 403, "monitor": 200},
    ),
    "explain": (
        "POST",
        "/api/v1/cases/{e1_warning}/actions/explain",
        {"note": "检修，已补标记"},
        {"*": 403, "ent1": 200, "ent2": 404, "enforcer1": 404, "enforcer2": 404, **NO_CASES},
    ),
    "explain another's": (
        "POST",
        "/api/v1/cases/{e2_warning}/actions/explain",
        {"note": "不是我家的"},
        {"*": 403, "ent2": 200, "ent1": 404, "enforcer1": 404, "enforcer2": 404, **NO_CASES},
    ),
    "dispatch unverified warning": (
        "POST",
        "/api/v1/cases/{e1_warning}/actions/dispatch",
        {"brigade": "B1"},
        {"*": 403, "supervisor": 409, "enforcer1": 404, "enforcer2": 404, "ent2": 404, **NO_CASES},
    ),
    "arrive": (
        "POST",
        "/api/v1/cases/{e1_alarm}/actions/arrive",
        {},
        {"*": 403, "enforcer1": 200, "enforcer2": 404, "ent2": 404, **NO_CASES},
    ),
    "close too early": (
        "POST",
        "/api/v1/cases/{e1_alarm}/actions/close",
        {},
        {"*": 403, "supervisor": 409, "enforcer2": 404, "ent2": 404, **NO_CASES},
    ),
    "comment": (
        "POST",
        "/api/v1/cases/{e1_alarm}/actions/comment",
        {"note": "已电话联系"},
        {"*": 200, "admin": 403, "legal1": 403, "enforcer2": 404, "ent2": 404, **NO_CASES},
    ),
    "silence": (
        "POST",
        "/api/v1/silences",
        {"reason": "脱硫塔检修", "ends_at": "2030-01-01T00:00:00+08:00", "enterprise_id": "E1"},
        {"*": 403, "monitor": 201, "supervisor": 201},
    ),
    # no silence 1 in this store: who may edit gets as far as looking for it
    "edit a silence": (
        "PATCH",
        "/api/v1/silences/1",
        {"reason": "延期"},
        {"*": 403, "monitor": 404, "supervisor": 404},
    ),
    "end a silence": (
        "DELETE",
        "/api/v1/silences/1",
        None,
        {"*": 403, "monitor": 404, "supervisor": 404},
    ),
    "order a rectification": (
        "POST",
        "/api/v1/cases/{e1_alarm}/rectification/order",
        {"requirement": "更换脱硫循环泵"},
        {
            "*": 403,
            "supervisor": 200,
            "enforcer1": 200,
            "enforcer2": 404,
            "ent2": 404,
        },
    ),
    "report a rectification not ordered": (
        "POST",
        "/api/v1/cases/{e1_alarm}/rectification/report",
        {"note": "已整改"},
        {"*": 403, "ent1": 409, "enforcer1": 409, "enforcer2": 404, "ent2": 404},
    ),
    "record a decision": (
        "POST",
        "/api/v1/cases/{e1_alarm}/decisions",
        {"kind": "order_correction", "document_number": "责改〔2026〕1号"},
        {"*": 403, "supervisor": 201},
    ),
    # no decision awaits review in this store: the reviewer gets as far as looking for it
    "review a decision": (
        "POST",
        "/api/v1/decisions/1/review",
        {"approve": True},
        {"*": 403, "legal1": 404},
    ),
    # no re-check in this store: who may plan or decide one gets as far as looking for it
    "plan a re-check": (
        "PATCH",
        "/api/v1/rechecks/1",
        {"method": "on_site"},
        {"*": 403, "monitor": 404, "supervisor": 404},
    ),
    "decide a re-check": (
        "POST",
        "/api/v1/rechecks/1/decide",
        {"outcome": "passed", "note": "无异常"},
        {
            "*": 403,
            "monitor": 404,
            "supervisor": 404,
            "enforcer1": 404,
            "enforcer2": 404,
            "ent1": 404,
            "ent2": 404,
        },
    ),
    "submit a clue": (
        "POST",
        "/api/v1/clues",
        {
            "source": "hotline_12345",
            "occurred_at": "2026-11-20T02:00:00+08:00",
            "description": "夜间冒黑烟",
            "enterprise_id": "E1",
        },
        {"*": 403, "monitor": 201, "supervisor": 201, "town1": 201, "hotline": 201},
    ),
    "submit a clue of another area": (
        "POST",
        "/api/v1/clues",
        {
            "source": "township",
            "occurred_at": "2026-11-20T02:00:00+08:00",
            "description": "异味",
            "area": "城东区",
        },
        {"*": 403, "monitor": 201, "supervisor": 201, "town1": 403, "hotline": 201},
    ),
}


def expected(table: dict[str, int], user: str) -> int:
    return table.get(user, table["*"])


def fill(text, cases):
    return text.format(**cases) if isinstance(text, str) else text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("user", ROLES)
def test_reads(site, user):
    client = site.login(user)
    for path, table in READS.items():
        r = client.get(path.format(**site.cases))
        assert r.status_code == expected(table, user), (user, path, r.text)
        if r.status_code >= 400:
            assert set(r.json()) == {"code", "message"}, r.text
    ids = {c["id"] for c in client.get("/api/v1/cases").json()["items"]}
    assert ids == {site.cases[n] for n in VISIBLE_CASES[user]}
    names = {e["id"] for e in client.get("/api/v1/enterprises").json()}
    assert names == VISIBLE_ENTERPRISES[user]
    markings = {m["enterprise_id"] for m in client.get("/api/v1/markings").json()}
    assert markings == VISIBLE_ENTERPRISES[user] & {"E2"}  # only E2 declared one
    if user in WORK_ORDERS:
        assert len(client.get("/api/v1/work-orders").json()) == WORK_ORDERS[user]
    if user in VISIBLE_CLUES:
        assert len(client.get("/api/v1/clues").json()) == VISIBLE_CLUES[user]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("user", ROLES)
@pytest.mark.parametrize("write", list(WRITES))
def test_writes(site, user, write):
    method, path, body, table = WRITES[write]
    client = site.login(user)
    if body and "case_ids" in body:
        body = {**body, "case_ids": [int(fill(c, site.cases)) for c in body["case_ids"]]}
    r = client.request(method, fill(path, site.cases), json=body)
    assert r.status_code == expected(table, user), (user, write, r.text)
    if write == "bulk verify" and r.status_code == 200:
        assert r.json()["done"] == [site.cases["e1_warning"]]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_anonymous_callers_get_nothing_but_health(site):
    site.client.cookies.clear()
    for path in [*list(READS), "/api/v1/cases/verify"]:
        method = "POST" if path.endswith("verify") else "GET"
        r = site.client.request(method, path.format(**site.cases), json={})
        assert r.status_code == 401, (path, r.text)
        assert r.json()["code"] == "not_logged_in"
    assert site.client.get("/healthz").status_code == 200
    assert site.client.get("/api/openapi.json").status_code == 200


# Evidence (files, so apart from WRITES' JSON bodies): (method, path, with a file) → statuses.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
EVIDENCE = {
    "attach to a case": (
        "POST",
        "/api/v1/cases/{e1_alarm}/attachments",
        True,
        {
            "*": 403,
            "monitor": 201,
            "supervisor": 201,
            "enforcer1": 201,
            "enforcer2": 404,
            "ent1": 201,
            "ent2": 404,
        },
    ),
    "attach to a clue": (
        "POST",
        "/api/v1/clues/{clue}/attachments",
        True,
        # the hotline's own clue (E1, 滨江区): its sender and that area's township
        {"*": 403, "monitor": 201, "supervisor": 201, "town1": 201, "hotline": 201},
    ),
    "export a bundle": (
        "GET",
        "/api/v1/cases/{e1_alarm}/bundle",
        False,
        {"*": 403, "monitor": 200, "supervisor": 200, "enforcer1": 200, "enforcer2": 404},
    ),
    "read a case's evidence": (
        "GET",
        "/api/v1/cases/{e1_alarm}/attachments",
        False,
        {"*": 200, "enforcer2": 404, "ent2": 404, **NO_CASES},
    ),
}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("user", ROLES)
@pytest.mark.parametrize("action", list(EVIDENCE))
def test_evidence(site, user, action):
    method, path, with_file, table = EVIDENCE[action]
    client = site.login(user)
    files = {"file": ("现场.jpg", JPEG, "image/jpeg")} if with_file else None
    r = client.request(method, fill(path, site.cases), files=files)
    assert r.status_code == expected(table, user), (user, action, r.text)
