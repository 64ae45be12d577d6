"""The package layout keeps its promises: imports point one way, exports are honest, imports are inert."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "adapters", "consent", "router")

# What each package may import of ours (besides itself).
ALLOWED = {
    "contracts": set(),
    "adapters": {"contracts"},
    "consent": {"contracts"},
    "router": {"contracts", "adapters", "consent"},
}


def _our_imports(path: Path) -> set[str]:
    """The top-level packages of ours that a module imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom):  # a relative import stays inside the package
            names = []
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            names = []
        found |= {name.split(".")[0] for name in names} & set(PACKAGES)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_package_has_modules():
    for package in PACKAGES:
        assert _modules(package), package


def test_the_import_check_sees_imports_in_every_form(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        textwrap.dedent(
            """
            import router.cli
            from consent import Pseudonymizer
            def later():
                import adapters
            from .sibling import thing
            import json
            """
        ),
        encoding="utf-8",
    )

    assert _our_imports(module) == {"router", "consent", "adapters"}


@pytest.mark.parametrize(
    ("package", "path"),
    [(package, path) for package in PACKAGES for path in _modules(package)],
    ids=lambda value: str(value.relative_to(ROOT)) if isinstance(value, Path) else value,
)
def test_imports_point_one_way(package, path):
    forbidden = _our_imports(path) - ALLOWED[package] - {package}

    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_and_every_name_exists(package):
    module = importlib.import_module(package)
    exported = module.__all__

    assert list(exported) == sorted(exported, key=_isort_style)
    assert len(set(exported)) == len(exported)
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing


def _isort_style(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then functions and the rest."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_isort_style_order():
    names = ["parse_event", "Topics", "SCHEMA_VERSION", "TopicSpec", "AgencyKind", "EVENT_TYPES"]

    assert sorted(names, key=_isort_style) == [
        "EVENT_TYPES",
        "SCHEMA_VERSION",
        "AgencyKind",
        "TopicSpec",
        "Topics",
        "parse_event",
    ]


def _package_dirs() -> list[str]:
    return sorted(
        str(path.parent.relative_to(ROOT)).replace("/", ".")
        for package in PACKAGES
        for path in (ROOT / package).rglob("__init__.py")
    )


@pytest.mark.parametrize("package", _package_dirs())
def test_subpackage_all_is_sorted_and_every_name_exists(package):
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", [])

    assert list(exported) == sorted(exported, key=_isort_style)
    assert [name for name in exported if not hasattr(module, name)] == []


# Runs in a fresh interpreter: records every socket use and every file opened for anything but reading.
_IMPORT_PROBE = """
import sys

events = []

def audit(event, args):
    if event.startswith("socket.") or event == "subprocess.Popen":
        events.append(event)
    elif event == "open" and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
        events.append(f"open {args[0]} {args[1]}")

sys.addaudithook(audit)
import {package}
print("\\n".join(events))
"""


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_opens_no_socket_writes_no_file_and_starts_nothing(package, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE.replace("{package}", package)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_is_quick(package, tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", f"import {package}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10  # a few hundred milliseconds normally; generous for busy machines
