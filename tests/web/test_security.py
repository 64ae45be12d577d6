"""Security headers on every response, cookie flags, CSRF tokens and the Origin check, login throttling."""

from __future__ import annotations

import pytest

from sambus.router.web.auth import Role
from sambus.router.web.security import CONTENT_SECURITY_POLICY
from tests.web.conftest import Site


def _csrf(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize(
    ("path", "status"),
    [("/login", 200), ("/static/sambus.css", 200), ("/compliance", 401), ("/nowhere", 404), ("/health", 200)],
)
def test_every_response_carries_the_security_headers(offline_site: Site, path, status):
    response = offline_site.client().get(path)

    assert response.status_code == status
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY, "no scripts at all (default-src 'none')"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_the_login_cookie_is_httponly_secure_and_samesite_strict(offline_site: Site):
    client = offline_site.client()
    csrf = _csrf(client.get("/login").text)

    response = client.post(
        "/login",
        data={"token": offline_site.tokens[Role.OPERATOR], "csrf_token": csrf},
        follow_redirects=False,
    )

    cookie = response.headers["set-cookie"]
    assert cookie.startswith("sambus_token=")
    assert {"httponly", "secure", "samesite=strict"} <= {p.strip().lower() for p in cookie.split(";")}


def test_a_login_without_the_forms_csrf_token_is_refused(offline_site: Site):
    client = offline_site.client()
    client.get("/login")

    response = client.post(
        "/login", data={"token": offline_site.tokens[Role.OPERATOR]}, follow_redirects=False
    )

    assert response.status_code == 403
    assert "CSRF token" in response.json()["detail"]
    assert "sambus_token" not in response.headers.get("set-cookie", "")


def test_a_post_from_another_origin_is_refused_even_with_a_bearer_token(offline_site: Site):
    client = offline_site.client(Role.COMPLIANCE)

    refused = client.post("/api/ledger/verify", headers={"Origin": "https://evil.example"})
    allowed = client.post("/api/ledger/verify", headers={"Origin": "https://testserver"})

    assert refused.status_code == 403
    assert "cross-site request refused" in refused.json()["detail"]
    assert allowed.status_code == 200


def test_a_cookie_authenticated_post_needs_the_csrf_token(offline_site: Site):
    client = offline_site.client()
    csrf = _csrf(client.get("/login").text)
    client.post("/login", data={"token": offline_site.tokens[Role.COMPLIANCE], "csrf_token": csrf})

    without = client.post("/compliance/verify", data={})
    wrong = client.post("/compliance/verify", data={"csrf_token": "0" * 64})
    by_form = client.post("/compliance/verify", data={"csrf_token": csrf})
    by_header = client.post("/api/ledger/verify", headers={"X-CSRF-Token": csrf})

    assert (without.status_code, wrong.status_code) == (403, 403)
    assert by_form.status_code == 200
    assert "Ledger intact" in by_form.text
    assert by_header.status_code == 200


def test_failed_logins_are_limited_per_address(offline_site: Site):
    client = offline_site.client()
    csrf = _csrf(client.get("/login").text)

    failures = [client.post("/login", data={"token": f"guess-{n}", "csrf_token": csrf}) for n in range(10)]
    blocked = client.post(
        "/login", data={"token": offline_site.tokens[Role.ADMIN], "csrf_token": csrf}, follow_redirects=False
    )

    assert {f.status_code for f in failures} == {401}
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "sambus_token" not in blocked.headers.get("set-cookie", "")
