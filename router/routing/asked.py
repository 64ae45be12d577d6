"""Who asked: the process state's answer to "whom does this answer go back to?".

An answer (a Task status, a 2017:209 statement, an LVU § 32 result, a SIP answer) goes to the organisation
that asked the answering unit, as the process state recorded it when the request was delivered, never to
an organisation the answer itself names (it might name the answering unit, or anyone).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sambus.contracts.fhir import EventCode


class AskedTasks(Protocol):
    """The requesters of the Tasks a process gave each organisation (the ``processes`` stage keeps them)."""

    def askers(self, process_id: str, *, answerer: str, task_id: str | None) -> frozenset[str] | None:
        """The directory ids of the organisations that asked ``answerer`` something in ``process_id``.

        With ``task_id``, only the requester of that Task (when ``answerer`` owns it). ``None`` when the
        process, or the Task named, is not known (yet); an empty set when it is known and ``answerer`` was
        asked nothing there.
        """
        ...


class NoProcessState:
    """A null object for tools that route without process state: every process is unknown."""

    def askers(self, process_id: str, *, answerer: str, task_id: str | None) -> frozenset[str] | None:
        """Nothing is known."""
        del process_id, answerer, task_id
        return None


@runtime_checkable
class AskedRequests(Protocol):
    """What a process's request was, so its answers go on its basis (the ``processes`` stage keeps it)."""

    def request_of(self, process_id: str) -> tuple[EventCode, str | None] | None:
        """The event that started ``process_id`` and the provision assessed for it, or ``None`` if unknown."""
        ...


EQUIVALENT_EXAM_ACCEPTED = "reminder-closed"
"""The state of an ``equivalent-health-exam-exists`` process that closed a placement's waiting reminder."""
EQUIVALENT_EXAM_REFUSED = "refused-no-placement-waiting"
"""The state of one that found no placement of the child waiting for its 2017:209 request."""


@runtime_checkable
class ProcessStates(Protocol):
    """Where a process stands (the ``processes`` stage keeps it): what a message that asks nothing did."""

    def state_of(self, process_id: str) -> str | None:
        """The state of ``process_id``, or ``None`` when the process state has not applied it (yet)."""
        ...
