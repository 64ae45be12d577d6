"""FHIR message builders, codes and naming systems."""

from __future__ import annotations

from contracts.fhir.codes import (
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
from contracts.fhir.message import MessageSource, deterministic_id, message_bundle, patient, urn

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
    "urn",
]
