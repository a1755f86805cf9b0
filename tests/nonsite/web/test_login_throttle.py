"""Login throttling through the API (issue 16, defect 4): wrong passwords slow down the client
that sends them, not the account's owner elsewhere. Clients are told apart by X-Forwarded-For
from a configured proxy (the test's loopback), as behind a reverse proxy."""

from __future__ import annotations

import httpx
import pytest

from tests.nonsite.web.conftest import PASSWORD

ATTACKER = "203.0.113.5"
OWNER = "198.51.100.1"


def attempt(client: httpx.Client, password: str, address: str) -> httpx.Response:
    return client.post(
        "/api/v1/session",
        json={"username": "monitor", "password": password},
        headers={"X-Forwarded-For": address},
    )


def until_throttled(client: httpx.Client, address: str, limit: int = 12) -> list[int]:
    statuses = []
    for _ in range(limit):
        statuses.append(attempt(client, "wrong password", address).status_code)
        if statuses[-1] == 429:
            break
    return statuses


def test_the_right_password_from_another_client_works_at_once(site_with):
    site = site_with(trusted_proxies=["127.0.0.1"])
    statuses = until_throttled(site.client, ATTACKER)
    assert statuses[-1] == 429 and statuses.count(401) >= 5, statuses
    # the attacker's client is held back, even with the right password...
    r = attempt(site.client, PASSWORD, ATTACKER)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["code"] == "throttled"
    # ...while the account's owner, elsewhere, logs in at once
    r = attempt(site.client, PASSWORD, OWNER)
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "monitor"


def test_failures_and_refusals_are_audited_with_their_client(site_with):
    site = site_with(trusted_proxies=["127.0.0.1"])
    until_throttled(site.client, ATTACKER)
    attempt(site.client, PASSWORD, OWNER)
    events = [(e.event, e.client) for e in reversed(site.ctx.users.events(username="monitor"))]
    logins = [e for e in events if e[0].startswith("login_")]
    assert logins[-2:] == [("login_throttled", ATTACKER), ("login_ok", OWNER)]
    assert {c for kind, c in logins if kind == "login_failed"} == {ATTACKER}
    refusal = next(
        e for e in site.ctx.users.events(username="monitor") if e.event == "login_throttled"
    )
    assert "from this client" in refusal.detail


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_another_account_from_the_same_client_is_not_held_back(site_with):
    """The wait is for (user, client): a colleague behind the same address logs in."""
    site = site_with(trusted_proxies=["127.0.0.1"])
    until_throttled(site.client, ATTACKER)
    r = site.client.post(
        "/api/v1/session",
        json={"username": "supervisor", "password": PASSWORD},
        headers={"X-Forwarded-For": ATTACKER},
    )
    assert r.status_code == 200, r.text
