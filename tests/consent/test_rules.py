"""Secrecy rules as data: the shipped rule file, and clear errors for bad rule files."""

from __future__ import annotations

import itertools

import pytest
import yaml

from sambus.consent import ConsentPolicy, Duty, RuleSet
from sambus.consent.rules import DEFAULT_DENY, Rule
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.errors import ConfigError
from sambus.contracts.fhir import EventCode

GOOD = {
    "rules": [
        {
            "id": "sip-consent",
            "version": 1,
            "basis": {"kind": "consent", "purpose": "sip", "provision": "OSL 12:2 (samtycke)"},
            "events": ["sip-initiated"],
        }
    ]
}


def _write(tmp_path, data) -> object:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _with(**changes) -> dict:
    rule = {**GOOD["rules"][0], **changes}
    return {"rules": [rule]}


def test_the_shipped_rule_file_is_valid():
    rules = RuleSet.load()

    assert {rule.id for rule in rules.rules} >= {"sip-consent", "report-of-concern", "lvu32-order"}


def test_every_duty_has_a_rule_in_the_shipped_file():
    rules = RuleSet.load()

    assert {rule.basis.duty for rule in rules.rules if rule.basis.kind == "duty"} == set(Duty)


def test_every_rule_names_osl_and_its_provision():
    for rule in RuleSet.load().rules:
        if rule.basis.kind == "consent":
            assert rule.basis.provision.startswith("OSL 12:2")
        else:
            assert "OSL" in rule.basis.provision


def test_every_rule_names_the_secrecy_it_breaks_for_each_sender():
    rules = RuleSet.load()
    for rule in rules.rules:
        for sender in rule.senders:
            assert "OSL" in rules.secrecy_of(sender), (rule.id, sender)
        assert "breaks OSL 26:1" in rule.legal_basis(rules.secrecy_of(AgencyKind.SOCIAL_SERVICES))


def test_a_private_sender_breaks_professional_confidentiality_not_osl():
    rules = RuleSet.load()

    assert "tystnadsplikt" in rules.secrecy_of(AgencyKind.SCHOOL, private=True)
    assert "skollagen 29:14" in rules.secrecy_of(AgencyKind.SCHOOL, private=True)


def test_a_valid_file_loads(tmp_path):
    rules = RuleSet.load(_write(tmp_path, GOOD))

    assert rules.find(EventCode.SIP_INITIATED, None, AgencyKind.DENTAL).id == "sip-consent"


def test_no_rule_means_default_deny(tmp_path):
    rules = RuleSet.load(_write(tmp_path, GOOD))

    found = rules.find(EventCode.PLACEMENT_STARTED, None, AgencyKind.DENTAL)

    assert found.id == "default-deny"
    assert found.outcome == "deny"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"events": ["no-such-event"]}, r"rule 'sip-consent' field events\[0\]"),
        ({"version": 0}, "rule 'sip-consent' field version"),
        ({"recipients": ["guardian"]}, r"rule 'sip-consent' field recipients\[0\]"),
        ({"outcome": "maybe"}, "rule 'sip-consent' field outcome"),
        ({"basis": {"kind": "consent", "provision": "OSL 12:2"}}, "rule 'sip-consent' field basis.*purpose"),
        ({"basis": {"kind": "duty", "provision": "OSL 10:28"}}, "rule 'sip-consent' field basis.*duty"),
        ({"colour": "red"}, "rule 'sip-consent' field colour"),
        ({"id": "Bad Id"}, "rule 'Bad Id' field id"),
    ],
)
def test_a_bad_rule_is_named_with_its_field(tmp_path, changes, expected):
    with pytest.raises(ConfigError, match=expected):
        RuleSet.load(_write(tmp_path, _with(**changes)))


def test_a_rule_without_id_is_named_by_position(tmp_path):
    data = {"rules": [GOOD["rules"][0], {"version": 1}]}

    with pytest.raises(ConfigError, match="rule #2 field"):
        RuleSet.load(_write(tmp_path, data))


def test_duplicate_ids_are_refused(tmp_path):
    data = {"rules": [GOOD["rules"][0], GOOD["rules"][0]]}

    with pytest.raises(ConfigError, match="appears twice"):
        RuleSet.load(_write(tmp_path, data))


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the rule file"):
        RuleSet.load(tmp_path / "nope.yaml")


def test_a_file_that_is_not_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [unclosed", encoding="utf-8")

    with pytest.raises(ConfigError, match="not valid YAML"):
        RuleSet.load(path)


def _first_applying(rules: RuleSet, event, sender, recipient, assessed) -> Rule:
    """The rule ``find`` must give: the first of the file that applies (the loop ``find`` once was)."""
    for rule in rules.rules:
        if rule.applies(event, sender, recipient) and (
            rule.basis.kind != "provision" or assessed in rule.basis.assessed_provisions
        ):
            return rule
    return DEFAULT_DENY


def test_find_gives_the_first_rule_that_applies_for_every_event_sender_and_recipient():
    rules = RuleSet.load()
    provisions = sorted({p for r in rules.rules for p in r.basis.assessed_provisions})
    policy = ConsentPolicy(registry=None, rules=rules)  # type: ignore[arg-type] # rules only, no registry
    checked = 0
    for _ in range(2):  # the policy keeps what applies to a triple: asked again, it answers the same
        for event, sender, recipient in itertools.product(EventCode, (None, *AgencyKind), AgencyKind):
            for assessed in (None, "unknown provision", *provisions):
                expected = _first_applying(rules, event, sender, recipient, assessed)
                assert rules.find(event, sender, recipient, assessed=assessed) is expected
                assert policy._find(event, sender, recipient, assessed=assessed) is expected  # noqa: SLF001
                checked += 1
    assert checked > 20_000
