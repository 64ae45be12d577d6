"""The project's exceptions: one root, and a ``retriable`` flag the router decides on."""

from __future__ import annotations

from typing import ClassVar


class SambusError(Exception):
    """Root of every error sambus raises on purpose.

    Attributes:
        retriable: whether trying the same thing again later may succeed. The router retries a
            retriable error with back-off and sends anything else straight to the dead-letter topic.
        code: a short, stable machine-readable name, used in dead-letter headers and metrics.
    """

    retriable: ClassVar[bool] = False
    code: ClassVar[str] = "error"


class InvalidEventError(SambusError):
    """An inbound event cannot be accepted: bad bytes, bad JSON, an unknown type or an invalid field.

    The message names the field and the problem but never repeats the offending value, because the
    value may be a personal identity number.
    """

    code = "invalid_event"

    def __init__(self, problem: str, *, field: str | None = None) -> None:
        """Describe the problem, and the field it is in when there is one."""
        self.problem = problem
        self.field = field
        super().__init__(f"{field}: {problem}" if field else problem)


class InvalidIntentError(SambusError):
    """A message on ``sambus.intents`` does not have the shape the router needs."""

    code = "invalid_intent"


class RoutingError(SambusError):
    """A recipient named in a message is not in the routing directory."""

    code = "unknown_recipient"


class ConfigError(SambusError):
    """Settings, the routing directory or the rule set are missing or invalid."""

    code = "config_error"


class BrokerUnavailableError(SambusError):
    """The Kafka broker cannot be reached or started."""

    retriable = True
    code = "broker_unavailable"


class StoreUnavailableError(SambusError):
    """The consent registry's database cannot be reached."""

    retriable = True
    code = "store_unavailable"


class ProcessNotKnownError(RoutingError):
    """An answer names a process (or a Task in it) the process state does not hold yet.

    Retriable: the request it answers may still be on its way through the ``processes`` stage. An answer to a
    process sambus never carried goes to the dead-letter topic once the retries are spent.
    """

    retriable = True
    code = "process_not_known"
