"""Kinds of agencies and the purposes information is shared for."""

from __future__ import annotations

from enum import StrEnum


class AgencyKind(StrEnum):
    """What kind of agency (or unit) a party is; consent and routing rules are written in these terms."""

    PRESCHOOL = "preschool"
    SCHOOL = "school"
    SOCIAL_SERVICES = "social_services"
    BVC = "bvc"
    """Barnavårdscentral: child health care for 0-6 year olds."""
    BU_HALSAN = "bu_halsan"
    """BU-hälsan: first-line health care for children and young people."""
    YOUTH_CLINIC = "youth_clinic"
    """Ungdomsmottagning."""
    PRIMARY_CARE = "primary_care"
    """Vårdcentral / hälsocentral."""
    BUP = "bup"
    """Barn- och ungdomspsykiatri: child and adolescent psychiatry (specialist care)."""
    HABILITATION = "habilitation"
    DENTAL = "dental"
    KONTAKTCENTER = "kontaktcenter"
    """Västerbotten's single entry point for children's and young people's mental health."""
    CARE_PROVIDER = "care_provider"
    """Vårdgivare: the region or company that runs care units (HSL 2 kap.). Guardians' e-access to the
    record is set per care provider, not per unit, so a guardian-access block goes to it as well; a
    recipient only of those blocks."""
    ADULT_PSYCHIATRY = "adult_psychiatry"
    """Vuxenpsykiatri: adult psychiatry, which takes over from BUP at 18."""
    ADULT_SOCIAL_SERVICES = "adult_social_services"
    """Socialtjänstens vuxenenhet: the municipality's social services for adults (vuxenenhet)."""
    ADULT_HABILITATION = "adult_habilitation"
    """Vuxenhabilitering: habilitation for adults, which takes over from child and youth habilitation."""
    HLT_TEAM = "hlt_team"
    """Västerbotten's HLT team (Hälsa, Lärande, Trygghet): key persons from preschool, school, social services
    and primary care who meet regularly; the HLT meeting is the usual route to coordinated support. A
    recipient only: it is invited (e.g. to a SIP) and told, on the child's or the guardians' consent."""


class Purpose(StrEnum):
    """What a guardian's consent covers."""

    SIP = "sip"
    KONTAKTCENTER_REFERRAL = "kontaktcenter_referral"
    INFORMATION_SHARING = "information_sharing"


class CareGroup(StrEnum):
    """A group of health care kinds that a rule of sambus names (see :data:`HEALTH_CARE_TABLE`)."""

    ROUTED_AS_HEALTH_CARE = "routed_as_health_care"
    """Answers a routing address of any health care unit (``health_care``): the children's health care units.
    Dental care is addressed by name (its own Task, its own consent), adult care only by a hand-over."""
    KEEPS_PATIENT_RECORD = "keeps_patient_record"
    """A care unit keeping a patient record that guardians may read through e-access: a guardian-access block
    closes it, and the directory names its care provider. Kontaktcenter refers on and the care provider is
    the body behind the units, so neither is one."""


HEALTH_CARE_TABLE: dict[AgencyKind, frozenset[CareGroup]] = {
    AgencyKind.BVC: frozenset(CareGroup),
    AgencyKind.BU_HALSAN: frozenset(CareGroup),
    AgencyKind.YOUTH_CLINIC: frozenset(CareGroup),
    AgencyKind.PRIMARY_CARE: frozenset(CareGroup),
    AgencyKind.BUP: frozenset(CareGroup),
    AgencyKind.HABILITATION: frozenset(CareGroup),
    AgencyKind.DENTAL: frozenset({CareGroup.KEEPS_PATIENT_RECORD}),
    AgencyKind.ADULT_PSYCHIATRY: frozenset({CareGroup.KEEPS_PATIENT_RECORD}),
    AgencyKind.ADULT_HABILITATION: frozenset({CareGroup.KEEPS_PATIENT_RECORD}),
    AgencyKind.KONTAKTCENTER: frozenset(),
    AgencyKind.CARE_PROVIDER: frozenset(),
}
"""Every kind of agency under health care secrecy (OSL 25:1), with the groups it belongs to.

A new health care kind is added here once; the lists the directory, routing and consent rules use are
derived from this table with :func:`health_care_kinds`.
"""


def health_care_kinds(group: CareGroup | None = None) -> frozenset[AgencyKind]:
    """The health care kinds in ``group``, or all of them (everything under OSL 25:1) without one."""
    return frozenset(kind for kind, groups in HEALTH_CARE_TABLE.items() if group is None or group in groups)
