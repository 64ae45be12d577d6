"""Resolution rules: which organisation each Task of a message reaches, and through whom.

The rules come from the regional agreements:

* a Task may name its owner by identifier (HSA-id, organisation number, school unit code) or by a routing
  address (:data:`sambus.contracts.fhir.ROUTING_ADDRESS_SYSTEM`, ``<kind>`` or ``<kind>@<kommunkod>``), which
  is
  resolved in the directory near the child (municipality, then county part, then county);
* a school without Cosmic Link takes part in SIP through a relay: social services of its municipality, or else
  a health care unit of its county; its own SIP initiative becomes one request to the relay to convene the
  SIP (:mod:`sambus.router.routing.convene`), naming the invitees and the school as participant;
* specialist care (BUP, habilitation) is invited to a SIP only with an active care contact stated by the
  care side: the unit itself stated one (``care-contact-stated``, kept by the process state), or a health
  care unit's invitation states one as a ``Task.input`` of type :data:`TASK_INPUT_SYSTEM` ``|``
  :data:`ACTIVE_CARE_CONTACT` with ``valueBoolean`` true (a school's or social services' claim is not
  enough);
* a 2017:209 health-examination request goes to health care *and* dental care of the child's region;
* a consultation (Västerbotten: social services' investigation consults the child's current care contacts
  for a combined assessment of its health) goes only to a unit that stated an active care contact with the
  child itself (``care-contact-stated``);
* a report of concern goes to social services of the municipality where the child lives;
* a newly arrived child's referral for the health examination (lag 2008:344) goes to primary care where the
  child lives, and, since the school does not know where an asylum-seeking child is registered (the child
  often is not), otherwise to primary care in the referring school's municipality;
* a hidden-residence decision (or its lift) goes to each care unit named and to the care provider
  (vårdgivare) the directory says runs it, which gets a Task of its own: guardians' e-access to the record
  is set per care provider;
* an answer (Task status changed, invitation answered, examination completed, information provided, a
  consultation answered) goes back to the organisation that asked the answering unit, as the process state
  recorded it (:class:`sambus.router.routing.asked.AskedTasks`); an answer that names someone else as the
  asker, or whose answering unit was asked nothing in the process, is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sambus.contracts.agencies import AgencyKind, CareGroup, health_care_kinds
from sambus.contracts.errors import ProcessNotKnownError, RoutingError
from sambus.contracts.fhir import ROUTING_ADDRESS_SYSTEM, EventCode, urn
from sambus.contracts.fhir.codes import ACTIVE_CARE_CONTACT, TASK_ID_SYSTEM, TASK_INPUT_SYSTEM
from sambus.contracts.fhir.task import task_id_for
from sambus.router.routing.asked import AskedRequests, AskedTasks, NoProcessState
from sambus.router.routing.care_contacts import CareContacts, NoCareContacts
from sambus.router.routing.directory import Capability, Recipient, RoutingDirectory
from sambus.router.routing.projection import TaskEntry

RELAYED_FOR_HEADER = "sambus-relayed-for"
"""Header on a relayed delivery: the id of the organisation the Task is for."""

HEALTH_CARE = "health_care"
"""Routing-address kind meaning any health care unit kind."""

HEALTH_CARE_KINDS = health_care_kinds(CareGroup.ROUTED_AS_HEALTH_CARE)
"""The unit kinds a routing address of any health care unit (:data:`HEALTH_CARE`) reaches."""
RELAY_HEALTH_KINDS = (AgencyKind.BU_HALSAN, AgencyKind.BVC, AgencyKind.PRIMARY_CARE, AgencyKind.YOUTH_CLINIC)
"""Health care unit kinds that relay SIP messages for a school without Cosmic Link, in order of preference."""
SPECIALIST_KINDS = frozenset({AgencyKind.BUP, AgencyKind.HABILITATION})
MUNICIPAL_KINDS = frozenset({AgencyKind.PRESCHOOL, AgencyKind.SCHOOL, AgencyKind.SOCIAL_SERVICES})
SIP_EVENTS = frozenset(
    {
        EventCode.SIP_INITIATED,
        EventCode.SIP_INVITATION_ANSWERED,
        EventCode.SIP_MEETING_SCHEDULED,
        EventCode.SIP_MEETING_HELD,
        EventCode.SIP_PLAN_ESTABLISHED,
        EventCode.SIP_LEAD_COORDINATOR_CHANGED,
        EventCode.SIP_FOLLOWED_UP,
        EventCode.SIP_CLOSED,
    }
)
ANSWER_EVENTS = frozenset(
    {
        EventCode.TASK_STATUS_CHANGED,
        EventCode.SIP_INVITATION_ANSWERED,
        EventCode.HEALTH_EXAM_COMPLETED,
        EventCode.LVU32_EXAM_COMPLETED,
        EventCode.INVESTIGATION_INFO_PROVIDED,
        EventCode.CONSULTATION_ANSWERED,
    }
)
"""Answers from recipients (Task status, statements): the Task's owner is the answering unit; the message goes
back to the organisation that asked it (from the process state), named as the Task's requester."""
GUARDIAN_ACCESS_EVENTS = frozenset({EventCode.HIDDEN_RESIDENCE_DECIDED, EventCode.HIDDEN_RESIDENCE_LIFTED})
"""Messages that tell care units to block (or resume) the guardians' record access: their care providers
(vårdgivare) are told too."""
_KOMMUNKOD_LENGTH = 4


