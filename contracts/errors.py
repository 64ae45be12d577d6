"""The project's exceptions: one root, and a ``retriable`` flag the router decides on.

Also the one place where errors of the libraries sambus stands on become sambus errors
(:func:`map_errors`), as httpx maps transport errors in one place.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    """A database sambus keeps (consent registry, ledger, process state, ...) cannot be reached."""

    retriable = True
    code = "store_unavailable"


_MAPPED: tuple[tuple[str, str, Callable[[str, Exception], SambusError]], ...] = (
    # A database error's text may quote the statement's parameters (a personnummer): it is not repeated.
    ("sqlalchemy.exc", "SQLAlchemyError", lambda doing, _: StoreUnavailableError(f"cannot {doing}")),
    ("aiokafka.errors", "KafkaError", lambda doing, exc: BrokerUnavailableError(f"cannot {doing}: {exc}")),
)
"""(module, exception class, the sambus error it becomes): SQLAlchemy's errors are the database's, aiokafka's
the broker's. Looked up among the modules already imported, so importing this module imports neither."""


def sambus_error(exc: Exception, doing: str) -> SambusError | None:
    """The sambus error a database or broker error becomes while ``doing`` ("read the ledger"), or None."""
    if isinstance(exc, SambusError):
        return None
    for module, name, make in _MAPPED:
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type) and isinstance(exc, kind):
            return make(doing, exc)
    return None


@contextmanager
def map_errors(doing: str) -> Iterator[None]:
    """Database errors become :class:`StoreUnavailableError`, broker errors :class:`BrokerUnavailableError`.

    ``doing`` says what failed, after "cannot": ``with map_errors("read the decision ledger"): ...``. Other
    exceptions pass unchanged. Works around ``await`` too, and as a decorator of a synchronous function.
    """
    try:
        yield
    except Exception as exc:
        mapped = sambus_error(exc, doing)
        if mapped is None:
            raise
        raise mapped from exc


_ERROR_CODES = ("sqlstate", "pgcode", "sqlite_errorname")
"""Attributes naming a database error's kind: psycopg's SQLSTATE, sqlite3's ``SQLITE_BUSY`` and the like."""


def cause_chain(exc: BaseException, *, limit: int = 6) -> str:
    """What led to ``exc``, for a log line: each exception's type and database error code, never a message.

    ``StoreUnavailableError <- OperationalError <- SerializationFailure [40001]``. A database error's text
    may quote the statement's parameters (a personnummer); its type and code say why without them.
    """
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < limit:
        seen.add(id(current))
        codes = [getattr(current, name, None) for name in _ERROR_CODES]
        code = next((c for c in codes if isinstance(c, str) and c), None)
        parts.append(f"{type(current).__name__} [{code}]" if code else type(current).__name__)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return " <- ".join(parts)


class ProcessNotKnownError(RoutingError):
    """An answer names a process (or a Task in it) the process state does not hold yet.

    Retriable: the request it answers may still be on its way through the ``processes`` stage. An answer to a
    process sambus never carried goes to the dead-letter topic once the retries are spent.
    """

    retriable = True
    code = "process_not_known"


class TooLargeError(InvalidEventError):
    """A message is larger than sambus accepts (see :mod:`sambus.contracts.bounded_json`)."""

    code = "too_large"


class TooDeepError(InvalidEventError):
    """A JSON message is nested deeper than sambus accepts (see :mod:`sambus.contracts.bounded_json`)."""

    code = "too_deep"


class OutputTooLargeError(SambusError):
    """A record sambus would produce is larger than Kafka accepts; its input is dead-lettered instead."""

    code = "output_too_large"
