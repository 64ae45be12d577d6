"""The README stays true to the code: every setting has its row; it points only at files in the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from sambus.router.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TOP_LEVEL = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
IGNORED = set((ROOT / ".gitignore").read_text(encoding="utf-8").splitlines())
"""Paths made on first use (e.g. the downloaded broker's deploy/kafka/lib/) may be named before they exist."""


def _env_names(name: str, field: FieldInfo) -> set[str]:
    if isinstance(field.validation_alias, AliasChoices):
        return {str(choice) for choice in field.validation_alias.choices}
    return {f"SAMBUS_{name.upper()}"}


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _default_text(value: object) -> str:
    """How the README's default column begins for this default."""
    if value is None:
        return "—"
    if value == "":
        return "empty"
    if isinstance(value, float):
        return f"`{_number(value)}`"
    if isinstance(value, tuple):
        return f"`{json.dumps([_number(v) for v in value])}`"
    return f"`{value}`"


def _settings_rows() -> dict[str, tuple[str, str]]:
    """Each variable the settings table names: (meaning, default)."""
    table = README[README.index("| variable | meaning | default |") :].split("\n\n", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in table.splitlines()[2:]:
        variable, meaning, default = (cell.strip() for cell in line.strip("|").split(" | "))
        for name in re.findall(r"`([A-Z0-9_]+)`", variable):
            rows[name] = (meaning, default)
    return rows


def test_every_setting_has_a_row_with_its_default():
    rows = _settings_rows()
    fields = Settings.model_fields
    missing = {
        name: f"| `{max(_env_names(name, f))}` | {f.description} | {_default_text(f.default)} |"
        for name, f in fields.items()
        if not _env_names(name, f) & rows.keys()
    }
    wrong_default = {
        name: (rows[env][1], _default_text(f.default))
        for name, f in fields.items()
        for env in _env_names(name, f) & rows.keys()
        if not rows[env][1].startswith(_default_text(f.default))
    }
    known = set().union(*(_env_names(name, f) for name, f in fields.items()))

    assert not missing, "README settings table lacks rows, e.g.:\n" + "\n".join(missing.values())
    assert not wrong_default, f"README default differs from router/settings.py: {wrong_default}"
    assert rows.keys() <= known, f"README names settings that do not exist: {sorted(rows.keys() - known)}"
    assert all(f.description for f in fields.values()), "every setting says what it is (description=)"


def test_the_readme_links_only_to_files_in_the_repository():
    targets = re.findall(r"\]\(([^)]+)\)", README)
    outside = [
        t for t in targets if not t.startswith(("http://", "https://", "#")) and not (ROOT / t).exists()
    ]

    assert "../" not in README, "the README points outside the repository"
    assert not outside, f"links to files that are not in the repository: {outside}"


def test_every_path_the_readme_names_exists():
    named = re.findall(r"`([\w.-]+/[\w./-]*)`", README)
    stale = sorted(
        {p for p in named if p.split("/")[0] in TOP_LEVEL and p not in IGNORED and not (ROOT / p).exists()}
    )

    assert not stale, f"the README names paths that do not exist: {stale}"
