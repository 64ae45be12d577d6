"""Every runtime dependency in pyproject.toml is used, and every library the code imports is declared."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "adapters", "consent", "router")

IMPORTED_AS = {
    "aiokafka": "aiokafka",
    "alembic": "alembic",
    "cryptography": "cryptography",
    "fastapi": "fastapi",
    "fhir.resources": "fhir.resources",
    "markupsafe": "markupsafe",
    "opentelemetry-api": "opentelemetry.trace",
    "orjson": "orjson",
    "opentelemetry-sdk": "opentelemetry.sdk",
    "prometheus-client": "prometheus_client",
    "pydantic": "pydantic",
    "pydantic-settings": "pydantic_settings",
    "pyyaml": "yaml",
    "rich": "rich",
    "sqlalchemy": "sqlalchemy",
    "starlette": "starlette",
    "typer": "typer",
    "uvicorn": "uvicorn",
}
"""Each declared distribution, and a module of it that sambus imports."""

USED_WITHOUT_IMPORT = {
    "jinja2": "fastapi.templating renders the web pages with it",
    "python-multipart": "FastAPI parses the form posts (login, compliance search) with it",
    "psycopg": "SQLAlchemy's PostgreSQL driver, named in SAMBUS_DATABASE_URL (postgresql+psycopg://)",
}
"""Declared distributions that sambus uses through another library, and how."""


def _normalise(name: str) -> str:
    return re.sub(r"[-_]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = (re.match(r"[A-Za-z0-9._-]+", spec) for spec in project["dependencies"])
    return {_normalise(name.group(0)) for name in names if name}


def _imported() -> set[str]:
    modules: set[str] = set()
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module)
    return modules


def _uses(module: str, imported: set[str]) -> bool:
    return any(name == module or name.startswith(f"{module}.") for name in imported)


def test_every_declared_dependency_is_imported_or_said_how_it_is_used():
    declared = _declared()
    imported = _imported()
    unaccounted = declared - {_normalise(d) for d in (*IMPORTED_AS, *USED_WITHOUT_IMPORT)}
    unused = sorted(d for d, module in IMPORTED_AS.items() if not _uses(module, imported))

    assert not unaccounted, f"declared in pyproject.toml, but nothing imports it: {sorted(unaccounted)}"
    assert not unused, f"nothing imports these any more; drop them from pyproject.toml: {unused}"
    assert {_normalise(d) for d in (*IMPORTED_AS, *USED_WITHOUT_IMPORT)} <= declared


def test_each_module_belongs_to_the_distribution_it_is_listed_under():
    provided_by = importlib.metadata.packages_distributions()
    for distribution, module in IMPORTED_AS.items():
        owners = {_normalise(d) for d in provided_by.get(module.split(".")[0], [])}
        assert _normalise(distribution) in owners, (module, owners)


def test_every_library_the_code_imports_is_declared():
    third_party = (
        {m.split(".")[0] for m in _imported()} - set(sys.stdlib_module_names) - {"sambus", "__future__"}
    )
    covered = {module.split(".")[0] for module in IMPORTED_AS.values()}

    assert third_party <= covered, f"imported but not declared: {sorted(third_party - covered)}"
