"""Every endpoint but the probes and the login form refuses a missing or wrong token and a wrong role."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from sambus.router.web.auth import Role
from tests.web.conftest import Site

OPERATOR, COMPLIANCE, ADMIN = Role.OPERATOR, Role.COMPLIANCE, Role.ADMIN
ANYONE = (OPERATOR, COMPLIANCE, ADMIN)

# method, path, roles allowed, JSON body
ENDPOINTS = [
    ("GET", "/", ANYONE, None),
    ("GET", "/metrics", (OPERATOR, ADMIN), None),
    ("GET", "/operations", (OPERATOR, ADMIN), None),
    ("POST", "/operations/dead-letters/0-0/replay", (OPERATOR, ADMIN), None),
    ("GET", "/api/queues", (OPERATOR, ADMIN), None),
    ("GET", "/api/dead-letters", (OPERATOR, ADMIN), None),
    ("POST", "/api/dead-letters/0-0/replay", (OPERATOR, ADMIN), None),
    ("GET", "/api/stats?period=2026H1", (OPERATOR, ADMIN), None),
    ("GET", "/compliance", (COMPLIANCE, ADMIN), None),
    ("POST", "/compliance", (COMPLIANCE, ADMIN), None),
    ("POST", "/compliance/export", (COMPLIANCE, ADMIN), None),
    ("POST", "/compliance/verify", (COMPLIANCE, ADMIN), None),
    ("POST", "/api/ledger/search", (COMPLIANCE, ADMIN), {}),
    ("POST", "/api/ledger/verify", (COMPLIANCE, ADMIN), None),
    ("GET", "/api/audit", (ADMIN,), None),
]
PROBES = {("GET", "/health"), ("GET", "/ready")}
OPEN = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/static/sambus.css"), *PROBES}
IDS = [f"{m} {p}" for m, p, _, _ in ENDPOINTS]


def test_the_table_names_every_endpoint(offline_site: Site):
    routes = {
        (method, route.path)
        for route in offline_site.app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    listed = {(m, p.split("?")[0].replace("0-0", "{letter_id}")) for m, p, _, _ in ENDPOINTS}
    assert routes - OPEN == listed


@pytest.mark.parametrize(("method", "path", "roles", "body"), ENDPOINTS, ids=IDS)
def test_a_missing_token_is_refused(offline_site: Site, method, path, roles, body):
    response = offline_site.client().request(method, path, json=body)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert roles


@pytest.mark.parametrize(("method", "path", "roles", "body"), ENDPOINTS, ids=IDS)
def test_a_wrong_token_is_refused(offline_site: Site, method, path, roles, body):
    client = offline_site.client()
    wrong = offline_site.tokens[Role.ADMIN][:-2] + "xx"

    response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {wrong}"})
    client.cookies.set("sambus_token", "not-a-token")
    by_cookie = client.request(method, path, json=body)

    assert response.status_code == 401
    assert by_cookie.status_code == 401
    assert roles


@pytest.mark.parametrize(("method", "path", "roles", "body"), ENDPOINTS, ids=IDS)
def test_a_wrong_role_is_refused(offline_site: Site, method, path, roles, body):
    refused = [role for role in Role if role not in roles]
    for role in refused:
        response = offline_site.client(role).request(method, path, json=body)
        assert response.status_code == 403, role
        assert f"the {role} role may not use this" in response.json()["detail"]


def test_a_refusal_in_a_browser_is_a_page_that_links_to_the_login(offline_site: Site):
    response = offline_site.client(Role.OPERATOR).get("/compliance", headers={"Accept": "text/html"})

    assert response.status_code == 403
    assert "Not allowed" in response.text
    assert 'href="/login"' in response.text


def _csrf(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_login_sets_a_cookie_that_then_authenticates(offline_site: Site):
    client = offline_site.client()
    csrf = _csrf(client.get("/login").text)

    bad = client.post("/login", data={"token": "nope", "csrf_token": csrf})
    good = client.post(
        "/login",
        data={"token": offline_site.tokens[Role.COMPLIANCE], "csrf_token": csrf},
        follow_redirects=False,
    )

    assert bad.status_code == 401
    assert "That token is not valid." in bad.text
    assert good.status_code == 303
    assert good.headers["location"] == "/compliance"
    assert "httponly" in good.headers["set-cookie"].lower()
    assert client.get("/compliance").status_code == 200
    assert client.get("/api/queues").status_code == 403


def test_the_probes_answer_without_a_token_and_say_only_what_is_missing(offline_site: Site):
    client = offline_site.client()

    health = client.get("/health")
    ready = client.get("/ready")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 503
    assert ready.json() == {
        "ready": False,
        "checks": {"broker": False, "database": True},
        "missing": ["broker"],
    }


def test_ready_names_the_database_when_it_does_not_answer(offline_site: Site, tmp_path):
    (tmp_path / "sambus.db").unlink()
    (tmp_path / "sambus.db").mkdir()  # SQLite cannot open a folder: the database does not answer
    offline_site.sambus.engine.dispose()

    response = offline_site.client().get("/ready")

    assert response.status_code == 503
    assert response.json()["missing"] == ["broker", "database"]
