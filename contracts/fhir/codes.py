"""sambus's own CodeSystems and naming systems, and the codes the messages use."""

from __future__ import annotations

from enum import StrEnum

_BASE = "https://sambus.se/fhir"

EVENT_SYSTEM = f"{_BASE}/CodeSystem/sambus-event"
"""``MessageHeader.eventCoding``: what happened."""

TASK_SYSTEM = f"{_BASE}/CodeSystem/sambus-task"
"""``Task.code``: what the recipient is asked to do."""

PROCESS_STEP_SYSTEM = f"{_BASE}/CodeSystem/sambus-process-step"
"""``Task.businessStatus``: where the process stands."""

SOURCE_EVENT_SYSTEM = f"{_BASE}/NamingSystem/source-event"
"""Identifier of the inbound event a message was made from: ``<source>|<event id>``."""

SOURCE_ENDPOINT_PREFIX = "urn:sambus:source:"
DESTINATION_ENDPOINT_PREFIX = "urn:sambus:recipient:"


class EventCode(StrEnum):
    """Codes of :data:`EVENT_SYSTEM`."""

    SIP_INITIATED = "sip-initiated"


class TaskCode(StrEnum):
    """Codes of :data:`TASK_SYSTEM`."""

    SIP_INVITATION = "sip-invitation"


class ProcessStep(StrEnum):
    """Codes of :data:`PROCESS_STEP_SYSTEM`."""

    SIP_INVITED = "sip-invited"


SCHOOL_UNIT_SYSTEM = f"{_BASE}/NamingSystem/skolenhetskod"
"""A school unit's code in Skolverket's school unit register (SS 12000 ``schoolUnitCode``)."""

SIP_REASON_SYSTEM = f"{_BASE}/CodeSystem/sambus-sip-reason"
"""``Task.reasonCode``: why a SIP is needed, as a category."""
