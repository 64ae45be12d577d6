"""Adapters: validate an inbound agency event and translate it into canonical FHIR messages.

Nothing else happens here: no Kafka, no database, no keys. This package imports only ``contracts``.
"""

from __future__ import annotations

from adapters._dispatch import translate, translate_message

__all__ = ["translate", "translate_message"]
