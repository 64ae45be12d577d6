"""Databases for the tests, made as in production: by the migrations (``sambus db upgrade``)."""

from __future__ import annotations

from sambus.router.service.schema import create_engine, upgrade


def upgraded(database_url: str) -> str:
    """Run the migrations on ``database_url`` as ``sambus db upgrade`` does; returns the URL."""
    engine = create_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return database_url
