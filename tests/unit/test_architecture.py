"""The package layout keeps its promises: imports point one way, exports are honest, imports are inert."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
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

# Inside router, each concept folder may import only itself and the folders before it. The modules directly
# in router/ (``settings``) come first; ``__init__`` re-exports the composition root and is exempt.
ROUTER_LAYERS = ("settings", "kafka", "ops", "routing", "stats", "stages", "service", "dev", "web", "cli")


def _import_names(path: Path) -> set[str]:
    """Every dotted name a module imports, wherever the statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
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
        found |= set(names)
    return found


def _imported_modules(path: Path) -> set[str]:
    """Every module of ours a module imports, without the ``sambus.`` prefix (old top-level names too)."""
    names = _import_names(path)
    return {name.removeprefix("sambus.") for name in names if name.startswith("sambus.")} | {
        name for name in names if name.split(".")[0] in PACKAGES
    }


def _our_imports(path: Path) -> set[str]:
    """The packages of ours that a module imports."""
    return {name.split(".")[0] for name in _imported_modules(path)} & set(PACKAGES)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int | None:
    """The router layer of a module (``router.kafka.admin`` → kafka), or None outside router."""
    parts = module.split(".")
    if parts[0] != "router" or len(parts) < 2:
        return None
    return ROUTER_LAYERS.index(parts[1])


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
            import sambus.router.cli.main
            from sambus.consent import Pseudonymizer
            def later():
                import sambus.adapters
            from .sibling import thing
            import json
            import contracts
            """
        ),
        encoding="utf-8",
    )

    assert _our_imports(module) == {"router", "consent", "adapters", "contracts"}


@pytest.mark.parametrize(
    ("package", "path"),
    [(package, path) for package in PACKAGES for path in _modules(package)],
    ids=lambda value: str(value.relative_to(ROOT)) if isinstance(value, Path) else value,
)
def test_imports_point_one_way(package, path):
    forbidden = _our_imports(path) - ALLOWED[package] - {package}

    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_every_import_names_the_one_sambus_package():
    old_style = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _import_names(path) if name.split(".")[0] in PACKAGES
        )
        for package in PACKAGES
        for path in _modules(package)
    }
    plain = {
        path: names for path, names in old_style.items() if any(n.split(".")[0] in PACKAGES for n in names)
    }

    assert plain == {}


def test_every_router_module_is_in_a_known_layer():
    unknown = [
        _module_name(path)
        for path in _modules("router")
        if _module_name(path) != "router" and _module_name(path).split(".")[1] not in ROUTER_LAYERS
    ]

    assert unknown == []


@pytest.mark.parametrize("path", _modules("router"), ids=lambda path: str(path.relative_to(ROOT)))
def test_router_layers_point_one_way(path):
    own = _layer(_module_name(path))
    if own is None:  # router/__init__.py
        return
    imported = {name for name in _imported_modules(path) if _layer(name) is not None}
    upward = sorted(name for name in imported if (_layer(name) or 0) > own)

    assert upward == [], f"{path.relative_to(ROOT)} ({ROUTER_LAYERS[own]}) imports from layers above it"


def test_the_layer_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from sambus.router.cli.main import app\n", encoding="utf-8")

    imported = {name for name in _imported_modules(module) if _layer(name) is not None}

    assert {_layer(name) for name in imported} == {ROUTER_LAYERS.index("cli")}


def _module_edges(path: Path, known: set[str]) -> set[str]:
    """The modules of ours a module imports (``from package import submodule``: the submodule only)."""
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            edges |= {alias.name.removeprefix("sambus.") for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module.removeprefix("sambus.")
            submodules = {f"{module}.{alias.name}" for alias in node.names} & known
            edges |= submodules
            if len(submodules) < len(node.names):
                edges.add(module)
    return edges & known


def _module_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for package in PACKAGES for path in _modules(package)}
    return {name: _module_edges(path, set(paths)) - {name} for name, path in paths.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of a module graph (each found once, from its first module in sorted order)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        for target in sorted(graph.get(name, ())):
            if target in trail:
                found.append([*trail[trail.index(target) :], target])
            elif target not in done:
                visit(target, [*trail, target])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    return found


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycles():
    assert _cycles(_module_graph()) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_and_every_name_exists(package):
    module = importlib.import_module(f"sambus.{package}")
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
    module = importlib.import_module(f"sambus.{package}")
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
        [sys.executable, "-c", _IMPORT_PROBE.replace("{package}", f"sambus.{package}")],
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
def test_importing_a_package_starts_no_thread_and_no_process(package, tmp_path):
    """Importing does no work of its own: no thread, no child process (import speed is a bench matter)."""
    probe = (
        "import multiprocessing, threading\n"
        f"import sambus.{package}\n"
        "print(threading.active_count(), len(multiprocessing.active_children()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "0"]
