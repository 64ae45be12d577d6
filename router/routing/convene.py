"""A school without Cosmic Link convenes its SIP through social services or health care (the relay).

Västmanland's agreement: schools that lack Cosmic Link "initierar och sammankallar till SIP med stöd av
socialtjänsten eller hälso- och sjukvården". Their SIP initiative therefore does not go to the invitees
one by one: the relay gets one Task, ``sip-convene``, asking it to convene the SIP in Cosmic Link, with each
invitee and the school itself as ``Task.input``. The relay then invites (``sip-initiated`` or
``sip.meeting-scheduled`` under the same process id) and answers the school with the Task's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sambus.contracts.fhir import (
    PROCESS_STEP_SYSTEM,
    TASK_SYSTEM,
    ProcessStep,
    TaskCode,
    deterministic_id,
    urn,
)
from sambus.contracts.fhir.codes import SIP_INVITEE_INPUT, SIP_PARTICIPANT_INPUT, TASK_ID_SYSTEM
from sambus.router.routing.projection import TaskEntry, for_recipient

Identifier = tuple[str, str]


def convene_task_id(bundle_id: str, relay_id: str) -> str:
    """The id of the ``sip-convene`` Task a relay gets for the SIP initiative ``bundle_id``."""
    return deterministic_id(bundle_id, "sip-convene", relay_id)


def _organisation_input(code: str, identifier: Identifier) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": TASK_SYSTEM, "code": code}]},
        "valueReference": {
            "type": "Organization",
            "identifier": {"system": identifier[0], "value": identifier[1]},
        },
    }


def convene_request(
    bundle: dict[str, Any],
    first: TaskEntry,
    *,
    relay_id: str,
    relay_name: str,
    relay: Identifier,
    school: Identifier,
    invitees: Sequence[Identifier],
) -> dict[str, Any]:
    """The message asking ``relay`` to convene the SIP the school's ``bundle`` initiates.

    Built from the first invitation (its process id, reason, child and security labels); the Task is the
    relay's own, so the relay never sees the invitees' Tasks, only who they are.
    """
    message = for_recipient(bundle, first, recipient_id=relay_id, recipient_name=relay_name, owner=relay)
    task_id = convene_task_id(str(bundle.get("id")), relay_id)
    task = {
        key: value
        for key, value in first.resource.items()
        if key not in {"input", "output", "basedOn", "focus", "restriction"}
    }
    task.update(
        id=task_id,
        identifier=[{"system": TASK_ID_SYSTEM, "value": task_id}],
        intent="proposal",
        code={"coding": [{"system": TASK_SYSTEM, "code": str(TaskCode.SIP_CONVENE)}]},
        businessStatus={"coding": [{"system": PROCESS_STEP_SYSTEM, "code": str(ProcessStep.SIP_INVITED)}]},
        requester={"type": "Organization", "identifier": {"system": school[0], "value": school[1]}},
        owner={"type": "Organization", "identifier": {"system": relay[0], "value": relay[1]}},
        input=[
            *(_organisation_input(SIP_INVITEE_INPUT, invitee) for invitee in invitees),
            _organisation_input(SIP_PARTICIPANT_INPUT, school),
        ],
    )
    header = dict(message["entry"][0]["resource"])
    header["focus"] = [{"reference": urn(task_id)}]
    message["entry"] = [
        {**message["entry"][0], "resource": header},
        {"fullUrl": urn(task_id), "resource": task},
        *message["entry"][2:],
    ]
    return message
