"""Swedish identifiers: personnummer, samordningsnummer, organisation number, HSA-id and their systems."""

from __future__ import annotations

import datetime as dt

import pytest

from sambus.contracts.identifiers import (
    HSA_ID_SYSTEM,
    ORGANISATION_NUMBER_SYSTEM,
    PERSONNUMMER_SYSTEM,
    SAMORDNINGSNUMMER_SYSTEM,
    birth_date,
    luhn_valid,
    normalise_system,
    parse_hsa_id,
    parse_organisation_number,
    parse_personnummer,
    parse_samordningsnummer,
)


def _with_check_digit(first_eleven: str) -> str:
    """The 12-digit number whose last digit makes the Luhn check over the last ten digits pass."""
    return next(first_eleven + d for d in "0123456789" if luhn_valid(first_eleven[2:] + d))


SAMORDNINGSNUMMER = _with_check_digit("20120375000")  # born 2012-03-15, day + 60


@pytest.mark.parametrize(
    "value",
    ["201203150006", "20120315-0006", "20120315+0006", " 20120315-0006 ", _with_check_digit("20000229123")],
)
def test_valid_personnummer_is_normalised_to_twelve_digits(value):
    parsed = parse_personnummer(value)

    assert parsed == value.strip().replace("-", "").replace("+", "")
    assert len(parsed) == 12
    assert parsed.isdigit()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("201203150007", "check digit"),
        ("20120315-0005", "check digit"),
        (_with_check_digit("20120230123"), "real date"),  # 30 February
        (_with_check_digit("20121301123"), "real date"),  # month 13
        (_with_check_digit("20110229123"), "real date"),  # 29 February in a common year
        (_with_check_digit("20120300123"), "real date"),  # day 0
        ("1203150006", "12 digits"),  # the 10-digit form is not accepted
        ("2012031500061", "12 digits"),
        ("20120315_0006", "12 digits"),
        ("2012O3150006", "12 digits"),
        ("", "12 digits"),
    ],
)
def test_invalid_personnummer_names_the_problem_but_not_the_number(value, problem):
    with pytest.raises(ValueError, match=problem) as caught:
        parse_personnummer(value)

    message = str(caught.value)
    assert "personnummer" in message
    digits = value.strip().replace("-", "")
    if digits:
        assert digits not in message
        assert value.strip() not in message


def test_samordningsnummer_day_plus_sixty_is_accepted_as_samordningsnummer():
    assert parse_samordningsnummer(SAMORDNINGSNUMMER) == SAMORDNINGSNUMMER
    assert parse_samordningsnummer(f"{SAMORDNINGSNUMMER[:8]}-{SAMORDNINGSNUMMER[8:]}") == SAMORDNINGSNUMMER


def test_samordningsnummer_is_not_a_personnummer():
    with pytest.raises(ValueError, match="real date") as caught:
        parse_personnummer(SAMORDNINGSNUMMER)

    assert SAMORDNINGSNUMMER not in str(caught.value)


def test_personnummer_is_not_a_samordningsnummer():
    with pytest.raises(ValueError, match="samordningsnummer does not start with a real date"):
        parse_samordningsnummer("201203150006")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (SAMORDNINGSNUMMER[:-1] + str((int(SAMORDNINGSNUMMER[-1]) + 1) % 10), "check digit"),
        (_with_check_digit("20120290123"), "real date"),  # 30 February + 60
        ("2012037500", "12 digits"),
    ],
)
def test_invalid_samordningsnummer_names_the_problem_but_not_the_number(value, problem):
    with pytest.raises(ValueError, match=problem) as caught:
        parse_samordningsnummer(value)

    assert "samordningsnummer" in str(caught.value)
    assert value not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("201203150006", dt.date(2012, 3, 15)),
        (SAMORDNINGSNUMMER, dt.date(2012, 3, 15)),
        (_with_check_digit("20000229123"), dt.date(2000, 2, 29)),
        (_with_check_digit("20000289123"), dt.date(2000, 2, 29)),  # samordningsnummer, leap day
        (_with_check_digit("20121291123"), dt.date(2012, 12, 31)),  # samordningsnummer, day 31 + 60
    ],
)
def test_birth_date_of_personnummer_and_samordningsnummer(value, expected):
    assert birth_date(value) == expected


def test_birth_date_of_an_impossible_date_is_refused():
    with pytest.raises(ValueError, match="not a validated"):
        birth_date("201202300000")


@pytest.mark.parametrize(
    ("value", "expected"), [("212000-2080", "212000-2080"), ("2120002080", "212000-2080")]
)
def test_valid_organisation_number_is_normalised_with_a_dash(value, expected):
    assert parse_organisation_number(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("212000-2081", "check digit"),
        ("212000-2089", "check digit"),
        ("21200-02080", "ten digits"),
        ("212000-208", "ten digits"),
        ("16212000-2080", "ten digits"),
        ("", "ten digits"),
    ],
)
def test_invalid_organisation_number_is_refused(value, problem):
    with pytest.raises(ValueError, match=problem):
        parse_organisation_number(value)


@pytest.mark.parametrize("value", ["SE2321000206-1001", "SE2321000016-1234", "SE2321000206-abcXYZ09"])
def test_valid_hsa_id_is_kept_as_given(value):
    assert parse_hsa_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "se2321000206-1001",  # lower-case country prefix
        "SE232100020-1001",  # nine digits
        "SE23210002061-1001",  # eleven digits
        "SE2321000206",  # no local part
        "SE2321000206-",
        "SE2321000206-10 01",
        "SE2321000206-" + "1" * 32,  # local part too long
        "2321000206-1001",
        "",
    ],
)
def test_malformed_hsa_id_is_refused(value):
    with pytest.raises(ValueError, match="HSA-id"):
        parse_hsa_id(value)


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("1.2.752.129.2.1.3.1", PERSONNUMMER_SYSTEM),
        ("urn:oid:1.2.752.129.2.1.3.1", PERSONNUMMER_SYSTEM),
        ("1.2.752.129.2.1.3.3", SAMORDNINGSNUMMER_SYSTEM),
        ("urn:oid:1.2.752.129.2.1.3.3", SAMORDNINGSNUMMER_SYSTEM),
        ("1.2.752.129.2.1.4.1", HSA_ID_SYSTEM),
        ("urn:oid:1.2.752.129.2.1.4.1", HSA_ID_SYSTEM),
        ("1.2.752.29.4.19", HSA_ID_SYSTEM),
        ("2.5.4.97", ORGANISATION_NUMBER_SYSTEM),
    ],
)
def test_legacy_oids_are_normalised_to_hl7_sweden_systems(system, expected):
    assert normalise_system(system) == expected


@pytest.mark.parametrize(
    "system",
    [
        PERSONNUMMER_SYSTEM,
        SAMORDNINGSNUMMER_SYSTEM,
        HSA_ID_SYSTEM,
        ORGANISATION_NUMBER_SYSTEM,
        "urn:oid:1.2.3.4",
        "http://example.org/identifiers",
        "1.2.752.129.2.1.3.10",
        "",
    ],
)
def test_other_systems_are_left_alone(system):
    assert normalise_system(system) == system


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("1203150006", True),
        ("1203150007", False),
        ("2120002080", True),
        ("0", True),
        ("18", True),
        ("17", False),
    ],
)
def test_luhn_check(digits, valid):
    assert luhn_valid(digits) is valid
