"""FHIR message builders, codes and naming systems.

One module per resource kind: ``task`` (Task, ServiceRequest), ``careplan``, ``consent``,
``patient`` (Patient, RelatedPerson), ``organization``, ``flag``; ``security`` for labels and
``registry`` to read registry facts back out of a message.
"""

from __future__ import annotations

from sambus.contracts.fhir._validated import set_validation, validation_enabled
from sambus.contracts.fhir.codes import (
    AGENCY_KIND_SYSTEM,
    DATA_CATEGORY_SYSTEM,
    DESTINATION_ENDPOINT_PREFIX,
    EVENT_SYSTEM,
    PROCESS_STEP_SYSTEM,
    PROTECTION_SYSTEM,
    PURPOSE_SYSTEM,
    RESIDENCE_TAG,
    ROUTING_ADDRESS_SYSTEM,
    SCHOOL_UNIT_SYSTEM,
    SIP_REASON_SYSTEM,
    SOURCE_ENDPOINT_PREFIX,
    SOURCE_EVENT_SYSTEM,
    TASK_SYSTEM,
    EventCode,
    ProcessStep,
    TaskCode,
)
from sambus.contracts.fhir.message import MessageSource, deterministic_id, message_bundle, patient, urn
from sambus.contracts.fhir.registry import registry_facts

__all__ = [
    "AGENCY_KIND_SYSTEM",
    "DATA_CATEGORY_SYSTEM",
    "DESTINATION_ENDPOINT_PREFIX",
    "EVENT_SYSTEM",
    "PROCESS_STEP_SYSTEM",
    "PROTECTION_SYSTEM",
    "PURPOSE_SYSTEM",
    "RESIDENCE_TAG",
    "ROUTING_ADDRESS_SYSTEM",
    "SCHOOL_UNIT_SYSTEM",
    "SIP_REASON_SYSTEM",
    "SOURCE_ENDPOINT_PREFIX",
    "SOURCE_EVENT_SYSTEM",
    "TASK_SYSTEM",
    "EventCode",
    "MessageSource",
    "ProcessStep",
    "TaskCode",
    "deterministic_id",
    "message_bundle",
    "patient",
    "registry_facts",
    "set_validation",
    "urn",
    "validation_enabled",
]
