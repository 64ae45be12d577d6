"""The wheel is the product: built from the checkout, installed with its dependencies into a fresh virtual
environment outside the checkout, it runs as a user runs it there.

Slow (a wheel build and a ``pip install`` of every dependency, from the pip cache when it has them). When
the package index cannot be reached the tests fail under ``CI=true`` and skip elsewhere, with the reason.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from sambus.router.web.auth import mint_token
from tests.web.serving import free_port, serve_and_ask

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", ".sambus",
    "artifacts",
)  # fmt: skip


def _left_out(directory: str, names: list[str]) -> set[str]:
    """What the copy of the checkout leaves out: caches, build output, the downloaded broker."""
    left_out = set(_NOT_SOURCE(directory, names))
    return left_out | ({"lib"} if Path(directory) == ROOT / "deploy" / "kafka" else set())


PARTS = ("contracts", "adapters", "consent", "router")


def _unavailable(reason: str) -> None:
    message = f"cannot build and install the wheel here: {reason}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _run(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600)


def _checked(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = _run(command, cwd=cwd, env=env)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result.stdout


@dataclass(frozen=True)
class Installed:
    """The built wheel, and a virtual environment outside the checkout with it installed."""

    wheel: Path
    venv: Path
    home: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def sambus(self) -> Path:
        return self.venv / "bin" / "sambus"

    def env(self, **settings: str) -> dict[str, str]:
        """A user's environment: this venv first on PATH, no sambus or Kafka settings but ``settings``."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SAMBUS_", "KAFKA_", "PYTHON", "VIRTUAL_ENV"))
        }
        return {
            **env,
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "SAMBUS_DATABASE_URL": f"sqlite:///{self.home / 'sambus.db'}",
            "SAMBUS_LOCAL_KAFKA_PORT": str(free_port()),  # nothing listens there: no broker
            **settings,
        }

    def run(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        """``sambus ARGS`` in the user's home folder, outside the checkout."""
        return _run([str(self.sambus), *args], cwd=self.home, env=self.env(**settings))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of the checkout; install it with its dependencies into a fresh venv."""
    work = tmp_path_factory.mktemp("wheel")
    assert ROOT not in work.parents, "the virtual environment must be outside the checkout"
    probe = _run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--retries", "1", "--timeout", "20",
         "--dest", str(work / "probe"), "setuptools>=77"],
        cwd=work,
    )  # fmt: skip
    if probe.returncode != 0:
        _unavailable(f"the package index does not answer (pip download setuptools):\n{probe.stderr[-1500:]}")
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_left_out)  # a clean tree: no stale build/ output
    dist = work / "dist"
    _checked(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(source)], cwd=work
    )
    (wheel,) = dist.glob("sambus-*.whl")
    venv = work / "venv"
    _checked([sys.executable, "-m", "venv", str(venv)], cwd=work)
    # The wheel and its declared dependencies from the package index (the pip cache when it has them);
    # --no-compile only skips byte-compiling thousands of fhir.resources modules up front.
    _checked(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(wheel)],
        cwd=work,
    )
    home = work / "home"
    home.mkdir()
    return Installed(wheel=wheel, venv=venv, home=home)


def test_the_wheel_installs_one_top_level_package_with_its_data(installed: Installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        (top_level,) = (n for n in names if n.endswith(".dist-info/top_level.txt"))
        (record,) = (n for n in names if n.endswith(".dist-info/RECORD"))
        top = wheel.read(top_level).decode().split()
        recorded = [line.split(",")[0] for line in wheel.read(record).decode().splitlines()]

    assert top == ["sambus"]
    assert {path.split("/")[0] for path in recorded} == {
        "sambus",
        installed.wheel.name.split("-py3")[0] + ".dist-info",
    }
    for data in (
        "sambus/router/web/templates/login.html",
        "sambus/router/routing/defaults/directory.yaml",
        "sambus/consent/defaults/rules.yaml",
        "sambus/contracts/schemas/asyncapi.json",
        "sambus/contracts/examples/se.sambus.school.sip-initiated.v1.json",
        "sambus/contracts/examples/golden/se.sambus.school.sip-initiated.v1.json",
    ):
        assert data in recorded, data
    assert any(p.startswith("sambus/contracts/schemas/events/") for p in recorded)


@pytest.mark.parametrize("part", PARTS)
def test_each_part_imports_only_under_sambus(installed: Installed, part: str):
    bare = _run([str(installed.python), "-c", f"import {part}"], cwd=installed.home, env=installed.env())
    under = _run(
        [str(installed.python), "-c", f"import sambus.{part} as m; print(m.__file__)"],
        cwd=installed.home,
        env=installed.env(),
    )

    assert bare.returncode == 1
    assert f"No module named '{part}'" in bare.stderr
    assert under.returncode == 0, under.stderr
    assert Path(under.stdout.strip()).is_relative_to(installed.venv), (
        "imported from the venv, not the checkout"
    )


def test_help_and_translate_an_example(installed: Installed):
    where = "from importlib.resources import files; print(files('sambus.contracts') / 'examples' / {!r})"
    code = where.format("se.sambus.school.sip-initiated.v1.json")
    example = _checked([str(installed.python), "-c", code], cwd=installed.home, env=installed.env()).strip()

    helped = installed.run("--help")
    translated = installed.run("translate", example)

    assert helped.returncode == 0, helped.stderr
    assert "translate" in helped.stdout
    assert translated.returncode == 0, translated.stderr
    bundles = json.loads(translated.stdout)
    assert bundles
    assert {b["resourceType"] for b in bundles} == {"Bundle"}


def test_config_check_and_consent_rules_use_the_packaged_defaults(installed: Installed):
    key = secrets.token_hex(32)

    checked = installed.run("config", "check", SAMBUS_PSEUDONYM_KEY=key)
    rules = installed.run("consent", "rules", COLUMNS="200")

    assert checked.returncode == 0, checked.stderr
    assert "Configuration is valid" in checked.stdout
    assert "the example packaged with sambus" in checked.stdout
    assert "Secrecy rules are valid" in checked.stdout
    assert rules.returncode == 0, rules.stderr
    assert "rules in the rules packaged with sambus" in rules.stdout
    assert "sip-consent" in rules.stdout


@pytest.mark.parametrize("command", [["kafka", "fetch"], ["kafka", "up"], ["demo"]], ids=" ".join)
def test_the_local_broker_says_it_is_a_development_tool(installed: Installed, command: list[str]):
    result = installed.run(*command)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "development tool" in " ".join(result.stderr.split())
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr


def test_db_upgrade_makes_the_schema_in_a_fresh_sqlite_file(installed: Installed):
    url = f"sqlite:///{installed.home / 'fresh.db'}"

    before = installed.run("db", "check", SAMBUS_DATABASE_URL=url)
    upgraded = installed.run("db", "upgrade", SAMBUS_DATABASE_URL=url)
    current = installed.run("db", "check", SAMBUS_DATABASE_URL=url)

    assert before.returncode != 0, "an empty database is not current"
    assert "Traceback" not in before.stderr
    assert upgraded.returncode == 0, upgraded.stderr
    assert (installed.home / "fresh.db").is_file()
    assert current.returncode == 0, current.stdout + current.stderr


def test_serve_answers_login_and_health_while_no_broker_is_reachable(installed: Installed):
    _, digest = mint_token()
    env = installed.env(
        SAMBUS_PSEUDONYM_KEY=secrets.token_hex(32),
        SAMBUS_WEB_TOKENS=f"ops:operator:{digest}",
        SAMBUS_WEB_PORT=str(free_port()),
    )
    _checked([str(installed.sambus), "db", "upgrade"], cwd=installed.home, env=env)  # as the README says

    served = serve_and_ask(
        installed.sambus, env, installed.home, ["/login", "/health", "/ready", "/operations"]
    )

    assert served.answers["/login"].status_code == 200
    assert "token" in served.answers["/login"].text
    assert served.answers["/health"].status_code == 200
    assert served.answers["/ready"].status_code == 503
    assert served.answers["/ready"].json()["missing"] == ["broker"]
    assert served.answers["/operations"].status_code == 401
    assert served.returncode == 0, served.stderr[-2000:]
