"""The pages in real headless Chromium (Debian's, driven by Playwright): each role sees what it may.

Screenshots of both pages are saved in artifacts/ (git-ignored) by every run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect, sync_playwright

from sambus.contracts.topics import Topics
from sambus.router.kafka.admin import read_topic, run_sync
from sambus.router.web.auth import Role
from tests.web.conftest import CHILD, Site, make_site
from tests.web.kafka_seed import SCHOOL_RECORDS, Seeded, seed_dead_letters

pytestmark = pytest.mark.kafka

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        reason = "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free port (a thread of this process), until the block ends."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def base_url(site: Site) -> Iterator[str]:
    with _serving(site.app) as url:
        yield url


def _log_in(browser: Browser, base_url: str, token: str) -> Page:
    page = browser.new_page(base_url=base_url, viewport={"width": 1400, "height": 1000})
    page.goto("/login")
    page.fill("#token", token)
    page.click("#login")
    return page


def test_a_wrong_token_does_not_log_in(browser: Browser, base_url: str):
    page = _log_in(browser, base_url, "not-a-token")

    expect(page.locator("#login-error")).to_have_text("That token is not valid.")
    page.goto("/operations")
    expect(page.locator("h1")).to_have_text("Please log in")
    page.close()


def test_an_operator_sees_queues_and_replays_a_dead_letter_but_no_ledger(
    browser: Browser, base_url: str, site: Site, seeded: Seeded
):
    page = _log_in(browser, base_url, site.tokens[Role.OPERATOR])

    expect(page).to_have_url(f"{base_url}/operations")
    expect(page.locator("#who")).to_have_text("operator-person (operator)")
    expect(page.locator("#lag")).to_contain_text(seeded.group)
    expect(page.locator("#dead-count")).to_have_text("2")
    expect(page.locator("#parked-count")).to_have_text("1")
    expect(page.locator("#dead-letters tr")).to_have_count(3)
    expect(page.locator("#charts figure")).not_to_have_count(0)
    expect(page.get_by_role("link", name="Compliance")).to_have_count(0)
    assert CHILD not in page.content(), "operators never see personal data"
    page.fill("#period", "2026H1")
    page.click("#show-period")
    sips = page.get_by_role("img", name="SIPs offered (initiated)")
    expect(sips).to_contain_text("12")  # girls
    expect(sips).to_contain_text("<5")  # 2 "other" and, secondarily, the 9 boys
    expect(sips).not_to_contain_text("9")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "operations.png"), full_page=True)

    page.click("#replay-0-1")

    expect(page.locator("#replayed")).to_have_text(f"Dead letter 0-1 was published again on {seeded.school}.")
    school = run_sync(read_topic(site.sambus.bootstrap_servers, seeded.school))
    assert len(school) == SCHOOL_RECORDS + 1
    assert seeded.dead_values[1] in [r.value for r in school]
    page.goto("/compliance")
    expect(page.locator("h1")).to_have_text("Not allowed")
    page.close()


def test_a_compliance_officer_searches_and_verifies_but_sees_no_queues(
    browser: Browser, base_url: str, site: Site
):
    page = _log_in(browser, base_url, site.tokens[Role.COMPLIANCE])

    expect(page).to_have_url(f"{base_url}/compliance")
    expect(page.get_by_role("link", name="Operations")).to_have_count(0)
    page.fill("#personnummer", "20120315-0006")
    page.click("#search")

    expect(page.locator("#result-count")).to_have_text("3 decision(s)")
    results = page.locator("#results")
    expect(results).to_contain_text("no-consent-dental v1")
    expect(results).to_contain_text("secrecy (OSL 26:1)")
    expect(results).to_contain_text("consent (OSL 10:1)")
    expect(results).not_to_contain_text("m-2")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compliance.png"), full_page=True)
    page.select_option("#outcome", "deny")
    page.click("#search")
    expect(page.locator("#result-count")).to_have_text("1 decision(s)")

    page.click("#verify")

    expect(page.locator("#verification")).to_contain_text("Ledger intact: 4 entries checked")
    page.goto("/operations")
    expect(page.locator("h1")).to_have_text("Not allowed")
    audit = site.client(Role.ADMIN).get("/api/audit").json()
    assert [a["action"] for a in audit] == ["verify", "search", "search"]
    page.close()


def test_an_admin_sees_both_pages(browser: Browser, base_url: str, site: Site):
    page = _log_in(browser, base_url, site.tokens[Role.ADMIN])

    expect(page).to_have_url(f"{base_url}/operations")
    page.get_by_role("link", name="Compliance").click()
    expect(page.locator("h1")).to_have_text("Decision ledger")
    page.get_by_role("link", name="Operations").click()
    expect(page.locator("h1")).to_have_text("Operations")
    page.click("text=Log out")
    expect(page).to_have_url(f"{base_url}/login")
    page.goto("/operations")
    expect(page.locator("h1")).to_have_text("Please log in")
    page.close()


def test_pages_carry_the_security_headers_and_the_login_cookie_its_flags(
    browser: Browser, base_url: str, site: Site
):
    page = browser.new_page(base_url=base_url)
    response = page.goto("/login")
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    expect(page.locator("h1")).to_be_visible()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 247, 249)", (
        "the stylesheet loads under the Content-Security-Policy"
    )

    page.fill("#token", site.tokens[Role.OPERATOR])
    page.click("#login")

    expect(page).to_have_url(f"{base_url}/operations")
    [login] = [c for c in page.context.cookies() if c["name"] == "sambus_token"]
    assert (login["httpOnly"], login["secure"], login["sameSite"]) == (True, True, "Strict")
    assert "sambus_token" not in page.evaluate("document.cookie"), "scripts cannot read the login cookie"
    page.close()


def test_a_cross_site_form_post_is_refused(browser: Browser, base_url: str, site: Site):
    page = _log_in(browser, base_url, site.tokens[Role.COMPLIANCE])
    expect(page).to_have_url(f"{base_url}/compliance")
    attacker = (
        f'<form method="post" action="{base_url}/compliance/verify">'
        '<input type="hidden" name="csrf_token" value="guessed">'
        '<button id="attack" type="submit">Win a prize</button></form>'
    )
    page.route(
        "http://attacker.test/**", lambda route: route.fulfill(body=attacker, content_type="text/html")
    )
    page.goto("http://attacker.test/prize")

    with page.expect_response(f"{base_url}/compliance/verify") as answer:
        page.click("#attack")

    assert answer.value.status == 403
    expect(page.locator("main")).to_contain_text("cross-site request refused")
    assert site.client(Role.ADMIN).get("/api/audit").json() == [], "no verification ran"
    page.close()


def test_a_replay_with_the_pages_csrf_token_is_accepted_and_without_it_refused(
    browser: Browser, base_url: str, site: Site, seeded: Seeded
):
    page = _log_in(browser, base_url, site.tokens[Role.OPERATOR])
    expect(page).to_have_url(f"{base_url}/operations")
    token = page.locator("#dead-letters input[name=csrf_token]").first.get_attribute("value")
    assert token
    assert len(token) == 64

    page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'f'.repeat(64))"
    )
    with page.expect_response(f"{base_url}/operations/dead-letters/0-0/replay") as refused:
        page.click("#replay-0-0")
    assert refused.value.status == 403
    expect(page.locator("main")).to_contain_text("CSRF token")

    page.goto("/operations")
    page.click("#replay-0-0")

    expect(page.locator("#replayed")).to_have_text(f"Dead letter 0-0 was published again on {seeded.school}.")
    page.close()


MANY = 100_000
NAVIGATION = "(n => n.responseEnd - n.requestStart)(performance.getEntriesByType('navigation')[0])"
"""How long the last page took from the browser's request to the answer's end, in ms."""


@dataclass
class KafkaUse:
    """What the web service's Kafka clients do: clients started, records fetched."""

    starts: int = 0
    fetched: int = 0