@dataclass(frozen=True)
class Route:
    """Where one Task goes.

    Attributes:
        task: the Task.
        recipient: the organisation the Task is for (consent is decided for it).
        via: the organisation that receives the delivery: ``recipient`` itself, or a relay.
        rule: the id of the routing rule that chose this route.
        refused: why a routing rule forbids the delivery, or ``None``.
        answer: the message answers a Task and goes to its requester.
    """

    task: TaskEntry
    recipient: Recipient
    via: Recipient
    rule: str
    refused: str | None = None
    answer: bool = False
    """An answer goes back to the Task's requester; the Task keeps its owner (the one who answers)."""
    request: tuple[EventCode, str | None] | None = None
    """For an answer: the event that started its process and the provision assessed for it, if known."""
    convene: tuple[Recipient, ...] = ()
    """For a school without Cosmic Link: the invitees the relay (``recipient``) is asked to convene."""

    @property
    def relayed(self) -> bool:
        """Whether another organisation carries the Task to its recipient."""
        return self.via.id != self.recipient.id


@dataclass
class Routing:
    """The routes of a message's Tasks, and why the others have none."""

    routes: list[Route]
    unroutable: list[RoutingError] = field(default_factory=list)


_ANSWER_CODES = frozenset(str(e) for e in ANSWER_EVENTS)
"""The event codes of :data:`ANSWER_EVENTS` as a header names them."""


def child_municipality(bundle: Mapping[str, Any]) -> str | None:
    """The kommunkod in the child's ``Patient.address.district``, if the message has one."""
    for entry in bundle.get("entry", ()):
        resource = entry.get("resource", {}) if isinstance(entry, dict) else {}
        if resource.get("resourceType") != "Patient":
            continue
        for address in resource.get("address", ()):
            district = address.get("district") if isinstance(address, dict) else None
            if isinstance(district, str) and len(district) == _KOMMUNKOD_LENGTH and district.isdigit():
                return district
    return None


def has_active_care_contact(task: Mapping[str, Any]) -> bool:
    """Whether a Task states an active care contact (``Task.input`` active-care-contact = true)."""
    for item in task.get("input", ()):
        codings = item.get("type", {}).get("coding", ()) if isinstance(item, dict) else ()
        if any(
            c.get("system") == TASK_INPUT_SYSTEM and c.get("code") == ACTIVE_CARE_CONTACT for c in codings
        ):
            return item.get("valueBoolean") is True
    return False


