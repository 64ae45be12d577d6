"""The FHIR validation tests fail, not skip, under CI when Java or Maven is missing."""

from __future__ import annotations

import pytest
from tests.fhir_validator import require_validator


def test_a_missing_jdk_or_maven_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")

    with pytest.raises(pytest.fail.Exception, match="needs java, javac, mvn"):
        require_validator()


def test_a_missing_jdk_or_maven_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.skip.Exception, match=r"prerequisites\.sh"):
        require_validator()
