"""The container image: built by deploy/image/build.sh from a debootstrapped Debian root and the wheel.

Slow (debootstrap, a wheel, its dependencies). ``SAMBUS_IMAGE_DIR`` names a folder build.sh already filled
(and ``SAMBUS_IMAGE`` the image it made), to check them without building again. Containers cannot start on
every machine (here podman's crun fails on setrlimit), so ``sambus --help`` and ``sambus serve`` (``/health``,
``/ready``) run in the prepared root with ``chroot``, as the image's user. Without root, debootstrap or podman
the tests skip — and fail under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "image" / "build.sh"
IMAGE = os.environ.get("SAMBUS_IMAGE", "localhost/sambus:test")
"""The image build.sh makes (give the one it made for ``SAMBUS_IMAGE_DIR``)."""
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
COMPILERS = ("gcc", "g++", "cc", "c++", "clang", "tcc")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _cannot(reason: str) -> None:
    message = f"cannot build the image here: {reason}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder build.sh filled: rootfs/, rootfs.tar, Containerfile."""
    given = os.environ.get("SAMBUS_IMAGE_DIR")
    if given:
        return Path(given)
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        _cannot("build.sh needs root and debootstrap (apt-get install debootstrap podman)")
    out = tmp_path_factory.mktemp("image")
    result = subprocess.run(
        ["bash", str(BUILD), str(out), IMAGE], capture_output=True, text=True, check=False, timeout=1700
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def test_sambus_help_runs_in_the_root_as_its_user(built: Path) -> None:
    if os.geteuid() != 0:
        _cannot("chroot needs root")
    result = subprocess.run(
        [CHROOT, "--userspec=10001:10001", str(built / "rootfs"), "/opt/sambus/bin/sambus", "--help"],
        capture_output=True, text=True, check=False, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": "/var/lib/sambus"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Run the service" in result.stdout


def _in_root(built: Path, *args: str, env: dict[str, str]) -> list[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/var/lib/sambus"}
    return [CHROOT, "--userspec=10001:10001", str(built / "rootfs"), "env", "-i",
            *(f"{k}={v}" for k, v in {**base, **env}.items()), "/opt/sambus/bin/sambus", *args]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_root_serves_health_and_ready_without_a_broker(built: Path) -> None:
    """Containers cannot start here (setrlimit); the image's root runs `sambus serve` under chroot instead."""
    if os.geteuid() != 0:
        _cannot("chroot needs root")
    database = f"/var/lib/sambus/health-{secrets.token_hex(4)}.db"
    env = {"SAMBUS_DATABASE_URL": f"sqlite:///{database}"}
    upgraded = subprocess.run(_in_root(built, "db", "upgrade", env=env), capture_output=True, text=True,
                              check=False, timeout=120)  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    token = ("serve", "token", "--name", "probe", "--role", "operator")
    minted = subprocess.run(_in_root(built, *token, env=env), capture_output=True, text=True, check=True,
                            timeout=60)  # fmt: skip
    entry = re.search(r"entry: (\S+)", minted.stdout)
    assert entry is not None
    port = _free_port()
    env |= {
        "SAMBUS_PSEUDONYM_KEY": secrets.token_hex(32),
        "SAMBUS_WEB_TOKENS": entry.group(1),
        "SAMBUS_WEB_PORT": str(port),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    }
    server = subprocess.Popen(_in_root(built, "serve", env=env), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        health = None
        deadline = time.monotonic() + 60
        while health is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    health = json.loads(answer.read())
            except OSError:
                time.sleep(0.5)
        assert health == {"status": "ok"}
        with pytest.raises(urllib.error.HTTPError) as ready:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5)
        assert ready.value.code == 503
        with ready.value as answer:
            assert json.loads(answer.read())["missing"] == ["broker"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        (built / "rootfs" / database.lstrip("/")).unlink(missing_ok=True)


def test_the_root_has_the_user_the_venv_and_no_compiler(built: Path) -> None:
    rootfs = built / "rootfs"
    passwd = (rootfs / "etc" / "passwd").read_text(encoding="utf-8").splitlines()
    (sambus,) = [line for line in passwd if line.startswith("sambus:")]
    assert sambus.split(":")[2:4] == ["10001", "10001"]
    assert (rootfs / "opt" / "sambus" / "bin" / "sambus").is_file()
    wheels = list((rootfs / "opt" / "sambus" / "lib").glob("python3*/site-packages/sambus-*.dist-info"))
    assert len(wheels) == 1
    found = [
        str(path.relative_to(rootfs))
        for folder in ("usr/bin", "usr/local/bin", "bin")
        for name in COMPILERS
        for path in [rootfs / folder / name]
        if path.exists() or path.is_symlink()
    ]
    assert found == []
    assert not list((rootfs / "opt" / "sambus").rglob("tests/conftest.py"))  # the wheel, not the checkout


def test_the_image_runs_sambus_as_a_non_root_user(built: Path) -> None:
    containerfile = (built / "Containerfile").read_text(encoding="utf-8")
    assert "RUN " not in containerfile  # nothing runs inside the image while it is built
    podman = shutil.which("podman")
    if podman is None:
        _cannot("podman is not installed (apt-get install podman)")
    inspected = subprocess.run(
        [podman, "image", "inspect", IMAGE], capture_output=True, text=True, check=True, timeout=60
    )
    (config,) = [image["Config"] for image in json.loads(inspected.stdout)]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/sambus/bin/sambus"]
    assert config["Cmd"][0] == "run"
    assert "8080/tcp" in config["ExposedPorts"]