def answered_task_id(task: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The id of the Task an answer reports on, and whether the answer names it explicitly.

    An answer is the answering unit's Task, updated: its own ``identifier`` (:data:`TASK_ID_SYSTEM`) names
    it (not explicitly: a unit's Task id derived from its own identifier may differ from the id of a Task
    it received by routing address or through a relay). A ``Task.output.valueReference`` to a Task (how
    answers named it before) names it explicitly.
    """
    for item in task.get("output", ()):
        reference = item.get("valueReference", {}) if isinstance(item, dict) else {}
        value = reference.get("identifier", {}).get("value") if reference.get("type") == "Task" else None
        if isinstance(value, str) and value:
            return value, True
    for identifier in task.get("identifier", ()):
        value = identifier.get("value") if isinstance(identifier, dict) else None
        if identifier.get("system") == TASK_ID_SYSTEM and isinstance(value, str) and value:
            return value, False
    return None, False


class RoutingRules:
    """Resolves each Task of a message to a :class:`Route` by the directory and the agreements' rules."""

    def __init__(
        self,
        directory: RoutingDirectory,
        *,
        asked: AskedTasks | None = None,
        care_contacts: CareContacts | None = None,
    ) -> None:
        """Resolve in ``directory``; answers go to whom ``asked`` says asked (none route without it).

        Specialist care is invited to a SIP when ``care_contacts`` says it stated an active care contact.
        """
        self._directory = directory
        self._asked: AskedTasks = asked or NoProcessState()
        self._care_contacts: CareContacts = care_contacts or NoCareContacts()

    @property
    def directory(self) -> RoutingDirectory:
        """The directory routes are resolved in."""
        return self._directory

    def route(
        self,
        event: EventCode,
        bundle: Mapping[str, Any],
        tasks: Sequence[TaskEntry],
        *,
        child: str | None = None,
    ) -> Routing:
        """A route per Task, in order, and the Tasks that could not be resolved.

        ``child`` (the pseudonym) lets the care contacts units stated count for a SIP invitation.

        Raises:
            RoutingError: the message breaks a rule that concerns all its Tasks: a 2017:209 request not
                reaching both health and dental care of the child's region, or a report of concern without
                the child's municipality.
            ProcessNotKnownError: an answer's process or Task is not in the process state yet (retriable).
        """
        home = child_municipality(bundle)
        if event is EventCode.NEWLY_ARRIVED_HEALTH_REFERRAL and home is None:
            home = self._requester_municipality(tasks)
        if event is EventCode.CONCERN_REPORTED:
            return Routing(self._concern(tasks, home))
        if event is EventCode.SIP_INITIATED and (school := self._school_without_cosmic_link(tasks)):
            return self._convene(event, tasks, home, child, school)
        if event is EventCode.HEALTH_EXAM_REQUESTED:
            routes = [self._route_one(event, task, home, child) for task in tasks]
            self._check_health_exam(routes, home)
            return Routing(routes)
        result = Routing([])
        for task in tasks:
            try:
                result.routes.append(self._route_one(event, task, home, child))
            except RoutingError as exc:
                if exc.retriable:
                    raise
                result.unroutable.append(exc)
        if event in GUARDIAN_ACCESS_EVENTS:
            result.routes.extend(self._care_providers(result.routes))
        return result

    def _requester_municipality(self, tasks: Sequence[TaskEntry]) -> str | None:
        """The municipality of the organisation that sent the Tasks, if the directory places it in one."""
        requester = tasks[0].resource.get("requester", {}).get("identifier", {}) if tasks else {}
        if not requester.get("system") or not requester.get("value"):
            return None
        try:
            return self.resolve(str(requester["system"]), str(requester["value"])).municipality
        except RoutingError:
            return None

    def _care_providers(self, routes: Sequence[Route]) -> list[Route]:
        """The care provider (vårdgivare) of each unit told to block or resume the guardians' access.

        Guardians' e-access to the record is set per care provider: each care provider of the units named
        gets a Task of its own (the unit's Task, owned by the care provider, with its own id in the
        process), once, unless it was named itself.
        """
        named = {route.recipient.id for route in routes}
        added: list[Route] = []
        for route in routes:
            provider = self._directory.care_provider_of(route.recipient)
            if provider is None or provider.id in named:
                continue
            named.add(provider.id)
            first = provider.identifiers[0]
            owner = {"system": first.system, "value": first.value}
            resource = dict(route.task.resource)
            process_id = resource.get("groupIdentifier", {}).get("value")
            if not isinstance(process_id, str):
                continue
            resource["id"] = task_id_for(process_id, owner)
            resource["identifier"] = [{"system": TASK_ID_SYSTEM, "value": resource["id"]}]
            resource["owner"] = {**resource.get("owner", {}), "identifier": owner}
            task = TaskEntry(urn(resource["id"]), resource, first.system, first.value)
            added.append(Route(task, provider, provider, rule="care-provider-of-unit"))
        return added

    def resolve(
        self, system: str, value: str, *, home: str | None = None, capability: Capability | None = None
    ) -> Recipient:
        """The organisation an identifier or routing address names.

        Raises:
            RoutingError: nothing or more than one organisation fits.
        """
        if system != ROUTING_ADDRESS_SYSTEM:
            return self._directory.by_identifier(system, value)
        kind, _, place = value.partition("@")
        kinds = self._kinds(kind)
        municipality = place or home
        candidates = [
            r
            for r in self._directory.recipients
            if r.kind in kinds and (capability is None or r.has(capability))
        ]
        if municipality is None:
            if len(candidates) == 1:
                return candidates[0]
            raise RoutingError(
                f"several organisations of kind {kind} fit and the event names no municipality to choose "
                "among them: name the unit itself (hsaId, organisationNumber or schoolUnitCode)"
            )
        return self._nearest(candidates, municipality)

    def initiator(self, bundle: Mapping[str, Any]) -> Recipient | None:
        """The organisation that sent a message, if in the directory (for notices about its delivery).

        The first focal Task's ``requester``; for an answer (by the header's event code) its ``owner``.
        """
        header = bundle.get("entry", [{}])[0].get("resource", {}) if bundle.get("entry") else {}
        code = header.get("eventCoding", {}).get("code")
        answer = code in _ANSWER_CODES
        return self._task_party(bundle, "owner" if answer else "requester")

    def sender(self, bundle: Mapping[str, Any], event: EventCode) -> Recipient | None:
        """The organisation that sent a message, if it is in the directory.

        A request is sent by its Tasks' ``requester``; an answer (:data:`ANSWER_EVENTS`) by the Task's
        ``owner``, who answers. Secrecy rules are written per kind of sender, so an unknown sender gets
        only the rules that name no sender.
        """
        return self._task_party(bundle, "owner" if event in ANSWER_EVENTS else "requester")

    def _task_party(self, bundle: Mapping[str, Any], party: str) -> Recipient | None:
        for entry in bundle.get("entry", ())[1:]:
            resource = entry.get("resource", {}) if isinstance(entry, dict) else {}
            identifier = resource.get(party, {}).get("identifier", {})
            if (
                resource.get("resourceType") == "Task"
                and identifier.get("system")
                and identifier.get("value")
            ):
                try:
                    return self.resolve(str(identifier["system"]), str(identifier["value"]))
                except RoutingError:
                    return None
        return None

    def _kinds(self, kind: str) -> frozenset[AgencyKind]:
        if kind == HEALTH_CARE:
            return HEALTH_CARE_KINDS
        try:
            return frozenset({AgencyKind(kind)})
        except ValueError as exc:
            raise RoutingError("the routing address names an agency kind sambus does not know") from exc

    def _nearest(self, candidates: Iterable[Recipient], municipality: str) -> Recipient:
        """The one candidate in the municipality, else in its county part, else in its county."""
        part = self._directory.county_part_of(municipality)
        in_county = [r for r in candidates if r.county == municipality[:2]]
        for tier in (
            [r for r in in_county if r.municipality == municipality],
            [r for r in in_county if part is not None and r.county_part == part],
            in_county,
        ):
            if len(tier) == 1:
                return tier[0]
            if len(tier) > 1:
                names = ", ".join(sorted(r.id for r in tier))
                raise RoutingError(f"the routing address fits several organisations: {names}")
        raise RoutingError(
            "no organisation in the routing directory fits the routing address in its municipality"
        )

    def _route_one(self, event: EventCode, task: TaskEntry, home: str | None, child: str | None) -> Route:
        if event in ANSWER_EVENTS:
            return self._answer(event, task, home)
        capability = Capability.PLACED_CHILD_HEALTH_EXAM if event is EventCode.HEALTH_EXAM_REQUESTED else None
        if task.owner_system == ROUTING_ADDRESS_SYSTEM and task.owner_value.startswith("dental"):
            capability = None
        recipient = self.resolve(task.owner_system, task.owner_value, home=home, capability=capability)
        if event is EventCode.SIP_INITIATED and recipient.kind in SPECIALIST_KINDS:
            if not self._care_contact_stated(task, recipient, child=child, home=home):
                return Route(
                    task,
                    recipient,
                    recipient,
                    rule="specialist-needs-care-contact",
                    refused=f"specialist care ({recipient.kind}) is invited to a SIP only with an active "
                    "care contact stated by the care side, and neither the unit nor a health care "
                    "inviter has stated one",
                )
            return Route(task, recipient, recipient, rule="specialist-with-care-contact")
        if event is EventCode.CONSULTATION_REQUESTED:
            if child is None or not self._care_contacts.active(child, recipient.id):
                return Route(
                    task,
                    recipient,
                    recipient,
                    rule="consultation-needs-care-contact",
                    refused="a consultation is held with the child's current care contacts, and "
                    f"{recipient.id} has stated no active care contact with the child",
                )
            return Route(task, recipient, recipient, rule="consultation-with-care-contact")
        via = self._via(event, recipient)
        return Route(
            task,
            recipient,
            via,
            rule="direct" if via is recipient or via == recipient else "school-relay-without-cosmic-link",
        )

    def _school_without_cosmic_link(self, tasks: Sequence[TaskEntry]) -> Recipient | None:
        """The initiating school (or preschool), when it has no Cosmic Link of its own."""
        requester = tasks[0].resource.get("requester", {}).get("identifier", {}) if tasks else {}
        if not requester.get("system") or not requester.get("value"):
            return None
        try:
            initiator = self.resolve(str(requester["system"]), str(requester["value"]))
        except RoutingError:
            return None
        schools = {AgencyKind.SCHOOL, AgencyKind.PRESCHOOL}
        if initiator.kind in schools and not initiator.takes_sip_itself:
            return initiator
        return None

    def _convene(
        self,
        event: EventCode,
        tasks: Sequence[TaskEntry],
        home: str | None,
        child: str | None,
        school: Recipient,
    ) -> Routing:
        """One request to the school's relay to convene the SIP, naming the invitees it may invite.

        A specialist without a stated care contact stays refused (the school is told); so does an invitee
        that cannot be resolved.
        """
        result = Routing([])
        invitees: list[Recipient] = []
        for task in tasks:
            try:
                route = self._route_one(event, task, home, child)
            except RoutingError as exc:
                if exc.retriable:
                    raise
                result.unroutable.append(exc)
                continue
            if route.refused is not None:
                result.routes.append(route)
            else:
                invitees.append(route.recipient)
        if invitees:
            relay = self._relay_for(school)
            result.routes.append(
                Route(
                    tasks[0],
                    relay,
                    relay,
                    rule="school-without-cosmic-link-convenes-through-relay",
                    convene=tuple(invitees),
                )
            )
        return result

    def _care_contact_stated(
        self, task: TaskEntry, unit: Recipient, *, child: str | None, home: str | None
    ) -> bool:
        """The unit stated an active care contact with the child, or a health care inviter's Task did."""
        if child is not None and self._care_contacts.active(child, unit.id):
            return True
        if not has_active_care_contact(task.resource):
            return False
        requester = task.resource.get("requester", {}).get("identifier", {})
        if not requester.get("system") or not requester.get("value"):
            return False
        try:
            inviter = self.resolve(str(requester["system"]), str(requester["value"]), home=home)
        except RoutingError:
            return False
        return inviter.kind in HEALTH_CARE_KINDS

    def _answer(self, event: EventCode, task: TaskEntry, home: str | None) -> Route:
        """An answer goes to whoever asked the answering unit (the Task's owner) in the process."""
        answerer = self.resolve(task.owner_system, task.owner_value, home=home)
        process_id = task.resource.get("groupIdentifier", {}).get("value")
        if not isinstance(process_id, str) or not process_id:
            raise RoutingError(f"an answer ({event}) must name its process in Task.groupIdentifier")
        task_id, explicit = answered_task_id(task.resource)
        askers = self._asked.askers(process_id, answerer=answerer.id, task_id=task_id)
        if askers is None and task_id is not None and not explicit:
            # The process state may know the unit's Task under another id (a relay's convene Task): then
            # the answer goes to whoever asked the unit in the process, as an answer naming no Task does.
            task_id = None
            askers = self._asked.askers(process_id, answerer=answerer.id, task_id=None)
        if askers is None:
            what = f"Task {task_id} of process" if task_id else "process"
            raise ProcessNotKnownError(
                f"an answer ({event}) from {answerer.id}: {what} {process_id} is not known"
            )
        if len(askers) != 1:
            raise RoutingError(
                f"an answer ({event}) from {answerer.id}: it was asked "
                + ("nothing" if not askers else f"by several ({', '.join(sorted(askers))})")
                + f" in process {process_id}, so the answer has no one party to go back to"
            )
        asker = self._directory.by_id(next(iter(askers)))
        named = task.resource.get("requester", {}).get("identifier", {})
        if named.get("system") and named.get("value"):
            claimed = self.resolve(str(named["system"]), str(named["value"]), home=home)
            if claimed.id != asker.id:
                raise RoutingError(
                    f"an answer ({event}) from {answerer.id} names {claimed.id} as the party that asked, "
                    f"but {asker.id} asked in process {process_id}"
                )
        request = self._asked.request_of(process_id) if isinstance(self._asked, AskedRequests) else None
        return Route(
            task, asker, self._via(event, asker), rule="answer-to-requester", answer=True, request=request
        )

    def _via(self, event: EventCode, recipient: Recipient) -> Recipient:
        """Who carries a message to ``recipient``: a relay for SIP messages to schools without Cosmic Link."""
        if (
            event in SIP_EVENTS
            and recipient.kind in {AgencyKind.SCHOOL, AgencyKind.PRESCHOOL}
            and not recipient.takes_sip_itself
        ):
            return self._relay_for(recipient)
        return recipient

    def _relay_for(self, school: Recipient) -> Recipient:
        """Social services of the school's municipality, else the nearest first-line health unit."""
        if school.municipality is None:
            raise RoutingError(f"school {school.id} has no municipality, so no relay can be chosen for SIP")
        social = [
            r
            for r in self._directory.recipients
            if r.kind is AgencyKind.SOCIAL_SERVICES and r.municipality == school.municipality
        ]
        if len(social) == 1:
            return social[0]
        for kind in RELAY_HEALTH_KINDS:
            health = [
                r
                for r in self._directory.recipients
                if r.kind is kind and r.has(Capability.COSMIC_LINK) and r.county == school.county
            ]
            if health:
                return self._nearest(health, school.municipality)
        raise RoutingError(f"no social services or health care unit can relay SIP messages for {school.id}")

    def _concern(self, tasks: Sequence[TaskEntry], home: str | None) -> list[Route]:
        if home is None:
            raise RoutingError(
                "a report of concern goes to social services where the child lives, "
                "and the event names no residenceMunicipality"
            )
        if len(tasks) != 1:
            raise RoutingError(f"a report of concern must have exactly one focal Task, not {len(tasks)}")
        social = self.resolve(ROUTING_ADDRESS_SYSTEM, f"{AgencyKind.SOCIAL_SERVICES}@{home}")
        return [Route(tasks[0], social, social, rule="concern-to-home-municipality")]

    def _check_health_exam(self, routes: Sequence[Route], home: str | None) -> None:
        kinds = {r.recipient.kind for r in routes}
        if not (kinds & HEALTH_CARE_KINDS and AgencyKind.DENTAL in kinds):
            raise RoutingError("a 2017:209 health-examination request must go to health care and dental care")
        counties = {r.recipient.county for r in routes}
        expected = {home[:2]} if home else counties
        if len(counties) != 1 or counties != expected:
            raise RoutingError(
                "a 2017:209 health-examination request must go to health care and dental care of the "
                "child's region"
            )
