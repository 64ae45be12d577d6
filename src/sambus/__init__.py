"""sambus: messaging middleware for Swedish agencies that share the care of a child.

One import name for the four parts: :mod:`sambus.contracts` (the published contract: events, topics, FHIR
builders), :mod:`sambus.adapters` (agency events to FHIR messages), :mod:`sambus.consent` (consent, secrecy
and the decision ledger) and :mod:`sambus.router` (the running service, its CLI and web pages).
"""
