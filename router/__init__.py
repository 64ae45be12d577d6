"""The running service: routing, delivery, the CLI. The composition root: it may import every package."""

from __future__ import annotations

from router.bootstrap import Sambus, bootstrap
from router.local_kafka import LocalKafka
from router.settings import Settings

__all__ = ["LocalKafka", "Sambus", "Settings", "bootstrap"]
