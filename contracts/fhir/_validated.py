"""Validate a resource with ``fhir.resources`` once, and keep it as the JSON data it was built from.

Serialising a ``fhir.resources`` model is slower than validating it (see DESIGN.md's performance notes), so
builders validate their JSON data and hand that data on; the golden tests check it is what the model
would serialise.
"""

from __future__ import annotations

from typing import Any


def validated(model: Any, data: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN401 - a fhir.resources class
    """``data``, after ``model.model_validate(data)`` accepted it.

    Raises:
        pydantic.ValidationError: the data is not a valid resource (a bug in a builder, never bad input).
    """
    model.model_validate(data)
    return data