@pytest.fixture
def kafka_use(monkeypatch: pytest.MonkeyPatch) -> KafkaUse:
    use = KafkaUse()
    start, getmany = AIOKafkaConsumer.start, AIOKafkaConsumer.getmany

    async def counting_start(self: AIOKafkaConsumer) -> None:
        use.starts += 1
        await start(self)

    async def counting_getmany(self: AIOKafkaConsumer, *partitions, timeout_ms=0, max_records=None):
        batch = await getmany(self, *partitions, timeout_ms=timeout_ms, max_records=max_records)
        use.fetched += sum(len(records) for records in batch.values())
        return batch

    monkeypatch.setattr(AIOKafkaConsumer, "start", counting_start)
    monkeypatch.setattr(AIOKafkaConsumer, "getmany", counting_getmany)
    return use


async def _more_dead_letters_and_a_replay(bootstrap: str, topics: Topics) -> None:
    await seed_dead_letters(bootstrap, topics, 3, first=MANY)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topics.dlq_replayed, b"replayed", key=f"0:{MANY - 1}".encode())
    finally:
        await producer.stop()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_operations_answers_in_under_200_ms_with_100000_dead_letters_reading_only_what_is_new(
    browser: Browser, tmp_path: Path, kafka_bootstrap: str, topics: Topics, kafka_use: KafkaUse
):
    run_sync(seed_dead_letters(kafka_bootstrap, topics, MANY))
    site = make_site(tmp_path, bootstrap_servers=kafka_bootstrap, topics=topics)
    try:
        with _serving(site.app) as url:
            page = _log_in(browser, url, site.tokens[Role.OPERATOR])
            expect(page).to_have_url(f"{url}/operations")
            expect(page.locator("#dead-count")).to_have_text(str(MANY))
            expect(page.locator("#dead-letters tr")).to_have_count(101)  # the header and the newest 100
            expect(page.locator(f"#replay-0-{MANY - 1}")).to_be_visible()
            assert kafka_use.fetched <= 2 * 100, (
                f"the first page read {kafka_use.fetched} records, not the tail"
            )
            assert kafka_use.starts == 1, "one consumer, kept"

            kafka_use.fetched = 0
            answered = []
            for _ in range(5):
                page.reload()
                expect(page.locator("#dead-count")).to_have_text(str(MANY))
                answered.append(page.evaluate(NAVIGATION))
            print(f"/operations with {MANY} dead letters answered in {sorted(answered)} ms")  # noqa: T201
            assert kafka_use.fetched == 0, "nothing new on the topics: reloads read no records"
            assert kafka_use.starts == 1, "the clients are kept between requests"
            assert min(answered) < 200, f"answered in {sorted(answered)} ms"

            run_sync(_more_dead_letters_and_a_replay(kafka_bootstrap, topics))
            kafka_use.fetched = 0
            page.reload()

            expect(page.locator("#dead-count")).to_have_text(str(MANY + 3))
            expect(page.locator(f"#replay-0-{MANY + 2}")).to_be_visible()
            expect(page.locator(f"#replayed-0-{MANY - 1}")).to_have_text("replayed")
            expect(page.locator("#dead-letters tr")).to_have_count(101)
            assert kafka_use.fetched == 3 + 1, "only the new dead letters and the new replay were read"
            page.close()
    finally:
        site.services.close()
