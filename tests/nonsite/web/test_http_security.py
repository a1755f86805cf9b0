"""The HTTP side's own defences (issue 16, defect 5): security headers on every response, a
session cookie that is Secure behind TLS, and client addresses taken from X-Forwarded-For only
when a configured proxy sends it."""

from __future__ import annotations

import httpx
import pytest

from tests.nonsite.web.conftest import PASSWORD

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


def csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers.get("content-security-policy", "")
    out = {}
    for directive in filter(None, (d.strip() for d in policy.split(";"))):
        name, _, value = directive.partition(" ")
        out[name] = value
    return out


def wrong_login(client: httpx.Client, username: str, forwarded: str | None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(
        "/api/v1/session", json={"username": username, "password": "wrong!!!"}, headers=headers
    )


def login_clients(site, username: str) -> list[str]:
    """The client addresses of the user's login events, oldest first."""
    return [
        e.client
        for e in reversed(site.ctx.users.events(username=username))
        if e.event.startswith("login_")
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/",  # a redirect to /login
        "/cases",
        "/static/js/main.js",
        "/static/vendor/uplot/uPlot.iife.min.js",
        "/api/v1/me",  # 401
        "/api/v1/enterprises",
        "/api/v1/nothing-here",  # 404
        "/api/openapi.json",
        "/healthz",
        "/metrics",
    ],
)
def test_every_response_carries_the_security_headers(site, path):
    site.login("monitor")
    r = site.client.get(path, follow_redirects=False)
    for name, value in HEADERS.items():
        assert r.headers.get(name) == value, (path, name, r.headers)
    policy = csp(r)
    assert policy["default-src"] == "'self'", policy
    assert policy["script-src"] == "'self'", policy  # no inline script, no eval
    assert policy["style-src"] == "'self'", policy  # no inline style either
    assert policy["frame-ancestors"] == "'none'", policy
    assert policy["object-src"] == "'none'", policy
    assert policy["base-uri"] == "'none'", policy
    assert policy["form-action"] == "'self'", policy
    assert "strict-transport-security" not in r.headers  # plain HTTP here


def test_the_api_docs_page_has_no_inline_script(site):
    r = site.client.get("/api/docs")
    assert r.status_code == 200
    assert "<script>" not in r.text  # Swagger UI is started from /static/api-docs.js
    policy = csp(r)
    assert policy["script-src"] == "'self'"
    assert policy["img-src"] == "'self' data:"  # Swagger UI's icons
    assert policy["frame-ancestors"] == "'none'"
    assert site.client.get("/static/api-docs.js").status_code == 200


def test_the_session_cookie_is_httponly_strict_and_not_secure_by_default(site):
    r = site.client.post("/api/v1/session", json={"username": "monitor", "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie.replace("samesite", "")


def test_the_session_cookie_is_secure_when_configured(site_with):
    site = site_with(secure_cookies=True)
    r = site.client.post("/api/v1/session", json={"username": "monitor", "password": PASSWORD})
    assert r.status_code == 200
    assert "; secure" in r.headers["set-cookie"].lower()
    # a logout's expiry of the cookie carries the same attributes
    r = site.client.delete("/api/v1/session", headers={"Cookie": "nonsite_session=x"})
    assert "; secure" in r.headers["set-cookie"].lower()
    assert r.headers["strict-transport-security"] == "max-age=31536000"


def test_a_trusted_proxy_saying_https_makes_the_cookie_secure(site_with):
    site = site_with(trusted_proxies=["127.0.0.1"])
    body = {"username": "monitor", "password": PASSWORD}
    r = site.client.post("/api/v1/session", json=body, headers={"X-Forwarded-Proto": "https"})
    assert "; secure" in r.headers["set-cookie"].lower()
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    r = site.client.post("/api/v1/session", json=body, headers={"X-Forwarded-Proto": "http"})
    assert "; secure" not in r.headers["set-cookie"].lower()


def test_an_untrusted_peer_cannot_claim_https(site):
    body = {"username": "monitor", "password": PASSWORD}
    r = site.client.post("/api/v1/session", json=body, headers={"X-Forwarded-Proto": "https"})
    assert "; secure" not in r.headers["set-cookie"].lower()
    assert "strict-transport-security" not in r.headers


def test_a_forged_forwarded_for_from_loopback_is_ignored(site):
    """Nothing is configured as a proxy, so loopback is the client: what it claims in
    X-Forwarded-For is neither audited nor a way around the per-client throttle."""
    statuses = []
    for i in range(10):
        r = wrong_login(site.client, "monitor", f"203.0.113.{i}")
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
    assert statuses[-1] == 429, statuses  # throttled though every attempt "came" elsewhere
    assert set(login_clients(site, "monitor")) == {"127.0.0.1"}


def test_a_configured_proxy_gives_the_client_address(site_with):
    """From a trusted proxy the client is the rightmost address in X-Forwarded-For that is not
    itself a trusted proxy: what the client put to the left of it is not believed."""
    site = site_with(trusted_proxies=["127.0.0.1", "10.0.0.0/24"])
    client = site.client
    wrong_login(client, "ghost1", "198.51.100.7")
    wrong_login(client, "ghost2", "203.0.113.66, 198.51.100.8")  # 203.0.113.66: forged
    wrong_login(client, "ghost3", "203.0.113.66, 198.51.100.9, 10.0.0.5")  # two proxies
    wrong_login(client, "ghost4", "10.0.0.7, 10.0.0.5")  # only proxies: the leftmost
    wrong_login(client, "ghost5", None)  # the proxy itself
    wrong_login(client, "ghost6", "not-an-address")  # not believed: the proxy's own
    wrong_login(client, "ghost7", "[2001:db8::1]:4711")  # RFC 7239 style with a port
    got = [login_clients(site, f"ghost{i}") for i in range(1, 8)]
    assert got == [
        ["198.51.100.7"],
        ["198.51.100.8"],
        ["198.51.100.9"],
        ["10.0.0.7"],
        ["127.0.0.1"],
        ["127.0.0.1"],
        ["2001:db8::1"],
    ]


def test_the_server_does_not_name_itself(site):
    assert "server" not in site.client.get("/healthz").headers
