"""Alembic's environment for sambus: runs the migrations on the connection it is given.

There is no ``alembic.ini``: :mod:`sambus.router.service.schema` makes the configuration and passes the open
connection (and, to compare or autogenerate, the tables the code describes) in ``config.attributes``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config
connection: sa.Connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes.get("target_metadata"),
    render_as_batch=True,  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
