"""The HTTP service: health, readiness, metrics, the operations and compliance pages, with roles.

``app`` (routes and :class:`~sambus.router.web.app.WebServices`), ``auth`` (roles, the Authenticator protocol,
bearer tokens), ``audit``, ``ledger`` (the LedgerReader protocol), ``charts``, ``wiring`` (services from a
wired sambus, uvicorn) and ``cli`` (``sambus serve``). Nothing is imported here, so the CLI starts without
loading FastAPI.
"""
