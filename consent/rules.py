"""Secrecy rules as data: which messages may cross from which agencies to which, and on what legal basis.

A rule file (``SAMBUS_RULES``, else the rules packaged with sambus in ``consent/defaults/rules.yaml``) is
validated when sambus starts; a bad rule stops the start with a :class:`~sambus.contracts.errors.ConfigError`
that names the rule and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sambus.contracts.agencies import HEALTH_CARE_TABLE, AgencyKind, Purpose
from sambus.contracts.errors import ConfigError
from sambus.contracts.fhir.codes import EventCode

PACKAGED_RULES: Traversable = files("sambus.consent") / "defaults" / "rules.yaml"
"""The secrecy rules packaged with sambus (read with importlib.resources), used when no rule file is set."""


class Duty(StrEnum):
    """Secrecy-breaking provisions (OSL 10:28 with the provision that creates the duty)."""

    REPORT_OF_CONCERN = "report_of_concern"
    """SoL 14:1: report of concern (orosanmälan) to social services."""
    NOTICE_2017_209 = "notice_2017_209"
    """SoL 11:3 a: notice to the region of a placed child's health examination (lag 2017:209)."""
    LVU32_ORDER = "lvu32_order"
    """LVU 32 §: the social board orders a medical examination."""
    INVESTIGATION_INFO = "investigation_info"
    """SoL 14:1 third paragraph: information to a social-services investigation."""
    PROTECTION = "protection"
    """LVU 14 §: telling the care provider that guardians must not see the record (OSL 10:2)."""


class LegalBasis(BaseModel):
    """Why a message may cross a secrecy boundary.

    Attributes:
        kind: ``consent`` (OSL 12:2; the registry must hold a consent in force for ``purpose``), ``duty``
            (a duty to report or to provide information) or ``provision`` (a "får"-provision that rests on a
            professional's assessment, e.g. OSL 26:9: the message must carry who assessed and under which
            provision, one of ``assessed_provisions``; without it the rule does not apply) or ``answer``
            (an answer, e.g. a Task status, goes on the basis of the request it answers, found by the
            rules as that request was decided, and re-checks consent where the request rested on it).
        provision: the provision in words, e.g. ``OSL 10:28 with SoL 14:1``.
        duty: for ``duty``, which duty.
        purpose: for ``consent``, what the consent must cover.
        assessed_provisions: for ``provision``, the provisions an assessment in the message may name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["consent", "duty", "provision", "answer", "none"]
    provision: str = Field(min_length=3)
    duty: Duty | None = None
    purpose: Purpose | None = None
    assessed_provisions: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind == "consent" and self.purpose is None:
            raise ValueError("a consent basis needs a purpose")
        if self.kind == "duty" and self.duty is None:
            raise ValueError("a duty basis needs a duty")
        if self.kind != "duty" and self.duty is not None:
            raise ValueError("only a duty basis names a duty")
        if (self.kind == "provision") != bool(self.assessed_provisions):
            raise ValueError("a provision basis, and only it, lists the assessed_provisions it accepts")
        return self

    def __str__(self) -> str:
        """The provision, as decisions and the ledger show it."""
        return self.provision


class Rule(BaseModel):
    """One secrecy rule.

    Attributes:
        events: the message kinds it applies to.
        senders: the sending agency kinds it applies to (empty: any sender).
        recipients: the receiving agency kinds it applies to (empty: any recipient).
        outcome: ``permit`` (for a consent basis: when a consent is in force, else ``await_consent``) or
            ``deny``.
        residence_need: whether these recipients need to know where the child lives; without need,
            residence-revealing data is removed while a protection decision applies.
        secrecy: secrecy the rule breaks beyond the sender's own (which the rule set names per kind of
            sender), e.g. ``OSL 21:3`` for an address; the ledger names both beside the provision.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$")
    version: int = Field(ge=1)
    description: str = ""
    basis: LegalBasis
    events: frozenset[EventCode] = Field(min_length=1)
    senders: frozenset[AgencyKind] = frozenset()
    recipients: frozenset[AgencyKind] = frozenset()
    outcome: Literal["permit", "deny"] = "permit"
    residence_need: bool = False
    secrecy: tuple[str, ...] = ()

    def legal_basis(self, sender_secrecy: str) -> str:
        """The legal basis as the ledger keeps it: the provision, and the secrecy it breaks.

        ``sender_secrecy``: the sender's own secrecy (e.g. ``OSL 26:1``), or for a private provider the
        professional confidentiality (tystnadsplikt) that binds it in place of OSL.
        """
        broken = ", ".join((sender_secrecy, *self.secrecy))
        return f"{self.basis.provision}; breaks {broken}"

    def applies(self, event: EventCode, sender: AgencyKind | None, recipient: AgencyKind) -> bool:
        """Whether this rule covers ``event`` from ``sender`` (``None``: unknown) to ``recipient``."""
        return (
            event in self.events
            and (not self.senders or sender in self.senders)
            and (not self.recipients or recipient in self.recipients)
        )


