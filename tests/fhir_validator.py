"""HAPI FHIR's validator (``deploy/fhir-validator/``) run from the tests: many files, one JVM, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VALIDATE = ROOT / "deploy" / "fhir-validator" / "validate.sh"
SAMBUS_CONFORMANCE = ROOT / "contracts" / "schemas" / "fhir"
"""sambus's own CodeSystems, ValueSets, NamingSystems, extensions, profiles and MessageDefinitions."""
HL7SE_BASE = ROOT / "contracts" / "fhir" / "vendor" / "hl7se-base-1.1.0"
"""The HL7 Sweden base profiles sambus's profiles build on."""
PROFILES = (SAMBUS_CONFORMANCE, HL7SE_BASE)


@dataclass(frozen=True)
class Issue:
    """One finding of the validator."""

    severity: str
    location: str
    message: str
    resource: int
    """Index of the resource in its file (a file may hold a JSON array of Bundles)."""

    def __str__(self) -> str:
        return f"{self.severity} at {self.location}: {self.message}"


@dataclass(frozen=True)
class Report:
    """What the validator found in one file."""

    file: Path
    resources: int
    issues: tuple[Issue, ...]

    @property
    def errors(self) -> list[Issue]:
        """The errors (and fatal errors)."""
        return [i for i in self.issues if i.severity in {"error", "fatal"}]

    @property
    def warnings(self) -> list[Issue]:
        """The warnings."""
        return [i for i in self.issues if i.severity == "warning"]


def in_ci() -> bool:
    """Whether the tests run under CI (``CI=true``), where nothing they need may be missing."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_tools() -> str | None:
    """What the validator needs and this machine lacks, as a message; ``None`` when nothing is missing."""
    missing = [tool for tool in ("java", "javac", "mvn") if shutil.which(tool) is None]
    if not missing:
        return None
    return f"the FHIR validator needs {', '.join(missing)}; run deploy/fhir-validator/prerequisites.sh"


def require_validator() -> None:
    """Skip (fail under ``CI=true``) when Java or Maven, which build and run the validator, are missing."""
    message = missing_tools()
    if message is None:
        return
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def validate(paths: Iterable[Path], *, conformance: Sequence[Path] = PROFILES) -> dict[Path, Report]:
    """Validate every JSON file in ``paths`` (files or directories) against base R4 plus ``conformance``."""
    require_validator()
    options = [arg for directory in conformance for arg in ("--conformance", str(directory))]
    result = subprocess.run(
        ["bash", str(VALIDATE), *options, *(str(p) for p in paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode not in {0, 1}:
        pytest.fail(f"the FHIR validator did not run:\n{result.stderr[-3000:]}", pytrace=False)
    reports = {}
    for line in result.stdout.splitlines():
        data = json.loads(line)
        issues = tuple(
            Issue(
                severity=i["severity"],
                location=i.get("location") or "",
                message=i["message"],
                resource=i.get("resource", 0),
            )
            for i in data["issues"]
        )
        reports[Path(data["file"])] = Report(
            file=Path(data["file"]), resources=data["resources"], issues=issues
        )
    return reports


def errors_of(reports: dict[Path, Report]) -> list[str]:
    """Every error, one line each, named by file and resource index."""
    return [
        f"{path.name}[{issue.resource}]: {issue}"
        for path, report in reports.items()
        for issue in report.errors
    ]


@dataclass
class DeliveredBundles:
    """The FHIR message Bundles end-to-end tests read from Kafka, kept for one validator run at the end."""

    directory: Path
    count: int = 0

    def keep(self, values: Iterable[bytes | None]) -> None:
        """Keep every record value that is a FHIR Bundle (anything else is some other record)."""
        for value in values:
            try:
                data = json.loads(value or b"")
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("resourceType") == "Bundle":
                self.count += 1
                path = self.directory / f"bundle-{self.count:05d}.json"
                path.write_bytes(value or b"")

    def check(self) -> None:
        """Fail when the validator finds an error in a kept Bundle (or, under CI, cannot run)."""
        if self.count == 0:
            return
        message = missing_tools()
        if message is not None:
            if in_ci():
                pytest.fail(message, pytrace=False)
            return
        errors = errors_of(validate([self.directory]))
        if errors:
            listed = "\n".join(errors[:40])
            pytest.fail(
                f"HAPI FHIR's validator found {len(errors)} errors in Bundles delivered in end-to-end tests "
                f"(kept in {self.directory}):\n{listed}",
                pytrace=False,
            )
