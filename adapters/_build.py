"""What every translation shares: the message id, the process id, the child, recipients, the Intent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.envelope import Envelope
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.events import Agency, Child, Recipient, TaskState
from sambus.contracts.events._common import URGENT_RESPONSE_HOURS, StaffPerson, SuicideRisk
from sambus.contracts.events.school import Concern, SipReason
from sambus.contracts.fhir import (
    ROUTING_ADDRESS_SYSTEM,
    SCHOOL_UNIT_SYSTEM,
    SIP_REASON_SYSTEM,
    EventCode,
    MessageSource,
    ProcessStep,
    TaskCode,
    deterministic_id,
    message_bundle,
    urn,
)
from sambus.contracts.fhir.assessment import SecrecyAssessment as FhirSecrecyAssessment
from sambus.contracts.fhir.assessment import assessment_inputs
from sambus.contracts.fhir.codes import (
    CONCERN_CATEGORY_INPUT,
    CONCERN_SYSTEM,
    REPORTER_INPUT,
    STAFF_USER_ID_SYSTEM,
    TASK_SYSTEM,
)
from sambus.contracts.fhir.patient import child_patient
from sambus.contracts.fhir.security import header_labels, security_labels
from sambus.contracts.fhir.staff import staff_role
from sambus.contracts.fhir.task import coding, consent_input, service_request, task, task_id_for
from sambus.contracts.identifiers import HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM
from sambus.contracts.intent import Intent

Identifier = Mapping[str, str]

TASK_STEP = {
    TaskState.ACCEPTED: ProcessStep.TASK_ACCEPTED,
    TaskState.REJECTED: ProcessStep.TASK_REJECTED,
    TaskState.IN_PROGRESS: ProcessStep.TASK_IN_PROGRESS,
    TaskState.COMPLETED: ProcessStep.TASK_COMPLETED,
}
"""The process step a reported Task state puts in ``businessStatus``."""


def agency_identifier(agency: Agency | Recipient) -> Identifier:
    """The identifier a named agency is owner or requester by (HSA-id, orgnr or school unit code)."""
    if agency.hsa_id is not None:
        return {"system": HSA_ID_SYSTEM, "value": agency.hsa_id}
    if agency.organisation_number is not None:
        return {"system": ORGANISATION_NUMBER_SYSTEM, "value": agency.organisation_number}
    if agency.school_unit_code is not None:
        return {"system": SCHOOL_UNIT_SYSTEM, "value": agency.school_unit_code}
    if not isinstance(agency, Recipient) or agency.kind is None:  # pragma: no cover - the models forbid it
        raise InvalidEventError("an agency needs hsaId, organisationNumber or kind")
    value = str(agency.kind) if agency.municipality is None else f"{agency.kind}@{agency.municipality}"
    return routing_address(value)


def routing_address(value: str) -> Identifier:
    """An owner the router resolves in its directory: ``<kind>`` or ``<kind>@<kommunkod>``."""
    return {"system": ROUTING_ADDRESS_SYSTEM, "value": value}


def hsa(value: str) -> Identifier:
    """An HSA-id identifier."""
    return {"system": HSA_ID_SYSTEM, "value": value}


def orgnr(value: str) -> Identifier:
    """An organisation-number identifier."""
    return {"system": ORGANISATION_NUMBER_SYSTEM, "value": value}


@dataclass
class Draft:
    """A message being made from one inbound event.

    Args:
        envelope: the inbound envelope (source system, event id, time).
        child: the child the event is about (sets the Patient and the security labels).
        event: the MessageHeader event code.
        process_id: the process a follow-up event names; ``None`` starts a process with this message's id.
    """

    envelope: Envelope
    child: Child
    event: EventCode
    process_id: str | None = None
    hidden_residence: bool = False
    address: dict[str, Any] | None = None
    custody: str | None = None
    sender: Identifier | None = None
    """The organisation that sends the message when it is not the Tasks' requester (an answer's unit)."""
    focus: list[dict[str, Any]] = field(default_factory=list)
    supporting: list[dict[str, Any]] = field(default_factory=list)

    @property
    def source(self) -> MessageSource:
        """The sending system and its event id."""
        return MessageSource(system=self.envelope.source, event_id=self.envelope.id)

    @cached_property
    def message_id(self) -> str:
        """Deterministic: the same source event always gives the same message id."""
        return deterministic_id(self.envelope.source, self.envelope.id)

    @property
    def process(self) -> str:
        """The process id: named by the event, or this message's id for the first message of a process."""
        return self.process_id if self.process_id is not None else self.message_id

    def id_for(self, *parts: str) -> str:
        """A deterministic resource id inside this message."""
        return deterministic_id(self.message_id, *parts)

    @cached_property
    def patient_id(self) -> str:
        """The id of the child's Patient in this message (made once: every Task and request names it)."""
        return self.id_for("patient")

    @cached_property
    def patient_ref(self) -> str:
        """The ``fullUrl`` of the child's Patient."""
        return urn(self.patient_id)

    @cached_property
    def security(self) -> list[dict[str, str]]:
        """The ``meta.security`` labels of every resource in the message."""
        return security_labels(protection=str(self.child.protection), hidden_residence=self.hidden_residence)

    def add_task(
        self,
        *,
        code: TaskCode | None,
        step: ProcessStep,
        owner: Identifier,
        requester: Identifier,
        request: bool = False,
        update: bool = False,
        task_id: str | None = None,
        **details: Any,  # noqa: ANN401 - passed on to sambus.contracts.fhir.task.task
    ) -> None:
        """Add ``owner``'s Task in the process; with ``request``, a ServiceRequest it is based on, too.

        The Task's id is ``owner``'s one Task id in the process (:func:`task_id_for`), or ``task_id`` when the
        event names the Task it answers. With ``update`` the message reports a later step of a Task asked for
        before, so it carries no ``authoredOn``; ``lastModified`` is always the event's time.

        The ServiceRequest is ``Task.basedOn`` only: ``Task.focus`` is kept for what the Task acts on (a Flag,
        a CarePlan), so the two never name the same resource.

        Raises:
            InvalidEventError: the event gives one agency two Tasks in one message.
        """
        task_id = task_id or task_id_for(self.process, owner)
        if any(existing["id"] == task_id for existing in self.focus):
            raise InvalidEventError("the event names the same agency twice; each agency has one Task")
        request_ref = None
        if request:
            if code is None:  # pragma: no cover - every request names what it asks
                raise InvalidEventError("a request needs a Task code")
            request_id = self.id_for("request", str(code), owner["system"], owner["value"])
            self.supporting.append(
                service_request(
                    request_id=request_id,
                    process_id=self.process,
                    code=code,
                    performer=owner,
                    requester=requester,
                    patient_ref=self.patient_ref,
                    authored_on=self.envelope.time,
                    due=details.get("due"),
                    reason=details.get("reason"),
                    security=self.security,
                )
            )
            request_ref = urn(request_id)
        self.focus.append(
            task(
                task_id=task_id,
                process_id=self.process,
                code=code,
                step=step,
                owner=owner,
                requester=requester,
                patient_ref=self.patient_ref,
                modified=self.envelope.time,
                authored_on=None if update else self.envelope.time,
                based_on=request_ref,
                focus=details.pop("focus", None),
                security=self.security,
                **details,
            )
        )

    def intent(self) -> Intent:
        """The finished message, validated by ``fhir.resources``."""
        patient = child_patient(
            identifier=self.child.identifier,
            birth_date=self.child.birth_date,
            gender=None if self.child.gender is None else str(self.child.gender),
            resource_id=self.patient_id,
            security=self.security,
            address=self.address,
            custody=self.custody,
        )
        bundle = message_bundle(
            message_id=self.message_id,
            event=self.event,
            source=self.source,
            focus=self.focus,
            supporting=[patient, *self.supporting],
            sender=self.sender,
        )
        return Intent(
            message_id=self.message_id,
            event=self.event,
            correlation_id=self.process,
            child_personnummer=self.child.key,
            bundle=bundle,
            security=header_labels(self.security),
        )


