"""Start ``sambus serve`` as a user does (a subprocess with its own environment) and ask it some paths."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    """What each path answered, and how the service ended after SIGTERM."""

    answers: dict[str, httpx2.Response]
    returncode: int
    stderr: str


def serve_and_ask(sambus: str | Path, env: dict[str, str], cwd: Path, paths: list[str]) -> Served:
    """Run ``sambus serve`` on ``env``'s SAMBUS_WEB_PORT until ``/health`` answers, GET ``paths``, stop it.

    Raises:
        AssertionError: the service exited or did not answer within 60 s (with its stderr).
    """
    url = f"http://127.0.0.1:{env['SAMBUS_WEB_PORT']}"
    with subprocess.Popen(
        [str(sambus), "serve"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as service:
        try:
            deadline = time.monotonic() + 60
            while True:
                if service.poll() is not None or time.monotonic() > deadline:
                    service.kill()
                    _, stderr = service.communicate(timeout=30)
                    code = service.returncode
                    raise AssertionError(f"`sambus serve` did not answer (exit {code}):\n{stderr[-3000:]}")
                try:
                    httpx2.get(f"{url}/health", timeout=5)
                    break
                except httpx2.TransportError:
                    time.sleep(0.3)
            answers = {path: httpx2.get(f"{url}{path}", timeout=30) for path in paths}
        finally:
            if service.poll() is None:
                service.send_signal(signal.SIGTERM)
            _, stderr = service.communicate(timeout=60)
    return Served(answers=answers, returncode=service.returncode, stderr=stderr)
