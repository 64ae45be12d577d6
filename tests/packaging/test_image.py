"""The container image: built by deploy/image/build.sh from a debootstrapped Debian root and the wheel.

Slow (debootstrap, a wheel, its dependencies). ``SAMBUS_IMAGE_DIR`` names a folder build.sh already filled,
to check it without building again. Containers cannot start on every machine (rootless podman without
setrlimit), so ``sambus --help`` runs in the prepared root with ``chroot``. Without root or debootstrap the
tests skip — and fail under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "image" / "build.sh"
IMAGE = "localhost/sambus:test"
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
        ["chroot", "--userspec=10001:10001", str(built / "rootfs"), "/opt/sambus/bin/sambus", "--help"],
        capture_output=True, text=True, check=False, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": "/var/lib/sambus"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Run the service" in result.stdout


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
    if podman is None or os.environ.get("SAMBUS_IMAGE_DIR"):
        pytest.skip("no image built here (podman missing, or SAMBUS_IMAGE_DIR given)")
    inspected = subprocess.run(
        [podman, "image", "inspect", IMAGE], capture_output=True, text=True, check=True, timeout=60
    )
    (config,) = [image["Config"] for image in json.loads(inspected.stdout)]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/sambus/bin/sambus"]
    assert config["Cmd"][0] == "run"
    assert "8080/tcp" in config["ExposedPorts"]
