"""School and preschool events, translated into canonical FHIR messages."""

from __future__ import annotations

from fhir.resources.R4B.task import Task

from contracts.envelope import Envelope
from contracts.events import Invitee, SipInitiated
from contracts.fhir import (
    PROCESS_STEP_SYSTEM,
    SCHOOL_UNIT_SYSTEM,
    SIP_REASON_SYSTEM,
    SOURCE_EVENT_SYSTEM,
    TASK_SYSTEM,
    EventCode,
    MessageSource,
    ProcessStep,
    TaskCode,
    deterministic_id,
    message_bundle,
    patient,
    urn,
)
from contracts.identifiers import HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM
from contracts.intent import Intent


def _owner_identifier(invitee: Invitee) -> dict[str, str]:
    if invitee.hsa_id is not None:
        return {"system": HSA_ID_SYSTEM, "value": invitee.hsa_id}
    assert invitee.organisation_number is not None  # noqa: S101 - the model guarantees one of the two
    return {"system": ORGANISATION_NUMBER_SYSTEM, "value": invitee.organisation_number}


def translate_sip_initiated(envelope: Envelope, event: SipInitiated) -> list[Intent]:
    """A school-initiated SIP becomes one message: a Task inviting each named agency.

    The router later gives each invited agency only its own Task.
    """
    source = MessageSource(system=envelope.source, event_id=envelope.id)
    message_id = deterministic_id(source.system, source.event_id)
    patient_id = deterministic_id(message_id, "patient")
    child = patient(personnummer=event.child.civic_no, resource_id=patient_id)
    tasks = []
    for invitee in event.invite:
        owner = _owner_identifier(invitee)
        task_id = deterministic_id(message_id, owner["system"], owner["value"])
        tasks.append(
            Task.model_validate(
                {
                    "resourceType": "Task",
                    "id": task_id,
                    "identifier": [
                        {
                            "system": SOURCE_EVENT_SYSTEM,
                            "value": f"{source.system}|{source.event_id}|{owner['value']}",
                        }
                    ],
                    "groupIdentifier": {
                        "system": SOURCE_EVENT_SYSTEM,
                        "value": f"{source.system}|{source.event_id}",
                    },
                    "status": "requested",
                    "intent": "proposal",
                    "businessStatus": {
                        "coding": [{"system": PROCESS_STEP_SYSTEM, "code": str(ProcessStep.SIP_INVITED)}]
                    },
                    "code": {
                        "coding": [
                            {
                                "system": TASK_SYSTEM,
                                "code": str(TaskCode.SIP_INVITATION),
                                "display": "Invitation to a coordinated individual plan (SIP)",
                            }
                        ]
                    },
                    "for": {"reference": urn(patient_id)},
                    "authoredOn": envelope.time,
                    "requester": {
                        "type": "Organization",
                        "identifier": {"system": SCHOOL_UNIT_SYSTEM, "value": event.school_unit_code},
                    },
                    "owner": {"type": "Organization", "identifier": owner},
                    "reasonCode": {"coding": [{"system": SIP_REASON_SYSTEM, "code": str(event.reason)}]},
                }
            )
        )
    bundle = message_bundle(
        message_id=message_id,
        event=EventCode.SIP_INITIATED,
        source=source,
        timestamp=envelope.time,
        focus=tasks,
        supporting=[child],
    )
    return [
        Intent(
            message_id=message_id,
            event=EventCode.SIP_INITIATED,
            correlation_id=message_id,
            child_personnummer=event.child.civic_no,
            bundle=bundle.model_dump(mode="json", exclude_none=True),
        )
    ]
