"""Bounds on what the API accepts (issue 16, defect 6): every text field and list has a
documented limit, refused with a 422 naming the field and the limit, and no request body may
be larger than [service] max_request_bytes (1 MiB), refused with a 413, so that nothing
unbounded reaches the append-only audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

MIB = 1024 * 1024


def comment(site, body: dict[str, Any] | bytes, **kw: Any) -> httpx.Response:
    client = site.login("monitor")
    url = f"/api/v1/cases/{site.cases['e1_warning']}/actions/comment"
    if isinstance(body, bytes):
        return client.post(url, content=body, headers={"Content-Type": "application/json"}, **kw)
    return client.post(url, json=body, **kw)


def audit_trail(site) -> list[dict[str, Any]]:
    detail = site.client.get(f"/api/v1/cases/{site.cases['e1_warning']}").json()
    return list(detail["events"])


def test_a_20_mb_refs_is_refused_before_the_audit_trail(site):
    site.login("monitor")
    before = audit_trail(site)
    r = comment(site, {"note": "看过", "refs": {"photo": "x" * (20 * MIB)}})
    assert r.status_code == 413, r.text[:200]
    assert r.json()["code"] == "body_too_large"
    assert "1048576 bytes" in r.json()["message"]
    assert audit_trail(site) == before


def test_a_chunked_body_is_cut_off_at_the_limit(site):
    def chunks() -> Iterator[bytes]:
        yield b'{"note": "'
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MiB in all, without a Content-Length
        yield b'"}'

    client = site.login("monitor")
    r = client.post(
        f"/api/v1/cases/{site.cases['e1_warning']}/actions/comment",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "body_too_large"


def test_a_body_just_under_the_limit_is_read(site):
    """The limit is on bytes, not on what they say: a body under it reaches validation."""
    body = json.dumps({"note": "看过", "refs": {}, "pad": "x" * (MIB - 100)}).encode()
    assert len(body) < MIB
    r = comment(site, body)
    assert r.status_code == 422  # "pad" is no field: read and refused by validation
    assert "pad" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "field", "limit"),
    [
        ({"note": "x" * 4001}, "note", "4000 characters"),
        ({"note": "x", "refs": {f"k{i}": "v" for i in range(21)}}, "refs", "20 items"),
        ({"note": "x", "refs": {"k" * 65: "v"}}, "refs.", "64 characters"),
        ({"note": "x", "refs": {"photo": "v" * 1001}}, "refs.photo", "1000 characters"),
        ({"note": "x", "case_number": "9" * 65}, "case_number", "64 characters"),
    ],
)
def test_an_action_field_over_its_limit_is_named_with_the_limit(site, body, field, limit):
    r = comment(site, body)
    assert r.status_code == 422, r.text[:300]
    answer = r.json()
    assert answer["code"] == "invalid_request"
    assert f"body.{field}" in answer["message"] and limit in answer["message"], answer
    assert "x" * 100 not in r.text and "v" * 100 not in r.text  # the input is not echoed


def test_a_refused_password_is_not_echoed(site):
    secret = "correct horse " * 30
    r = site.client.post("/api/v1/session", json={"username": "monitor", "password": secret})
    assert r.status_code == 422
    assert "body.password" in r.json()["message"] and "256 characters" in r.json()["message"]
    assert "correct horse" not in r.text


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/api/v1/cases", {"rule": "A" * 17}, "query.rule"),
        ("/api/v1/cases", {"enterprise_id": "E" * 65}, "query.enterprise_id"),
        ("/api/v1/cases", {"state": ["open"] * 21}, "query.state"),
        ("/api/v1/cases", {"state": "s" * 17}, "query.state.0"),
        ("/api/v1/enterprises", {"region": "区" * 101}, "query.region"),
        ("/api/v1/enterprises", {"industry": "i" * 65}, "query.industry"),
        ("/api/v1/enterprises/" + "E" * 65, {}, "path.enterprise_id"),
        ("/api/v1/markings", {"enterprise_id": "E" * 65}, "query.enterprise_id"),
        ("/api/v1/work-orders", {"brigade": "B" * 65}, "query.brigade"),
        ("/api/v1/work-orders", {"state": "s" * 17}, "query.state"),
        ("/api/v1/dead-letters", {"reason": "r" * 65}, "query.reason"),
    ],
)
def test_query_and_path_parameters_are_bounded(site, path, params, name):
    r = site.login("monitor").get(path, params=params)
    assert r.status_code == 422, (path, params, r.status_code, r.text[:200])
    assert r.json()["code"] == "invalid_request"
    assert name in r.json()["message"], r.json()


def test_an_overlong_last_event_id_starts_from_now(site):
    client = site.login("monitor")
    with client.stream(
        "GET", "/api/v1/events", headers={"Last-Event-ID": "9" * 400}, timeout=5
    ) as r:
        assert r.status_code == 200
        assert next(r.iter_lines()) == "retry: 2000"


def _request_schemas(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema a request may carry: bodies (with the models they refer to) and
    parameters."""
    schemas = spec["components"]["schemas"]

    def walk(where: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            yield from walk(f"{where}→{name}", schemas[name])
            return
        yield where, schema
        for key in ("anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(schema.get(key, [])):
                yield from walk(f"{where}[{i}]", sub)
        for name, sub in schema.get("properties", {}).items():
            yield from walk(f"{where}.{name}", sub)
        if isinstance(schema.get("items"), dict):
            yield from walk(f"{where}[]", schema["items"])
        if isinstance(schema.get("additionalProperties"), dict):
            yield from walk(f"{where}{{}}", schema["additionalProperties"])
        if isinstance(schema.get("propertyNames"), dict):
            yield from walk(f"{where}{{key}}", schema["propertyNames"])

    for path, item in spec["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []):
                if p["in"] in ("query", "path"):
                    yield from walk(f"{method} {path} {p['in']}.{p['name']}", p["schema"])
            for content in op.get("requestBody", {}).get("content", {}).values():
                yield from walk(f"{method} {path} body", content["schema"])


def _unbounded(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "string":
        # A file (format binary) is bounded by [service] max_upload_bytes before it is read
        # (nonsite.web.guard; test_evidence_api.py).
        exempt = (
            "enum" in schema
            or "const" in schema
            or schema.get("format") in ("date-time", "date", "binary")
            or "contentMediaType" in schema
        )
        return not exempt and "maxLength" not in schema
    if kind == "array":
        return "maxItems" not in schema
    if kind == "object" and schema.get("additionalProperties"):
        return "maxProperties" not in schema
    return False


def test_every_text_field_and_list_the_api_accepts_has_a_limit(site):
    """Read from the OpenAPI document, which is generated from the same models that validate:
    a string without maxLength (and not an enum, a pattern-bound token or a date-time), a list
    without maxItems or a map without maxProperties is a finding."""
    spec = site.client.get("/api/openapi.json").json()
    unbounded = [where for where, schema in _request_schemas(spec) if _unbounded(schema)]
    assert unbounded == []
