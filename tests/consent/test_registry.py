"""The consent registry fed with facts: consents, custody, the 18-year rule and protection decisions."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from sambus.consent import ConsentRegistry, Protection
from sambus.consent.county import VASTERBOTTEN, VASTMANLAND, CountyPolicy, age_on
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.errors import ConfigError, InvalidEventError
from sambus.contracts.registry_facts import (
    ConsentGiven,
    ConsentWithdrawn,
    Custody,
    CustodyUpdated,
    GivenBy,
    HiddenResidenceDecided,
    HiddenResidenceLifted,
)
from sambus.router.service.schema import upgrade

from .conftest import person_number

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
CHILD = person_number(dt.date(2012, 3, 15))
MOTHER = person_number(dt.date(1980, 1, 2), 1)
FATHER = person_number(dt.date(1979, 5, 6), 2)
KINDS = frozenset({AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN})


def _given(
    *,
    consent_id="c-1",
    child=CHILD,
    by=GivenBy.GUARDIAN,
    guardians=(MOTHER, FATHER),
    valid_from=T0,
    valid_to=None,
) -> ConsentGiven:
    return ConsentGiven(
        consent_id=consent_id,
        child=child,
        purpose=Purpose.SIP,
        agency_kinds=KINDS,
        given_by=by,
        guardians=guardians if by is GivenBy.GUARDIAN else (),
        valid_from=valid_from,
        valid_to=valid_to,
        recorded_at=valid_from,
    )


def _custody(child=CHILD, *guardians: str, form=Custody.JOINT) -> CustodyUpdated:
    """Who has custody (by default both parents, jointly), recorded before any consent."""
    return CustodyUpdated(child=child, guardians=guardians or (MOTHER, FATHER), custody=form, at=T0 - DAY)


def _answer(registry, pseudonymizer, *, child=CHILD, at=T0 + DAY, kind=AgencyKind.SOCIAL_SERVICES):
    return registry.consent_in_force(
        child=pseudonymizer.of(child), purpose=Purpose.SIP, agency_kind=kind, at=at
    )


def test_a_consent_fact_is_recorded_under_the_pseudonym(registry, pseudonymizer):
    registry.apply([_custody(), _given()])

    assert _answer(registry, pseudonymizer).consent_id == "c-1"


def test_the_registry_never_stores_a_personnummer(registry, engine):
    registry.apply(
        [
            CustodyUpdated(child=CHILD, guardians=(MOTHER, FATHER), custody=Custody.JOINT, at=T0),
            _given(),
            HiddenResidenceDecided(decision_id="h-1", child=CHILD, valid_from=T0, valid_to=None),
        ]
    )

    dumped = []
    with engine.connect() as conn:
        for table in ("consents", "children", "custody", "protections"):
            dumped += [str(row) for row in conn.execute(sa.text(f"SELECT * FROM {table}"))]  # noqa: S608
    text = "\n".join(dumped)
    assert dumped
    for number in (CHILD, MOTHER, FATHER):
        assert number not in text
        assert number[2:] not in text


def test_a_withdrawal_fact_ends_the_consent(registry, pseudonymizer):
    registry.apply([_custody(), _given(), ConsentWithdrawn(consent_id="c-1", child=CHILD, at=T0 + 2 * DAY)])

    assert _answer(registry, pseudonymizer, at=T0 + DAY).consent_id == "c-1"
    assert _answer(registry, pseudonymizer, at=T0 + 2 * DAY).consent_id is None


def test_two_childrens_consents_with_the_same_id_are_kept_and_withdrawn_apart(registry, pseudonymizer):
    # Sending systems number consents themselves: two children may both have consent "c-1".
    sibling = person_number(dt.date(2014, 6, 1), 3)
    registry.apply(
        [
            _custody(),
            _custody(sibling),
            _given(),
            _given(child=sibling),
            ConsentWithdrawn(consent_id="c-1", child=sibling, at=T0 + DAY),
        ]
    )

    assert _answer(registry, pseudonymizer, at=T0 + 2 * DAY).consent_id == "c-1"
    assert _answer(registry, pseudonymizer, child=sibling, at=T0 + DAY / 2).consent_id == "c-1"
    assert _answer(registry, pseudonymizer, child=sibling, at=T0 + 2 * DAY).consent_id is None


def test_applying_facts_needs_the_pseudonym_key(engine):
    upgrade(engine)
    registry = ConsentRegistry(engine)

    with pytest.raises(ConfigError, match="pseudonym key"):
        registry.apply([_given()])


def test_under_joint_custody_one_guardian_is_not_enough(registry, pseudonymizer):
    registry.apply(
        [
            CustodyUpdated(child=CHILD, guardians=(MOTHER, FATHER), custody=Custody.JOINT, at=T0),
            _given(guardians=(MOTHER,)),
        ]
    )

    answer = _answer(registry, pseudonymizer)

    assert answer.consent_id is None
    assert "joint custody needs the consent of 2 guardian(s), 1 gave it" in answer.reason


def test_under_joint_custody_both_guardians_suffice(registry, pseudonymizer):
    registry.apply(
        [
            CustodyUpdated(child=CHILD, guardians=(MOTHER, FATHER), custody=Custody.JOINT, at=T0),
            _given(guardians=(FATHER, MOTHER)),
        ]
    )

    assert _answer(registry, pseudonymizer).consent_id == "c-1"


def test_under_sole_custody_the_one_guardian_suffices(registry, pseudonymizer):
    registry.apply(
        [
            CustodyUpdated(child=CHILD, guardians=(MOTHER,), custody=Custody.SOLE, at=T0),
            _given(guardians=(MOTHER,)),
        ]
    )

    assert _answer(registry, pseudonymizer).consent_id == "c-1"


def test_a_county_may_accept_one_guardian_under_joint_custody(engine, pseudonymizer):
    lenient = CountyPolicy(county="Testlän", joint_custody_needs_both=False)
    upgrade(engine)
    registry = ConsentRegistry(engine, pseudonymizer, county=lenient)
    registry.apply(
        [
            CustodyUpdated(child=CHILD, guardians=(MOTHER, FATHER), custody=Custody.JOINT, at=T0),
            _given(guardians=(MOTHER,)),
        ]
    )

    assert _answer(registry, pseudonymizer).consent_id == "c-1"


def test_a_new_guardian_must_consent_too(registry, pseudonymizer):
    registry.apply(
        [
            CustodyUpdated(child=CHILD, guardians=(MOTHER,), custody=Custody.SOLE, at=T0),
            _given(guardians=(MOTHER,)),
            CustodyUpdated(child=CHILD, guardians=(MOTHER, FATHER), custody=Custody.JOINT, at=T0 + DAY),
        ]
    )

    assert _answer(registry, pseudonymizer, at=T0 + 2 * DAY).consent_id is None


def test_an_older_custody_update_does_not_replace_a_newer_one(registry, pseudonymizer):
    registry.apply(
        [
            CustodyUpdated(child=CHILD, guardians=(MOTHER,), custody=Custody.SOLE, at=T0 + DAY),
            CustodyUpdated(child=CHILD, guardians=(MOTHER, FATHER), custody=Custody.JOINT, at=T0),
            _given(guardians=(MOTHER,)),
        ]
    )

    assert _answer(registry, pseudonymizer, at=T0 + 2 * DAY).consent_id == "c-1"


def test_from_18_the_guardians_consent_no_longer_counts(registry, pseudonymizer):
    young = person_number(dt.date(2008, 12, 1))
    registry.apply([_custody(young), _given(child=young, valid_from=T0)])

    before = _answer(registry, pseudonymizer, child=young, at=dt.datetime(2026, 11, 30, 23, tzinfo=dt.UTC))
    after = _answer(registry, pseudonymizer, child=young, at=dt.datetime(2026, 12, 1, 1, tzinfo=dt.UTC))

    assert before.consent_id == "c-1"
    assert after.consent_id is None
    assert "from 18" in after.reason


def test_from_18_the_young_persons_own_consent_counts(registry, pseudonymizer):
    young = person_number(dt.date(2008, 12, 1))
    registry.apply([_given(child=young, by=GivenBy.CHILD, consent_id="own-1")])

    assert _answer(registry, pseudonymizer, child=young, at=T0 + DAY).consent_id is None
    assert _answer(registry, pseudonymizer, child=young, at=T0 + 20 * DAY).consent_id == "own-1"


def test_a_young_childs_own_consent_is_refused(registry):
    seven = person_number(dt.date(2019, 6, 1))

    with pytest.raises(InvalidEventError, match="from age 15") as caught:
        registry.apply([_given(child=seven, by=GivenBy.CHILD)])

    assert caught.value.field == "given_by"
    assert seven not in str(caught.value)


def test_the_registry_knows_the_childs_age(registry, pseudonymizer):
    registry.apply([_given()])

    assert registry.age(pseudonymizer.of(CHILD), T0) == 14
    assert registry.age(pseudonymizer.of(MOTHER), T0) is None


@pytest.mark.parametrize(
    ("at", "hidden"),
    [(T0 - DAY, False), (T0, True), (T0 + 4 * DAY, True), (T0 + 5 * DAY, False), (T0 + 9 * DAY, False)],
)
def test_hidden_residence_applies_from_the_decision_until_it_is_lifted(registry, pseudonymizer, at, hidden):
    registry.apply(
        [
            HiddenResidenceDecided(decision_id="h-1", child=CHILD, valid_from=T0, valid_to=T0 + 30 * DAY),
            HiddenResidenceLifted(decision_id="h-1", child=CHILD, at=T0 + 5 * DAY),
        ]
    )

    protections = registry.protections_at(pseudonymizer.of(CHILD), at)

    assert (Protection.HIDDEN_RESIDENCE in protections) is hidden


def test_hidden_residence_ends_with_its_period(registry, pseudonymizer):
    registry.apply(
        [HiddenResidenceDecided(decision_id="h-1", child=CHILD, valid_from=T0, valid_to=T0 + 3 * DAY)]
    )

    assert registry.protections_at(pseudonymizer.of(CHILD), T0 + 2 * DAY)
    assert not registry.protections_at(pseudonymizer.of(CHILD), T0 + 3 * DAY)


def test_protected_identity_is_recorded(registry, pseudonymizer):
    child = pseudonymizer.of(CHILD)
    registry.protect("s-1", child=child, kind=Protection.PROTECTED_IDENTITY, valid_from=T0)

    assert registry.protections_at(child, T0 + DAY) == {Protection.PROTECTED_IDENTITY}


@pytest.mark.parametrize(
    ("county", "age", "placed", "inside"),
    [
        (VASTMANLAND, 17, False, True),
        (VASTMANLAND, 18, False, False),
        (VASTMANLAND, 20, True, True),
        (VASTMANLAND, 21, True, False),
        (VASTERBOTTEN, 21, True, True),
        (VASTERBOTTEN, 22, True, False),
    ],
)
def test_the_target_group_follows_the_county(county, age, placed, inside):
    assert county.in_target_group(age, placed=placed) is inside


@pytest.mark.parametrize(
    ("day", "age"),
    [(dt.date(2026, 2, 28), 13), (dt.date(2026, 3, 1), 14), (dt.date(2027, 2, 28), 14)],
)
def test_age_counts_whole_years(day, age):
    assert age_on(dt.date(2012, 2, 29), day) == age


# Custody fails closed: only current guardians consent, and their separate records combine.

FOSTER_PARENT = person_number(dt.date(1970, 4, 4), 4)
GOD_MAN = person_number(dt.date(1965, 8, 9), 5)


def test_without_known_custody_no_guardians_consent_counts(registry, pseudonymizer):
    registry.apply([_given()])

    answer = _answer(registry, pseudonymizer)

    assert answer.consent_id is None
    assert "custody is not known" in answer.reason


def test_a_foster_parents_consent_counts_for_nothing(registry, pseudonymizer):
    registry.apply([_custody(), _given(guardians=(FOSTER_PARENT,))])

    answer = _answer(registry, pseudonymizer)

    assert answer.consent_id is None
    assert "not a current guardian" in answer.reason


def test_a_parent_without_custody_does_not_consent_under_sole_custody(registry, pseudonymizer):
    registry.apply([_custody(CHILD, MOTHER, form=Custody.SOLE), _given(guardians=(FATHER,))])

    assert _answer(registry, pseudonymizer).consent_id is None


def test_a_foster_parent_beside_one_guardian_does_not_make_joint_consent(registry, pseudonymizer):
    registry.apply([_custody(), _given(guardians=(MOTHER, FOSTER_PARENT))])

    assert _answer(registry, pseudonymizer).consent_id is None


def test_two_guardians_separate_records_combine(registry, pseudonymizer):
    registry.apply([_custody(), _given(consent_id="c-mor", guardians=(MOTHER,))])
    assert _answer(registry, pseudonymizer).consent_id is None

    registry.apply([_given(consent_id="c-far", guardians=(FATHER,))])

    answer = _answer(registry, pseudonymizer)
    assert answer.consent_id == "c-far + c-mor"
    assert "joint custody" in answer.reason


def test_withdrawing_one_of_two_records_ends_the_joint_consent(registry, pseudonymizer):
    registry.apply(
        [
            _custody(),
            _given(consent_id="c-mor", guardians=(MOTHER,)),
            _given(consent_id="c-far", guardians=(FATHER,)),
            ConsentWithdrawn(consent_id="c-mor", child=CHILD, at=T0 + DAY),
        ]
    )

    assert _answer(registry, pseudonymizer, at=T0 + 2 * DAY).consent_id is None


def test_a_god_man_consents_for_an_unaccompanied_minor(registry, pseudonymizer):
    registry.apply([_custody(CHILD, GOD_MAN, form=Custody.GOD_MAN), _given(guardians=(GOD_MAN,))])

    assert _answer(registry, pseudonymizer).consent_id == "c-1"


def test_parents_replaced_by_a_specially_appointed_guardian_no_longer_consent(registry, pseudonymizer):
    appointed = CustodyUpdated(child=CHILD, guardians=(GOD_MAN,), custody=Custody.SPECIALLY_APPOINTED, at=T0)
    registry.apply([_custody(), appointed, _given(guardians=(MOTHER, FATHER), valid_from=T0 + DAY)])

    assert _answer(registry, pseudonymizer, at=T0 + 2 * DAY).consent_id is None
    registry.apply([_given(consent_id="c-2", guardians=(GOD_MAN,), valid_from=T0 + DAY)])
    assert _answer(registry, pseudonymizer, at=T0 + 2 * DAY).consent_id == "c-2"


# The child's own voice: from the county's age, an assessed child's own consent counts.


def _childs_own(child, *, assessed_by=None, valid_from=T0) -> ConsentGiven:
    return ConsentGiven(
        consent_id="c-barn",
        child=child,
        purpose=Purpose.SIP,
        agency_kinds=KINDS,
        given_by=GivenBy.CHILD,
        guardians=(),
        valid_from=valid_from,
        valid_to=None,
        recorded_at=valid_from,
        maturity_assessed_by=assessed_by,
    )


def test_an_assessed_sixteen_year_olds_own_consent_counts(registry, pseudonymizer):
    sixteen = person_number(dt.date(2010, 5, 5))
    registry.apply([_custody(sixteen), _childs_own(sixteen, assessed_by="kurator-17")])

    answer = _answer(registry, pseudonymizer, child=sixteen)

    assert answer.consent_id == "c-barn"
    assert "maturity assessed by kurator-17" in answer.reason


def test_an_unassessed_sixteen_year_olds_own_consent_does_not_count(registry, pseudonymizer):
    sixteen = person_number(dt.date(2010, 5, 5))
    registry.apply([_custody(sixteen), _childs_own(sixteen)])

    assert _answer(registry, pseudonymizer, child=sixteen).consent_id is None
