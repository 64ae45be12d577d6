"""Adapters: validate an inbound agency event and translate it into canonical FHIR messages.

Nothing else happens here: no Kafka, no database, no keys. This package imports only ``contracts``.
One module per source: :mod:`sambus.adapters.school`, :mod:`sambus.adapters.social`,
:mod:`sambus.adapters.ehr`,
:mod:`sambus.adapters.sip` (SIP lifecycle).
"""

from __future__ import annotations

from sambus.adapters._dispatch import CATALOGUE, CatalogueEntry, translate, translate_message

__all__ = ["CATALOGUE", "CatalogueEntry", "translate", "translate_message"]
