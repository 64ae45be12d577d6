"""Shared steps for end-to-end process walks on the real broker: present-time events, who got what.

A walk sends each agency event as its system would (the event's ``time`` is now, so no deadline falls due
while the walk reads: a fixed past date would make reminders race the reads) and after each step asserts the
deliveries of the whole walk so far, on every delivery topic of the directory: who received which message,
and that nobody else received anything.

Which test walks which process of each agreement (DOMAIN.md "Processes"; the seeds), file::test:

Västmanland (``directory.yaml``):

- SIP, social services initiates, to closure:
  ``test_walks_vastmanland.py::test_vastmanland_sip_from_initiative_to_closure``
- SIP, health care initiates, social services answers: ``test_answers_end_to_end.py::
  test_social_services_answer_to_a_care_sip_goes_to_the_inviting_unit``
- SIP, a school without Cosmic Link convenes through social services: ``test_school_convenes_end_to_end.py::
  test_a_school_without_cosmic_link_convenes_its_sip_through_social_services``
- SIP, lead coordinator named and changed: ``test_lead_coordinator_end_to_end.py::
  test_the_lead_coordinator_is_named_in_the_plan_and_its_change_reaches_every_participant``
- Specialist care invited only with a stated care contact: ``test_answers_end_to_end.py::
  test_bup_is_invited_to_a_school_sip_only_once_it_stated_a_care_contact``
- Placement, started, changed, ended, each unit's status back to the placing board:
  ``test_walks_vastmanland.py::test_vastmanland_placement_from_start_to_end``
  (the placement notice answer alone: ``test_answers_end_to_end.py::
  test_a_placement_notice_status_goes_back_to_the_placing_social_services``; to a school named by its unit
  code: ``…::test_a_school_named_by_its_unit_code_gets_the_placement_and_its_answer_goes_back``; LVU
  placement on its provision: ``test_statutory_end_to_end.py::
  test_an_lvu_placement_reaches_health_and_dental_care_on_its_provision``)
- Acute LVU placement on a professional's assessment, each unit's status back, and the joint planning
  within two weeks (a SIP for the child):
  ``test_walks_vastmanland.py::test_vastmanland_acute_placement_to_its_joint_planning``
- Hidden residence, decided, acknowledged, lifted: ``test_hidden_residence_end_to_end.py::
  test_the_guardian_facing_school_never_sees_the_hidden_residence``,
  ``test_guardian_access_ack_end_to_end.py::
  test_a_unit_that_does_not_acknowledge_the_block_is_reminded_then_escalated``,
  ``test_hidden_residence_answer_end_to_end.py`` (three tests); LVU review reminders:
  ``test_lvu_review_end_to_end.py::test_the_placing_board_is_reminded_every_three_months_until_the_placement_ends``
- Protected identity: ``test_protected_identity_end_to_end.py`` (five tests)
- 2017:209 examination, both statements back to social services: ``test_answers_end_to_end.py::
  test_2017_209_statements_reach_social_services_and_nobody_else``; a child of Västerås placed in Umeå,
  examined by Region Västerbotten: ``test_cross_county_end_to_end.py::
  test_a_child_placed_in_vasterbotten_is_examined_there_and_the_statements_go_to_vasteras``
- LVU § 32 examination: ``test_answers_end_to_end.py::
  test_lvu32_result_reaches_the_ordering_board_and_nobody_else``
- Information to a social-services investigation: ``test_answers_end_to_end.py::
  test_investigation_records_reach_the_asking_social_services_and_nobody_else``
- Report of concern: ``test_concern_end_to_end.py::
  test_a_report_of_concern_carries_its_categories_and_reporter_to_the_home_municipality_only``
- Suicide risk (urgent): ``test_suicide_risk_end_to_end.py`` (two tests); suicide-risk assessment asked of BUP
  before a placement, and BUP's answer: ``test_walks_vastmanland.py::
  test_vastmanland_suicide_risk_assessment_before_a_placement``
- Newly arrived child known by an LMA number (no personnummer), referred by student health for the health
  examination (lag 2008:344), accepted and completed by the health centre, each answer to the school:
  ``test_walks_vastmanland.py::test_vastmanland_newly_arrived_child_referred_by_student_health``; such a
  child placed and examined under 2017:209: ``test_child_without_personnummer_end_to_end.py``
- Hand-over to adult care before 18, called by social services, each invited unit's answer back to it:
  ``test_walks_vastmanland.py::test_vastmanland_handover_to_adult_care`` (a meeting on or after the 18th
  birthday refused: ``test_handover_to_adult_care_end_to_end.py``; the meeting closes the adulthood
  reminder: ``tests/unit/test_routing_processes.py``)
- Follow-up statistics: ``test_stats_from_processes.py`` (two tests)

Västerbotten (``directory-vasterbotten.yaml``, ``SAMBUS_COUNTY=vasterbotten``):

- SIP, a school initiates itself (no relay), to closure:
  ``test_walks_vasterbotten.py::test_vasterbotten_school_sip_from_initiative_to_closure``
  (to the first answers: ``test_vasterbotten_end_to_end.py::
  test_a_school_sip_in_vasterbotten_from_initiative_to_every_answer``)
- HLT team meeting: ``test_vasterbotten_end_to_end.py::
  test_a_school_brings_a_child_to_the_hlt_meeting_and_social_services_in_vasterbotten``
- Kontaktcenter referral and its answer: ``test_vasterbotten_end_to_end.py::
  test_a_kontaktcenter_referral_and_its_answer_in_vasterbotten``
- 2017:209 examination: ``test_walks_vasterbotten.py::test_vasterbotten_2017_209_examination``
- Report of concern to the home municipality, and its answer: ``test_walks_vasterbotten.py::
  test_vasterbotten_report_of_concern``
- Placement in another municipality of the county, the unit's status back, the end:
  ``test_walks_vasterbotten.py::test_vasterbotten_placement_from_start_to_end``
- Suicide risk (urgent) to social services and BUP, both answers: ``test_walks_vasterbotten.py::
  test_vasterbotten_suicide_risk_from_alert_to_both_answers``
- Information to a social-services investigation (combined assessment of the child's health):
  ``test_walks_vasterbotten.py::test_vasterbotten_information_to_a_social_services_investigation``
- Consultation of the child's current care contacts (only a unit that stated an active care contact) and
  the combined assessment back to social services: ``test_walks_vasterbotten.py::
  test_vasterbotten_consultation_of_the_childs_current_care_contacts``
- Newly arrived child known by an LMA number, referred by student health for the health examination
  (lag 2008:344), accepted and completed by the health centre, each answer to the school:
  ``test_walks_vasterbotten.py::test_vasterbotten_newly_arrived_child_referred_by_student_health``
- Hand-over to adult care before 18, called by social services, each invited unit's answer back to it:
  ``test_walks_vasterbotten.py::test_vasterbotten_handover_to_adult_care``
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import CHILD, Deliveries, no_dead_letters, task_of

Who = tuple[str, str]
"""(recipient id, event code) of a delivery."""


Child = str | dict[str, Any]
"""A child as an event names it: a personnummer (``civicNo``), or the whole ``child`` object (an LMA number
or reservnummer with its birth date)."""


def now_event(kind: str, name: str, event_id: str, data: dict[str, Any], *, child: Child = CHILD) -> bytes:
    """An agency event as the bytes its system would send, happening now."""
    return json.dumps(
        {
            "type": f"se.sambus.{kind}.{name}.v1",
            "id": event_id,
            "source": f"{kind}-test",
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "data": {"child": child if isinstance(child, dict) else {"civicNo": child}, **data},
        }
    ).encode()


class Walk:
    """One process walked step by step; each step's deliveries are asserted with all earlier ones."""

    def __init__(self, running: Running, *, child: Child = CHILD) -> None:
        """Walk on ``running``'s topics for ``child``."""
        self._running = running
        self._child = child
        self._deliveries = Deliveries(running)
        self._expected: Counter[Who] = Counter()
        self._last: list[tuple[str, str, dict[str, Any]]] = []

    @property
    def running(self) -> Running:
        """The sambus the walk runs on."""
        return self._running

    async def send(self, topic_kind: str, name: str, event_id: str, data: dict[str, Any]) -> None:
        """Send an event of ``name`` on the agency topic of ``topic_kind`` (``se.sambus.<kind>.<name>``).

        SIP lifecycle events (``sip.*``) come from the SIP system: pass ``topic_kind="sip:social"`` etc. to
        name the topic they are sent on.
        """
        kind, _, topic = topic_kind.partition(":")
        await self._running.send(
            self._running.topics.agency_events(topic or kind),
            now_event(kind, name, event_id, data, child=self._child),
        )

    async def expect(self, new: dict[Who, int]) -> list[tuple[str, str, dict[str, Any]]]:
        """Assert that these deliveries came on top of the earlier steps' ones, and nothing else.

        Returns every delivery of the walk so far: (recipient, event code, message).
        """
        self._expected.update(new)
        total = sum(self._expected.values())
        self._last = await self._deliveries.all(total)
        got = Counter((recipient, code) for recipient, code, _ in self._last)
        assert got == self._expected, f"deliveries {dict(got)}, expected {dict(self._expected)}"
        return self._last

    def messages(self, recipient: str, code: str) -> list[dict[str, Any]]:
        """The messages of ``code`` that ``recipient`` received, as of the last :meth:`expect`."""
        return [m for r, c, m in self._last if (r, c) == (recipient, code)]

    def message(self, recipient: str, code: str) -> dict[str, Any]:
        """The one message of ``code`` that ``recipient`` received, as of the last :meth:`expect`."""
        [found] = self.messages(recipient, code)
        return found

    def task(self, recipient: str, code: str) -> dict[str, Any]:
        """The Task of the one message of ``code`` that ``recipient`` received."""
        return task_of(self.message(recipient, code))

    async def no_dead_letters(self) -> None:
        """Nothing was dead-lettered during the walk."""
        await no_dead_letters(self._running)


def process_of(task: dict[str, Any]) -> str:
    """The process id a delivered Task carries."""
    return str(task["groupIdentifier"]["value"])
