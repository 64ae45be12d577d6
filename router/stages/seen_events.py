"""Which inbound events already became committed intents, so a re-sent event makes no second intent.

An intent's message id is deterministic (source system + event id), so it names the event. Ids are
gathered while a batch is handled and written only once the batch's Kafka transaction has committed
(:class:`sambus.router.stages.transactional.TransactionHooks`); an aborted batch forgets them, so its events
are handled again
and never lost. Duplicates inside one batch are caught in memory.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from sambus.contracts.errors import map_errors
from sambus.router.stages.id_reads import ids_among, ids_in

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

seen_events = sa.Table(
    "sambus_seen_events",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
)

_SEEN = sa.select(seen_events.c.message_id).where(seen_events.c.message_id == sa.bindparam("p_message_id"))
"""Whether an id was committed (built once: building it per intent cost more than SQLite took to run it)."""

_SEEN_ANY = ids_in(seen_events.c.message_id)
"""Which of several ids were committed (a batch's, :meth:`SeenEvents.look_up`)."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SeenEvents:
    """The message ids of committed intents, in the registry's database; a stage's transaction hooks."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], dt.datetime] = _utc_now) -> None:
        """Use ``engine`` (the registry's database, its tables made by ``sambus db upgrade``)."""
        self._engine = engine
        self._clock = clock
        self._pending: set[str] = set()
        self._looked_up: set[str] = set()  # ids read by look_up for the batch in hand...
        self._committed: set[str] = set()  # ... and which of them were committed

    def look_up(self, message_ids: Collection[str]) -> None:
        """Read at once which of ``message_ids`` (a batch's) were committed: :meth:`claim` answers from it.

        One query for the batch instead of one per intent. What was read is forgotten when the batch commits
        or aborts. Blocking: call it in a worker thread.

        Raises:
            StoreUnavailableError: the database cannot be read (retriable: the batch is read again).
        """
        wanted = sorted(set(message_ids) - self._looked_up)
        if not wanted:
            return
        with map_errors("read the seen-events table"), self._engine.connect() as connection:
            self._committed.update(ids_among(connection, _SEEN_ANY, wanted))
        self._looked_up.update(wanted)

    def claim(self, message_id: str) -> bool:
        """Whether ``message_id`` is new: not committed before and not already in this batch.

        A new id is remembered for the batch and written when the batch commits. An id :meth:`look_up` read
        is answered from what it read; any other is read now.

        Raises:
            StoreUnavailableError: the database cannot be read (retriable: the batch is read again).
        """
        if message_id in self._pending:
            return False
        if message_id in self._looked_up:
            committed = message_id in self._committed
        else:
            with map_errors("read the seen-events table"), self._engine.connect() as connection:
                committed = connection.execute(_SEEN, {"p_message_id": message_id}).first() is not None
        if committed:
            return False
        self._pending.add(message_id)
        return True

    def before_commit(self) -> None:
        """Nothing: ids are written only once their intents are committed."""

    def after_commit(self) -> None:
        """Write the batch's ids; a failure here is logged (a later re-send may then repeat an intent)."""
        pending, self._pending = self._pending, set()
        self._forget_look_up()
        if not pending:
            return
        rows = [{"message_id": m, "committed_at": self._clock()} for m in sorted(pending)]
        try:
            with self._engine.begin() as connection:
                connection.execute(sa.insert(seen_events), rows)
        except IntegrityError:
            self._insert_one_by_one(rows)
        except SQLAlchemyError as exc:
            logger.warning("could not record %d committed event ids (%s)", len(rows), type(exc).__name__)

    def _insert_one_by_one(self, rows: list[dict[str, object]]) -> None:
        # Another intake instance recorded some of them first: keep the rest.
        for row in rows:
            try:
                with self._engine.begin() as connection:
                    connection.execute(sa.insert(seen_events), [row])
            except IntegrityError:
                continue
            except SQLAlchemyError as exc:
                logger.warning("could not record a committed event id (%s)", type(exc).__name__)

    def after_abort(self) -> None:
        """Forget the batch's ids: its events will be handled again."""
        self._pending.clear()
        self._forget_look_up()

    def _forget_look_up(self) -> None:
        self._looked_up = set()
        self._committed = set()


class NoSeenEvents:
    """Remembers nothing: every event is new (for tools and tests that translate without a database)."""

    def look_up(self, message_ids: Collection[str]) -> None:
        """Nothing to read."""

    def claim(self, message_id: str) -> bool:  # noqa: ARG002 - same signature as SeenEvents.claim
        """Always new."""
        return True
