"""An established SIP as a ``CarePlan``: lead coordinator, each agency's actions, the follow-up date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.careplan import CarePlan

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import (
    LEAD_COORDINATOR_EXTENSION,
    LEAD_COORDINATOR_PERSON_EXTENSION,
    PROCESS_ID_SYSTEM,
    TASK_SYSTEM,
    TaskCode,
)
from sambus.contracts.fhir.security import meta
from sambus.contracts.fhir.task import Identifier, coding, organisation

ACTION_SYSTEM = "https://sambus.se/fhir/CodeSystem/sambus-sip-action"
"""``CarePlan.activity.detail.code``: the kind of action an agency takes on."""

SIP_CATEGORY = {
    "coding": [{"system": TASK_SYSTEM, "code": "sip"}],
    "text": "Samordnad individuell plan (SIP)",
}


def sip_care_plan(
    *,
    plan_id: str,
    process_id: str,
    patient_ref: str,
    created: dt.datetime,
    lead_coordinator: Identifier,
    participants: Sequence[Identifier],
    activities: Sequence[tuple[Identifier, str]],
    follow_up: dt.date,
    coordinator_ref: str | None = None,
    security: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The SIP plan.

    ``coordinator_ref`` (the ``fullUrl`` of a :func:`sambus.contracts.fhir.staff.staff_role`) names the
    person who is huvudansvarig, in the :data:`LEAD_COORDINATOR_PERSON_EXTENSION`.

    The lead coordinator (*huvudansvarig*) is ``CarePlan.author`` and is also marked by the
    :data:`LEAD_COORDINATOR_EXTENSION`; every participating agency is a ``contributor``; each action is an
    activity performed by its agency; the follow-up is an activity scheduled on the follow-up date,
    performed by the lead coordinator.
    """
    lead = organisation(lead_coordinator)
    data: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": plan_id,
        "identifier": [{"system": PROCESS_ID_SYSTEM, "value": process_id}],
        "extension": [{"url": LEAD_COORDINATOR_EXTENSION, "valueReference": lead}],
        "status": "active",
        "intent": "plan",
        "category": [SIP_CATEGORY],
        "subject": {"reference": patient_ref},
        "created": created.isoformat(),
        "period": {"start": created.date().isoformat(), "end": follow_up.isoformat()},
        "author": lead,
        "contributor": [organisation(p) for p in participants],
        "activity": [
            {
                "detail": {
                    "code": coding(ACTION_SYSTEM, action),
                    "status": "not-started",
                    "performer": [organisation(agency)],
                }
            }
            for agency, action in activities
        ]
        + [
            {
                "detail": {
                    "code": coding(TASK_SYSTEM, str(TaskCode.SIP_FOLLOW_UP)),
                    "status": "scheduled",
                    "scheduledPeriod": {"start": follow_up.isoformat()},
                    "performer": [lead],
                }
            }
        ],
    }
    if coordinator_ref is not None:
        data["extension"].append(
            {"url": LEAD_COORDINATOR_PERSON_EXTENSION, "valueReference": {"reference": coordinator_ref}}
        )
    if security:
        data["meta"] = meta(security=security)
    return validated(CarePlan, data)
