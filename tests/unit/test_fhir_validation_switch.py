"""The builders validate with fhir.resources only when asked: always in the tests, not in the service."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fhir.resources.patient import Patient
from pydantic import ValidationError

from sambus.contracts.fhir import set_validation, validation_enabled
from sambus.contracts.fhir._validated import ENVIRONMENT_VARIABLE, validated

NOT_A_PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "yesterday"}


@pytest.fixture
def validation_off():
    set_validation(enabled=False)
    yield
    set_validation(enabled=True)


def test_the_test_suite_validates_every_builders_output():
    assert validation_enabled()
    with pytest.raises(ValidationError):
        validated(Patient, dict(NOT_A_PATIENT))


@pytest.mark.usefixtures("validation_off")
def test_without_validation_the_data_is_handed_on_unchecked():
    assert validated(Patient, dict(NOT_A_PATIENT)) == NOT_A_PATIENT


@pytest.mark.parametrize(("value", "enabled"), [(None, False), ("0", False), ("1", True), ("true", True)])
def test_the_service_validates_only_when_the_environment_asks(value, enabled):
    environment = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    if value is not None:
        environment[ENVIRONMENT_VARIABLE] = value
    code = "from sambus.contracts.fhir import validation_enabled; print(validation_enabled())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == str(enabled)