LEGAL_BASIS_MAX = 200
"""The ledger's ``legal_basis`` column holds this many characters."""

DEFAULT_DENY = Rule(
    id="default-deny",
    version=1,
    description="Nothing crosses a secrecy boundary without consent or a provision.",
    basis=LegalBasis(kind="none", provision="no consent and no provision breaking secrecy"),
    events=frozenset(EventCode),
    outcome="deny",
)
"""The rule that decides when no rule of the file applies."""


PRIVATE_SECRECY = "tystnadsplikt (private provider, not an authority: skollagen 29:14, PSL 6:12)"
"""What binds a private sender (independent school, private care or dental unit) in place of OSL."""

_SCHOOL = "OSL 23:1-2 (förskola, skola, elevhälsa)"
_HEALTH = "OSL 25:1 (hälso- och sjukvård)"
SENDER_SECRECY: dict[AgencyKind, str] = {
    AgencyKind.PRESCHOOL: _SCHOOL,
    AgencyKind.SCHOOL: _SCHOOL,
    AgencyKind.SOCIAL_SERVICES: "OSL 26:1 (socialtjänst)",
    AgencyKind.ADULT_SOCIAL_SERVICES: "OSL 26:1 (socialtjänst)",
    **dict.fromkeys(HEALTH_CARE_TABLE, _HEALTH),
    AgencyKind.HLT_TEAM: "OSL 23:1-2, 25:1 and 26:1 (each HLT team member's own agency)",
}
"""The secrecy each kind of sending authority is under (OSL 23, 25, 26)."""

UNKNOWN_SENDER_SECRECY = "the sender's secrecy (sender not in the directory)"


class OpenTerm(BaseModel):
    """A deadline the law and the agreements leave open, set by the county: how many days, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int = Field(ge=1, le=365)
    basis: str = Field(min_length=3, description="Where the term comes from; '(verify)' until a lawyer has.")


HEALTH_EXAM_REQUEST = OpenTerm(
    days=14,
    basis="no deadline in lag (2017:209), SoL or either agreement (verify): two weeks after the placement, "
    "as the joint planning after an acute placement",
)
"""The default term of a placed child's 2017:209 health-examination request (see :class:`DeadlineTerms`)."""


