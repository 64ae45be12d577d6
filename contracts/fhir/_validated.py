"""Validate a resource with ``fhir.resources`` when validation is on; hand on the JSON data it was built from.

Serialising a ``fhir.resources`` model is slower than validating it (see DESIGN.md's performance notes), so
builders validate their JSON data and hand that data on; the golden tests check it is what the model
would serialise.

Validating is most of what translating costs, and the builders' output is already proven by the contract,
golden and property tests (which run with validation on), so the service does not validate on the hot path.
Validation is on when ``SAMBUS_VALIDATE_FHIR`` is ``1``/``true``/``yes``/``on`` at import, or after
:func:`set_validation` (``sambus translate`` turns it on; the test suite sets the variable).
"""

from __future__ import annotations

import os
from typing import Any

ENVIRONMENT_VARIABLE = "SAMBUS_VALIDATE_FHIR"

_enabled = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def set_validation(*, enabled: bool) -> None:
    """Turn runtime validation of the builders' output on or off for this process."""
    global _enabled  # noqa: PLW0603 - one process-wide switch, read on every build
    _enabled = enabled


def validation_enabled() -> bool:
    """Whether the builders validate their output with ``fhir.resources``."""
    return _enabled


def validated(model: Any, data: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN401 - a fhir.resources class
    """``data``, after ``model.model_validate(data)`` accepted it when validation is on (as is otherwise).

    Raises:
        pydantic.ValidationError: validation is on and the data is not a valid resource (a bug in a
            builder, never bad input).
    """
    if _enabled:
        model.model_validate(data)
    return data