def staff_person(
    draft: Draft, agency: Identifier, person: StaffPerson | None, since: dt.date | None = None
) -> str | None:
    """Add a professional's ``PractitionerRole`` to the message: its ``fullUrl`` (``None``: no person).

    A user id is scoped by the agency: ``<agency identifier value>|<user id>``.
    """
    if person is None:
        return None
    identifier: Identifier | None = None
    if person.hsa_id is not None:
        identifier = {"system": HSA_ID_SYSTEM, "value": person.hsa_id}
    elif person.user_id is not None:
        identifier = {"system": STAFF_USER_ID_SYSTEM, "value": f"{agency['value']}|{person.user_id}"}
    role_id = draft.id_for("staff", agency["value"], str(person.role))
    draft.supporting.append(
        staff_role(
            resource_id=role_id,
            agency=agency,
            role=str(person.role),
            person=identifier,
            since=since,
            security=draft.security,
        )
    )
    return urn(role_id)


def sip_invitations(
    envelope: Envelope, child: Child, invite: tuple[Agency, ...], *, requester: Identifier, reason: SipReason
) -> list[Intent]:
    """A SIP initiative from any source: one invitation Task per invited agency, starting the process."""
    draft = Draft(envelope, child, EventCode.SIP_INITIATED)
    for invitee in invite:
        draft.add_task(
            code=TaskCode.SIP_PARTICIPATION,
            step=ProcessStep.SIP_INVITED,
            owner=agency_identifier(invitee),
            requester=requester,
            reason=coding(SIP_REASON_SYSTEM, str(reason)),
        )
    return [draft.intent()]


