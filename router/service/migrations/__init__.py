"""Alembic migrations of every table sambus keeps (see :mod:`sambus.router.service.schema`)."""