class DeadlineTerms(BaseModel):
    """Terms of the deadlines the agreements leave open (``deadlines:`` in the rule file).

    Attributes:
        health_exam_request: how long after a placement starts the placing social services has to send the
            region the 2017:209 health-examination request before it is reminded (the law says "when a child
            is placed" and gives no time).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    health_exam_request: OpenTerm = HEALTH_EXAM_REQUEST


class RuleSet(BaseModel):
    """The rules, in file order; the first that applies decides.

    Attributes:
        deadlines: the terms of deadlines the agreements leave open (without the section, the defaults).
        private_secrecy: what the ledger names as broken when the sender is a private provider.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[Rule, ...] = Field(min_length=1)
    deadlines: DeadlineTerms = DeadlineTerms()
    private_secrecy: str = PRIVATE_SECRECY
    sender_secrecy: dict[AgencyKind, str] = Field(default_factory=lambda: dict(SENDER_SECRECY))

    @model_validator(mode="after")
    def _bases_fit_the_ledger(self) -> Self:
        for rule in self.rules:
            for secrecy in (self.private_secrecy, UNKNOWN_SENDER_SECRECY, *self.sender_secrecy.values()):
                if len(rule.legal_basis(secrecy)) > LEGAL_BASIS_MAX:
                    raise ValueError(
                        f"rule {rule.id!r}: its provision and the secrecy it breaks exceed "
                        f"{LEGAL_BASIS_MAX} characters"
                    )
        return self

    def secrecy_of(self, sender: AgencyKind | None, *, private: bool = False) -> str:
        """The secrecy a message from ``sender`` breaks: OSL by kind, or a private sender's tystnadsplikt."""
        if private:
            return self.private_secrecy
        if sender is None:
            return UNKNOWN_SENDER_SECRECY
        return self.sender_secrecy.get(sender, UNKNOWN_SENDER_SECRECY)

    def broken_secrecy(self, rule: Rule) -> str:
        """The secrecy a rule breaks for its senders (any sender: every kind), as the CLI shows it."""
        senders = rule.senders or frozenset(self.sender_secrecy)
        own = sorted({self.sender_secrecy.get(kind, UNKNOWN_SENDER_SECRECY) for kind in senders})
        return ", ".join((*own, *rule.secrecy))

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} appears twice")
            seen.add(rule.id)
        return self

    def find(
        self,
        event: EventCode,
        sender: AgencyKind | None,
        recipient: AgencyKind,
        *,
        assessed: str | None = None,
    ) -> Rule:
        """The first rule that applies, or :data:`DEFAULT_DENY`.

        A ``provision`` rule applies only when the message carries a professional's assessment naming one
        of its ``assessed_provisions`` (``assessed``).
        """
        return first_rule(self.applying(event, sender, recipient), assessed=assessed)

    def applying(
        self, event: EventCode, sender: AgencyKind | None, recipient: AgencyKind
    ) -> tuple[Rule, ...]:
        """The rules that apply to ``event`` from ``sender`` to ``recipient``, in file order.

        :meth:`find` is :func:`first_rule` of them: a caller that asks often may keep them per triple.
        """
        return tuple(rule for rule in self.rules if rule.applies(event, sender, recipient))

    @classmethod
    def parse(cls, data: Any, *, source: str = "rules") -> RuleSet:  # noqa: ANN401 - YAML data
        """Validate rule data.

        Raises:
            ConfigError: naming the rule (by id, or by position) and the field.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(f"{source}: {_where(data, first['loc'])}: {first['msg']}") from exc

    @classmethod
    def load(cls, path: Path | None = None) -> RuleSet:
        """Read and validate a rule file; without ``path``, the rules packaged with sambus.

        Raises:
            ConfigError: the file is missing, is not YAML, or a rule is invalid (naming the rule and field).
        """
        source: Traversable = PACKAGED_RULES if path is None else path
        try:
            data = yaml.safe_load(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the rule file {source}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"the rule file {source} is not valid YAML") from exc
        return cls.parse(data, source=str(source))


def first_rule(applying: Iterable[Rule], *, assessed: str | None) -> Rule:
    """The first of ``applying`` that decides for a message carrying assessment ``assessed``, or the default.

    A ``provision`` rule decides only when the message carries a professional's assessment naming one of its
    ``assessed_provisions``.
    """
    for rule in applying:
        if rule.basis.kind == "provision" and assessed not in rule.basis.assessed_provisions:
            continue
        return rule
    return DEFAULT_DENY


def _where(data: Any, loc: tuple[int | str, ...]) -> str:  # noqa: ANN401 - YAML data
    """``rule 'sip-consent' field events[2]`` for a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):  # noqa: PLR2004 - ('rules', n, ...)
        index = loc[1]
        rule_id = None
        if isinstance(data, dict) and isinstance(data.get("rules"), list) and index < len(data["rules"]):
            raw = data["rules"][index]
            rule_id = raw.get("id") if isinstance(raw, dict) else None
        name = f"rule {rule_id!r}" if rule_id else f"rule #{index + 1}"
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[2:]).lstrip(".")
        return f"{name} field {field}" if field else name
    return "field " + ".".join(str(p) for p in loc) if loc else "the file"
