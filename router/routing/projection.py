"""Cutting a canonical message down to what one recipient may see: its own Task and what that refers to.

Works on the Bundle as plain data (no FHIR model round trip), as the design's performance notes ask.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from sambus.contracts.errors import InvalidIntentError
from sambus.contracts.fhir import DESTINATION_ENDPOINT_PREFIX, ROUTING_ADDRESS_SYSTEM, deterministic_id, urn
from sambus.contracts.fhir.codes import TASK_ID_SYSTEM
from sambus.contracts.fhir.task import task_id_for


@dataclass(frozen=True)
class TaskEntry:
    """A Task in an intent, with the identifier of the organisation that owns it."""

    full_url: str
    resource: dict[str, Any]
    owner_system: str
    owner_value: str


def _entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    entries = bundle.get("entry")
    if (
        bundle.get("resourceType") != "Bundle"
        or bundle.get("type") != "message"
        or not isinstance(entries, list)
    ):
        raise InvalidIntentError("an intent must be a FHIR message Bundle")
    if not entries or entries[0].get("resource", {}).get("resourceType") != "MessageHeader":
        raise InvalidIntentError("a message Bundle must start with its MessageHeader")
    return entries


def tasks(bundle: dict[str, Any]) -> list[TaskEntry]:
    """The Tasks a message's header focuses on, each with its owner's identifier.

    Raises:
        InvalidIntentError: the Bundle is not a message or a focal Task has no owner identifier.
    """
    entries = _entries(bundle)
    focus = {ref.get("reference") for ref in entries[0]["resource"].get("focus", [])}
    found = []
    for entry in entries[1:]:
        resource = entry.get("resource", {})
        if entry.get("fullUrl") not in focus or resource.get("resourceType") != "Task":
            continue
        identifier = resource.get("owner", {}).get("identifier", {})
        if not identifier.get("system") or not identifier.get("value"):
            raise InvalidIntentError("a focal Task has no owner identifier")
        found.append(TaskEntry(entry["fullUrl"], resource, identifier["system"], identifier["value"]))
    return found


def _walked(value: object, found: set[str] | None = None) -> set[str]:
    """Every ``reference`` string anywhere in ``value`` (added to ``found``, which is returned)."""
    found = set() if found is None else found
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str):
            found.add(reference)
        children: Iterable[object] = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return found
    for child in children:
        if isinstance(child, (dict, list)):
            _walked(child, found)
    return found


_AS_PARSED = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)
"""What orjson writes only as parsed JSON holds it: a date, a dataclass or a subclass of str, int, dict or
list raises (and is walked)."""
_REFERENCE_KEY = b'"reference":"'
_KEY_OPENS = frozenset(b"{,")
"""What precedes a key's opening quote in compact JSON (a quote inside a string follows a backslash)."""
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*')
"""The rest of a JSON string after its opening quote, up to its closing quote (escapes kept)."""


def _references(value: object) -> set[str]:
    """Every ``reference`` string anywhere in ``value`` (parsed JSON): what :func:`_walked` finds.

    Read from the resource written compactly by orjson (a quarter of the walk's time): in compact JSON
    ``"reference":"`` after ``{`` or ``,`` can only be a key ``reference`` with a string value, since a
    quote inside a string is written escaped. A value orjson does not write (a non-string key, an integer
    beyond 64 bits, a lone surrogate) is walked. Parsed JSON holds no tuple (orjson writes one as an array,
    which the walk does not enter).
    """
    if not isinstance(value, (dict, list)):
        return set()
    try:
        text = orjson.dumps(value, option=_AS_PARSED)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _walked(value)
    found: set[str] = set()
    at = text.find(_REFERENCE_KEY)
    while at >= 0:
        start = at + len(_REFERENCE_KEY)
        if text[at - 1] not in _KEY_OPENS:  # a key that ends in an escaped quote and "reference"
            at = text.find(_REFERENCE_KEY, start - 1)
            continue
        end = _STRING_REST.match(text, start).end()  # type: ignore[union-attr] # it matches anything
        body = text[start:end]
        found.add(orjson.loads(b'"' + body + b'"') if b"\\" in body else body.decode("utf-8"))
        at = text.find(_REFERENCE_KEY, end)
    return found


class Referrals:
    """What the entries of one message Bundle refer to, worked out once for all of its recipients.

    Each recipient's projection follows its own Task's references through the same entries: what an entry
    refers to is read from it the first time a recipient needs it and kept for the next. Only the Bundle's
    own data is kept (nothing of the registry): give one to :func:`for_recipient` for each recipient of the
    same, unchanged Bundle.
    """

    def __init__(self, bundle: dict[str, Any]) -> None:
        """For the recipients of ``bundle`` (read when first needed, after it was checked as a message)."""
        self.bundle = bundle
        self._by_url: dict[object, dict[str, Any]] | None = None
        self._references: dict[object, frozenset[str]] = {}

    def entry(self, url: str) -> dict[str, Any] | None:
        """The entry with ``fullUrl`` ``url`` (the last one, were there two), if any."""
        if self._by_url is None:
            self._by_url = {e.get("fullUrl"): e for e in _entries(self.bundle)[1:]}
        return self._by_url.get(url)

    def of(self, url: str, entry: dict[str, Any]) -> frozenset[str]:
        """Every ``reference`` anywhere in the resource of ``entry``, which :meth:`entry` gave for ``url``."""
        found = self._references.get(url)
        if found is None:
            found = self._references[url] = frozenset(_references(entry.get("resource")))
        return found


