"""`sambus run --web` as a user starts it: stages and HTTP service in one process, on the real broker."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from sambus.contracts.topics import Topics
from sambus.router.web.auth import mint_token
from tests.web.serving import free_port, serve_and_ask

SAMBUS = Path(sys.executable).parent / "sambus"


def no_broker_env(tmp_path: Path) -> dict[str, str]:
    """Settings for ``sambus serve`` with no broker configured and none listening at the local address."""
    _, digest = mint_token()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KAFKA_BOOTSTRAP_SERVERS", "SAMBUS_KAFKA_BOOTSTRAP_SERVERS"}
    }
    return {
        **env,
        "SAMBUS_LOCAL_KAFKA_PORT": str(free_port()),
        "SAMBUS_PSEUDONYM_KEY": secrets.token_hex(32),
        "SAMBUS_DATABASE_URL": f"sqlite:///{tmp_path / 'sambus.db'}",
        "SAMBUS_WEB_TOKENS": f"ops:operator:{digest}",
        "SAMBUS_WEB_PORT": str(free_port()),
    }


def test_serve_starts_without_a_broker_and_ready_says_the_broker_is_missing(tmp_path: Path):
    env = no_broker_env(tmp_path)
    subprocess.run(
        [SAMBUS, "db", "upgrade"], env=env, cwd=tmp_path, check=True, timeout=60
    )  # as the README says

    served = serve_and_ask(SAMBUS, env, tmp_path, ["/health", "/login", "/ready", "/operations", "/metrics"])

    answers = served.answers
    assert answers["/health"].status_code == 200
    assert answers["/login"].status_code == 200
    assert "token" in answers["/login"].text
    assert answers["/ready"].status_code == 503
    assert answers["/ready"].json() == {
        "ready": False,
        "checks": {"broker": False, "database": True},
        "missing": ["broker"],
    }
    assert answers["/operations"].status_code == 401
    assert answers["/metrics"].status_code == 401
    assert served.returncode == 0, served.stderr[-2000:]


@pytest.mark.kafka
def test_run_with_web_serves_ready_and_metrics_and_stops_on_sigterm(
    kafka_bootstrap: str, topics: Topics, tmp_path
):
    token, digest = mint_token()
    port = free_port()
    env = {
        **os.environ,
        "SAMBUS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SAMBUS_TOPIC_PREFIX": topics.prefix,
        "SAMBUS_PSEUDONYM_KEY": secrets.token_hex(32),
        "SAMBUS_DATABASE_URL": f"sqlite:///{tmp_path / 'sambus.db'}",
        "SAMBUS_INSTANCE_ID": secrets.token_hex(4),
        "SAMBUS_WEB_TOKENS": f"ops:operator:{digest}",
        "SAMBUS_WEB_PORT": str(port),
    }
    headers = {"Authorization": f"Bearer {token}"}
    subprocess.run(
        [SAMBUS, "db", "upgrade"], env=env, cwd=tmp_path, check=True, timeout=60
    )  # as the README says
    with subprocess.Popen(
        [SAMBUS, "run", "--web", "--log-format", "json"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    ) as service:
        try:
            ready = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and service.poll() is None:
                try:
                    ready = httpx2.get(f"http://127.0.0.1:{port}/ready", headers=headers, timeout=5)
                    if ready.status_code == 200:
                        break
                except httpx2.TransportError:
                    time.sleep(0.3)
            metrics = httpx2.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=10)
            refused = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        finally:
            service.send_signal(signal.SIGTERM)
            _, stderr = service.communicate(timeout=60)

    assert ready is not None
    assert ready.json() == {"ready": True, "checks": {"broker": True, "database": True}, "missing": []}
    assert "sambus_consumer_lag" in metrics.text
    assert refused.status_code == 401
    assert service.returncode == 0, stderr[-2000:]
    for line in stderr.splitlines():
        assert json.loads(line)["level"], "every log line is a JSON object"
