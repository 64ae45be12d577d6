"""`sambus run --web` as a user starts it: stages and HTTP service in one process, on the real broker."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from sambus.contracts.topics import Topics
from sambus.router.web.auth import mint_token

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_with_web_serves_ready_and_metrics_and_stops_on_sigterm(
    kafka_bootstrap: str, topics: Topics, tmp_path
):
    token, digest = mint_token()
    port = _free_port()
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
    sambus = str(Path(sys.executable).parent / "sambus")
    headers = {"Authorization": f"Bearer {token}"}
    subprocess.run(
        [sambus, "db", "upgrade"], env=env, cwd=tmp_path, check=True, timeout=60
    )  # as the README says
    with subprocess.Popen(
        [sambus, "run", "--web", "--log-format", "json"],
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
    assert ready.json() == {"ready": True, "checks": {"broker": True, "database": True}}
    assert "sambus_consumer_lag" in metrics.text
    assert refused.status_code == 401
    assert service.returncode == 0, stderr[-2000:]
    for line in stderr.splitlines():
        assert json.loads(line)["level"], "every log line is a JSON object"