def _referred(entries: list[dict[str, Any]], task: TaskEntry, referrals: Referrals) -> list[dict[str, Any]]:
    """The entries ``task`` refers to, and those they refer to in turn (e.g. a CarePlan's lead coordinator).

    What another Task refers to is not followed: each recipient sees its own Task's references only.
    """
    wanted: set[str] = set()
    todo = _references(task.resource)
    while todo:
        url = todo.pop()
        if url in wanted or url == task.full_url:
            continue
        entry = referrals.entry(url)
        if entry is None:
            continue
        wanted.add(url)
        if entry.get("resource", {}).get("resourceType") != "Task":
            todo |= referrals.of(url, entry)
    return [e for e in entries if e.get("fullUrl") in wanted]


def for_recipient(
    bundle: dict[str, Any],
    task: TaskEntry,
    *,
    recipient_id: str,
    recipient_name: str,
    owner: tuple[str, str] | None = None,
    receiver: tuple[str, str] | None = None,
    requester: tuple[str, str] | None = None,
    referrals: Referrals | None = None,
) -> dict[str, Any]:
    """A message Bundle for one recipient: a header addressed to it, its Task, and what that Task refers to.

    Other agencies' Tasks are left out: a recipient learns only of its own invitation. ``owner`` (system,
    value) replaces the Task owner's identifier, e.g. a routing address by the resolved organisation's own;
    the Task then gets that organisation's Task id in the process (:func:`task_id_for`), the id its answers
    name. ``requester`` likewise replaces a routing address as the Task's (and its ServiceRequest's)
    requester. ``receiver`` (system, value) addresses the header to another organisation than the Task's
    owner: an answer's Task stays owned by the answering unit and goes to the one that asked.

    ``referrals``: what the entries of ``bundle`` refer to, kept from another recipient of the same Bundle
    (the result is the same without; one is made for ``bundle`` when it is missing or made for another).

    Nothing in ``bundle`` is changed, but the result shares the parts it does not change with it (copying
    them cost a third of the routing time): treat both as read-only, or deep-copy before changing.
    """
    system, value = owner or (task.owner_system, task.owner_value)
    entries = _entries(bundle)
    message_id = deterministic_id(str(bundle.get("id")), recipient_id)
    header = dict(entries[0]["resource"])
    header["id"] = deterministic_id(message_id, "header")
    header["focus"] = [{"reference": task.full_url}]
    to_system, to_value = receiver or (system, value)
    header["destination"] = [
        {
            "name": recipient_name,
            "endpoint": f"{DESTINATION_ENDPOINT_PREFIX}{recipient_id}",
            "receiver": {
                "type": "Organization",
                "identifier": {"system": to_system, "value": to_value},
            },
        }
    ]
    if referrals is None or referrals.bundle is not bundle:
        referrals = Referrals(bundle)
    supporting = _referred(entries[1:], task, referrals)
    projected = {key: item for key, item in bundle.items() if key != "entry"}
    projected["id"] = message_id
    own_task = dict(task.resource)
    own_task["owner"] = {**task.resource.get("owner", {}), "identifier": {"system": system, "value": value}}
    full_url = task.full_url
    process_id = task.resource.get("groupIdentifier", {}).get("value")
    if owner is not None and isinstance(process_id, str):
        own_task["id"] = task_id_for(process_id, {"system": system, "value": value})
        own_task["identifier"] = [{"system": TASK_ID_SYSTEM, "value": own_task["id"]}]
        full_url = urn(own_task["id"])
        header["focus"] = [{"reference": full_url}]
    if requester is not None:
        own_task["requester"] = _organisation(requester)
        if "sender" not in header:
            header["sender"] = header["responsible"] = _organisation(requester)
    supporting = [_resolved_request(e, owner=owner, requester=requester) for e in supporting]
    projected["entry"] = [
        {"fullUrl": urn(header["id"]), "resource": header},
        {"fullUrl": full_url, "resource": own_task},
        *supporting,
    ]
    return projected


def _organisation(identifier: tuple[str, str]) -> dict[str, Any]:
    return {"type": "Organization", "identifier": {"system": identifier[0], "value": identifier[1]}}


def _is_routing_address(reference: object) -> bool:
    return (
        isinstance(reference, dict)
        and reference.get("identifier", {}).get("system") == ROUTING_ADDRESS_SYSTEM
    )


def _resolved_request(
    entry: dict[str, Any], *, owner: tuple[str, str] | None, requester: tuple[str, str] | None
) -> dict[str, Any]:
    """A ServiceRequest with the resolved organisations in place of routing addresses (others as they are)."""
    resource = entry.get("resource", {})
    if resource.get("resourceType") != "ServiceRequest":
        return entry
    changed = dict(resource)
    if owner is not None and any(_is_routing_address(p) for p in resource.get("performer", ())):
        changed["performer"] = [_organisation(owner)]
    if requester is not None and _is_routing_address(resource.get("requester")):
        changed["requester"] = _organisation(requester)
    return {**entry, "resource": changed} if changed != resource else entry
