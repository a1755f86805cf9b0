"""The OpenAPI document is served, and a schemathesis run against the live API, as each role
that can write, finds no server error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_spec_describes_the_api(site):
    spec = site.client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in (
        "/api/v1/session",
        "/api/v1/me",
        "/api/v1/enterprises",
        "/api/v1/enterprises/{enterprise_id}",
        "/api/v1/cases",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases/{case_id}/actions/{action}",
        "/api/v1/cases/verify",
        "/api/v1/work-orders",
        "/api/v1/silences",
        "/api/v1/dead-letters",
        "/api/v1/markings",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    assert "ErrorOut" in spec["components"]["schemas"]


ROLES = ("monitor", "supervisor", "ent1", "enforcer1")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_server_error(site, tmp_path):
    """One run per role that can act, side by side (each is mostly waiting on the server)."""
    runs = {}
    for user in ROLES:
        token = site.ctx.users.create_token(user, "schemathesis")
        report = (tmp_path / f"{user}.txt").open("w")
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{site.url}/api/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {token}",
            "--phases",
            "coverage,fuzzing",  # the stateful phase re-walks the same operations in chains
            # Per operation, in the fuzzing phase; the coverage phase's boundary, wrong-type
            # and wrong-method cases (about 1,250 per role) are not limited by it.
            "--max-examples",
            "10",
            "--seed",
            "212",
            "--request-timeout",
            "20",
            "--exclude-path",
            "/api/v1/session",  # logging in and out would end the run's own identity
            "--exclude-path",
            "/api/v1/events",  # a stream that never ends (tests/nonsite/web/test_events.py)
        ]
        runs[user] = (subprocess.Popen(command, stdout=report, stderr=subprocess.STDOUT), report)
    failed = {}
    for user, (proc, report) in runs.items():
        code = proc.wait(timeout=600)
        report.close()
        if code != 0:
            failed[user] = (tmp_path / f"{user}.txt").read_text()[-4000:]
    assert not failed, failed


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_docs_and_every_page_load_their_assets_from_the_service_itself(site):
    docs = site.client.get("/api/docs")
    assert docs.status_code == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    client = site.login("monitor")
    pages = [docs.text] + [client.get(p).text for p in ("/", "/cases", "/work-orders", "/login")]
    pages.append(client.get(f"/cases/{site.cases['e1_alarm']}").text)
    for html in pages:
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        external = [a for a in assets if re.match(r"^(https?:)?//", a)]
        assert external == [], external
        for asset in assets:
            if asset.startswith("/static/"):
                assert client.get(asset).status_code == 200, asset