def concern_report(envelope: Envelope, event: Concern, *, requester: Identifier) -> list[Intent]:
    """A report of concern to social services of the child's municipality, kept in ``Patient.address``.

    The main category is ``Task.reasonCode``; every category is also a ``concern-category`` input, and the
    reporter (role, id; no name) a ``reporter`` input referring to a ``PractitionerRole``.
    """
    draft = Draft(envelope, event.child, EventCode.CONCERN_REPORTED)
    municipality = event.residence_municipality
    draft.address = {"district": municipality}
    inputs: list[dict[str, Any]] = [
        {
            "type": coding(TASK_SYSTEM, CONCERN_CATEGORY_INPUT),
            "valueCodeableConcept": coding(CONCERN_SYSTEM, str(category)),
        }
        for category in (event.category, *event.additional_categories)
    ]
    reporter = staff_person(draft, requester, event.reporter)
    if reporter is not None:
        inputs.append(
            {"type": coding(TASK_SYSTEM, REPORTER_INPUT), "valueReference": {"reference": reporter}}
        )
    draft.add_task(
        code=TaskCode.ASSESS_CONCERN,
        step=ProcessStep.CONCERN_REPORTED,
        owner=routing_address(f"{AgencyKind.SOCIAL_SERVICES}@{municipality}"),
        requester=requester,
        reason=coding(CONCERN_SYSTEM, str(event.category)),
        inputs=inputs,
    )
    return [draft.intent()]


def task_status_notice(
    envelope: Envelope,
    child: Child,
    *,
    process_id: str,
    task_id: str,
    status: TaskState,
    answer_to: Agency,
    answerer: Identifier,
) -> list[Intent]:
    """A reported Task state: the Task ``task_id`` the answering unit received, updated to that state.

    The answering system may not know what the Task asked, so the update carries no ``code``; the receiver
    knows the Task by its identifier. The router sends it to whoever the process state says gave
    ``answerer`` the Task ``task_id``; ``answer_to`` (the ``requester``) must be that party, or the answer
    is refused.
    """
    draft = Draft(envelope, child, EventCode.TASK_STATUS_CHANGED, process_id=process_id, sender=answerer)
    draft.add_task(
        code=None,
        step=TASK_STEP[status],
        owner=answerer,
        requester=agency_identifier(answer_to),
        status=str(status),
        update=True,
        task_id=task_id,
    )
    return [draft.intent()]


def kontaktcenter_referral(
    envelope: Envelope, child: Child, *, requester: Identifier, reason: SipReason, consent_id: str
) -> list[Intent]:
    """A referral to Kontaktcenter: a Task and its ServiceRequest, naming the guardians' consent."""
    draft = Draft(envelope, child, EventCode.KONTAKTCENTER_REFERRAL)
    draft.add_task(
        code=TaskCode.KONTAKTCENTER_REFERRAL,
        step=ProcessStep.REFERRED,
        owner=routing_address(AgencyKind.KONTAKTCENTER),
        requester=requester,
        request=True,
        reason=coding(SIP_REASON_SYSTEM, str(reason)),
        inputs=[consent_input(consent_id)],
    )
    return [draft.intent()]


def suicide_risk_alert(envelope: Envelope, event: SuicideRisk, *, requester: Identifier) -> list[Intent]:
    """Acute suicide risk: one urgent Task to social services where the child lives, one to BUP.

    Both Tasks are ``priority`` ``stat`` and due :data:`URGENT_RESPONSE_HOURS` hours after the event
    (``restriction.period.end``, a date and time). The assessment (if any) goes on BUP's Task: social
    services is alerted on the duty to report. The municipality travels only in the routing address, so
    the message carries no residence data; a named BUP unit is used as it is, else the BUP nearest the home.
    """
    draft = Draft(envelope, event.child, EventCode.SUICIDE_RISK_REPORTED)
    due = envelope.time + dt.timedelta(hours=URGENT_RESPONSE_HOURS)
    assessment = (
        []
        if event.secrecy_assessment is None
        else assessment_inputs(
            FhirSecrecyAssessment(
                provision=event.secrecy_assessment.provision,
                assessed_by=event.secrecy_assessment.assessed_by,
            )
        )
    )
    bup = (
        agency_identifier(event.bup)
        if event.bup is not None
        else routing_address(f"{AgencyKind.BUP}@{event.residence_municipality}")
    )
    social = routing_address(f"{AgencyKind.SOCIAL_SERVICES}@{event.residence_municipality}")
    for owner, inputs in ((social, []), (bup, assessment)):
        draft.add_task(
            code=TaskCode.ACT_ON_SUICIDE_RISK,
            step=ProcessStep.SUICIDE_RISK_REPORTED,
            owner=owner,
            requester=requester,
            priority="stat",
            due=due,
            inputs=inputs,
        )
    return [draft.intent()]
