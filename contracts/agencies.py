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
