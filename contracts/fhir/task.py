"""``Task`` and ``ServiceRequest``: what a recipient is asked to do, one Task per (process, recipient).

A recipient's Task keeps its ``id`` and ``identifier`` (:data:`TASK_ID_SYSTEM`, :func:`task_id_for`) through
the whole process: every later message carries the same Task, updated. ``Task.status`` follows FHIR R4's
state machine (``requested`` → ``accepted`` / ``rejected`` → ``in-progress`` → ``completed`` /
``cancelled``); ``businessStatus`` carries the process step (:class:`ProcessStep`); ``groupIdentifier`` the
process id (:data:`PROCESS_ID_SYSTEM`); ``owner`` the recipient; ``authoredOn`` when the Task was asked for
(only the message that asks knows it), ``lastModified`` the time of the event the message reports. An
answer or a result is the owner's Task updated: its new ``status`` and, where a statement exists, ``output``
naming it (a ``DocumentReference``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import (
    PROCESS_ID_SYSTEM,
    PROCESS_STEP_SYSTEM,
    TASK_ID_SYSTEM,
    TASK_SYSTEM,
    ProcessStep,
    TaskCode,
)
from sambus.contracts.fhir.consent import CONSENT_ID_SYSTEM
from sambus.contracts.fhir.message import deterministic_id
from sambus.contracts.fhir.security import meta

Identifier = Mapping[str, str]

TASK_STATUSES = frozenset(
    {
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    }
)
"""FHIR R4 ``task-status`` codes."""


def task_id_for(process_id: str, owner: Identifier) -> str:
    """The id of ``owner``'s Task in the process ``process_id``: the same in every message of the process.

    ``owner`` is the organisation's identifier as the Task names it; the router gives a Task addressed by
    routing address the id of the organisation it resolves the address to, so that organisation's answers
    (made from its own identifier) name the Task it received.
    """
    return deterministic_id(process_id, "task", owner["system"], owner["value"])


def coding(system: str, code: str) -> dict[str, Any]:
    """A CodeableConcept with one coding."""
    return {"coding": [{"system": system, "code": code}]}


def organisation(identifier: Identifier) -> dict[str, Any]:
    """A logical reference to an organisation by its identifier."""
    return {"type": "Organization", "identifier": dict(identifier)}


def task(
    *,
    task_id: str,
    process_id: str,
    code: TaskCode | None,
    step: ProcessStep,
    owner: Identifier,
    requester: Identifier,
    patient_ref: str,
    modified: dt.datetime,
    authored_on: dt.datetime | None = None,
    status: str = "requested",
    intent: str = "order",
    priority: str | None = None,
    reason: Mapping[str, Any] | None = None,
    status_reason: Mapping[str, Any] | None = None,
    due: dt.date | None = None,
    based_on: str | None = None,
    focus: str | None = None,
    inputs: Sequence[Mapping[str, Any]] = (),
    outputs: Sequence[Mapping[str, Any]] = (),
    security: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """One recipient's Task; ``due`` becomes ``restriction.period.end`` (e.g. the LVU § 32 deadline).

    ``code`` is ``None`` in a status update from a system that does not know what the Task asked (the
    receiver knows the Task by its identifier). ``authored_on`` only in the message that asks. ``due`` may
    be a date or, for an urgent Task answered within hours, a date and time.

    Raises:
        ValueError: ``status`` is not an R4 task status (a bug in an adapter).
    """
    if status not in TASK_STATUSES:
        raise ValueError(f"{status!r} is not a FHIR R4 Task.status")
    data: dict[str, Any] = {
        "resourceType": "Task",
        "id": task_id,
        "identifier": [{"system": TASK_ID_SYSTEM, "value": task_id}],
        "groupIdentifier": {"system": PROCESS_ID_SYSTEM, "value": process_id},
        "status": status,
        "businessStatus": coding(PROCESS_STEP_SYSTEM, str(step)),
        "intent": intent,
    }
    if code is not None:
        data["code"] = coding(TASK_SYSTEM, str(code))
    data["for"] = {"reference": patient_ref}
    if authored_on is not None:
        data["authoredOn"] = authored_on.isoformat()
    data |= {
        "lastModified": modified.isoformat(),
        "requester": organisation(requester),
        "owner": organisation(owner),
    }
    if security:
        data["meta"] = meta(security=security)
    data |= {"priority": priority} if priority is not None else {}
    _optional(data, statusReason=status_reason, reasonCode=reason)
    if due is not None:
        data["restriction"] = {"period": {"end": due.isoformat()}}
    if based_on is not None:
        data["basedOn"] = [{"reference": based_on}]
    if focus is not None:
        data["focus"] = {"reference": focus}
    if inputs:
        data["input"] = [dict(item) for item in inputs]
    if outputs:
        data["output"] = [dict(output) for output in outputs]
    return validated(Task, data)


def _optional(data: dict[str, Any], **parts: Mapping[str, Any] | None) -> None:
    data.update({key: dict(part) for key, part in parts.items() if part is not None})


def service_request(
    *,
    request_id: str,
    process_id: str,
    code: TaskCode,
    performer: Identifier,
    requester: Identifier,
    patient_ref: str,
    authored_on: dt.datetime,
    due: dt.date | None = None,
    reason: Mapping[str, Any] | None = None,
    security: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The request behind an examination or referral Task; ``requisition`` correlates sibling requests."""
    data: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": request_id,
        "requisition": {"system": PROCESS_ID_SYSTEM, "value": process_id},
        "status": "active",
        "intent": "order",
        "code": coding(TASK_SYSTEM, str(code)),
        "subject": {"reference": patient_ref},
        "authoredOn": authored_on.isoformat(),
        "requester": organisation(requester),
        "performer": [organisation(performer)],
    }
    if security:
        data["meta"] = meta(security=security)
    if due is not None:
        data["occurrencePeriod"] = {"end": due.isoformat()}
    if reason is not None:
        data["reasonCode"] = [dict(reason)]
    return validated(ServiceRequest, data)


CONSENT_INPUT = "consent"
"""``Task.input.type`` code (:data:`TASK_SYSTEM`) of the consent a referral rests on."""


def consent_input(consent_id: str) -> dict[str, Any]:
    """A Task input naming the recorded consent (:data:`sambus.contracts.fhir.consent.CONSENT_ID_SYSTEM`)."""
    return {
        "type": coding(TASK_SYSTEM, CONSENT_INPUT),
        "valueIdentifier": {"system": CONSENT_ID_SYSTEM, "value": consent_id},
    }
