"""The HTTP service: health, readiness, Prometheus metrics, the operations and compliance pages and APIs.

Every endpoint but the probes (``/health``, ``/ready``) and the login form needs a bearer token (an
``Authorization`` header, or the cookie the login form sets) and a role. The probes say only whether the
process is up and which of the broker and the database answer: no names, no data, no configuration.
Operators see queues and dead letters, never personal data; compliance officers search and verify the
decision ledger, and every search, export and verification is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sambus.consent import Outcome, Pseudonymizer
from sambus.consent.compliance import LedgerEntry, LedgerQuery, csv_text
from sambus.contracts.errors import SambusError
from sambus.contracts.identifiers import parse_personnummer
from sambus.router.kafka.dead_letters import DeadLetters, UnknownDeadLetterError
from sambus.router.ops.metrics import METRICS, Metrics
from sambus.router.ops.queues import QueueSnapshot
from sambus.router.stats.indicators import Period, StatsFacts, indicators
from sambus.router.web.audit import AuditLog
from sambus.router.web.auth import Authenticator, Principal, Role
from sambus.router.web.charts import bar_chart
from sambus.router.web.ledger import LedgerReader
from sambus.router.web.security import CsrfGuard, LoginThrottle, add_security_headers

COOKIE = "sambus_token"
_HTML = "text/html"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
STYLESHEET = (Path(__file__).parent / "static" / "sambus.css").read_bytes()


class QueueSource(Protocol):
    """Where queue snapshots come from (:class:`sambus.router.ops.queues.QueueMonitor`)."""

    async def snapshot(self, *, now: dt.datetime | None = None) -> QueueSnapshot:
        """The queues as of now."""
        ...


class ReadinessCheck(Protocol):
    """One thing ``/ready`` checks (the broker, the database)."""

    @property
    def name(self) -> str:
        """What is checked."""
        ...

    async def __call__(self) -> bool:
        """Whether it answers."""
        ...


@dataclass
class WebServices:
    """What the web app reads and acts on; wired in :func:`sambus.router.web.wiring.web_services`."""

    authenticator: Authenticator
    queues: QueueSource
    dead_letters: DeadLetters
    ledger: LedgerReader
    audit: AuditLog
    pseudonymizer: Pseudonymizer
    stats: StatsFacts
    readiness: Sequence[ReadinessCheck] = ()
    metrics: Metrics = METRICS
    cookie_secure: bool = True
    """Cookies get ``Secure`` (only sent over HTTPS); ``SAMBUS_WEB_COOKIE_SECURE=false`` for plain-HTTP
    development."""
    login_attempts: int = 10
    """Failed logins allowed per minute from one address."""
    csrf_key: bytes | None = None
    """Signs CSRF tokens; random per process when not given."""
    on_close: Sequence[Callable[[], None]] = ()
    """What :meth:`close` calls: stops the long-lived Kafka clients."""

    def close(self) -> None:
        """Release what the services hold (the app's shutdown calls this)."""
        for close in self.on_close:
            close()

    async def warm(self) -> None:
        """Start the Kafka clients and read the dead letters' tail, so the first page is as quick as the rest.

        The app's start-up runs this in the background; a broker that is away is tried again at the first
        request.
        """
        with contextlib.suppress(SambusError, OSError):
            await self.queues.snapshot()
            await self.dead_letters.list(limit=DEAD_LETTERS_SHOWN)


def _services(request: Request) -> WebServices:
    services: WebServices = request.app.state.services
    return services


def _token(request: Request) -> tuple[str | None, bool]:
    """The request's bearer token, and whether it came from the login cookie (a browser sends it itself)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(COOKIE)
    return cookie, cookie is not None


async def authenticated(request: Request) -> Principal:
    """The principal of the request's bearer token (header or login cookie).

    A state-changing request authenticated by the cookie must also carry the page's CSRF token.

    Raises:
        HTTPException: 401 when the token is missing or not valid; 403 when the CSRF token is.
    """
    token, by_cookie = _token(request)
    challenge = {"WWW-Authenticate": "Bearer"}
    if token is None:
        raise HTTPException(401, "a bearer token is required", headers=challenge)
    principal = _services(request).authenticator.authenticate(token)
    if principal is None:
        raise HTTPException(401, "the token is not valid", headers=challenge)
    if by_cookie:
        guard: CsrfGuard = request.app.state.csrf
        await guard.check_token(request)
    return principal


def allow(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting principals with one of ``roles`` (and admins)."""

    def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not principal.may(*roles):
            raise HTTPException(403, f"the {principal.role} role may not use this")
        return principal

    return check


Anyone = Annotated[Principal, Depends(authenticated)]
Operator = Annotated[Principal, Depends(allow(Role.OPERATOR))]
Compliance = Annotated[Principal, Depends(allow(Role.COMPLIANCE))]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]

_RECIPIENT = r"^[a-z0-9][a-z0-9-]{0,98}$"
DEAD_LETTERS_SHOWN = 100
"""The newest dead letters the operations page lists."""
SEARCH_LIMIT = 500
"""The most decisions a compliance search on the web shows."""


class LedgerSearch(BaseModel):
    """A compliance search; blank fields do not narrow it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    personnummer: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    recipient: str | None = Field(default=None, pattern=_RECIPIENT)
    outcome: Outcome | None = None

    @classmethod
    def from_form(cls, fields: dict[str, str]) -> LedgerSearch:
        """From form fields, blanks as missing.

        Raises:
            HTTPException: 422 naming the field and problem (never echoing the value).
        """
        try:
            return cls.model_validate({k: v.strip() for k, v in fields.items() if v and v.strip()})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise HTTPException(422, problems) from exc

    def query(self, pseudonymizer: Pseudonymizer) -> LedgerQuery:
        """The ledger query, with the personnummer replaced by the child's pseudonym.

        Raises:
            HTTPException: 422 when the personnummer is not valid (the message does not repeat it).
        """
        child = None
        if self.personnummer:
            try:
                child = pseudonymizer.of(parse_personnummer(self.personnummer))
            except ValueError as exc:
                raise HTTPException(422, f"personnummer: {exc}") from exc
        return LedgerQuery(
            child=child,
            since=_day_start(self.since) if self.since else None,
            until=_day_start(self.until + dt.timedelta(days=1)) if self.until else None,  # inclusive
            recipient_id=self.recipient,
            outcome=str(self.outcome) if self.outcome else None,
            limit=SEARCH_LIMIT,
        )


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _search_form(
    personnummer: Annotated[str, Form()] = "",
    since: Annotated[str, Form()] = "",
    until: Annotated[str, Form()] = "",
    recipient: Annotated[str, Form()] = "",
    outcome: Annotated[str, Form()] = "",
) -> dict[str, str]:
    return {
        "personnummer": personnummer,
        "since": since,
        "until": until,
        "recipient": recipient,
        "outcome": outcome,
    }


SearchForm = Annotated[dict[str, str], Depends(_search_form)]


def _criteria(query: LedgerQuery) -> dict[str, str]:
    return {k: str(v) for k, v in query.filters().items() if k != "limit"}


def _search(request: Request, who: Principal, search: LedgerSearch, action: str) -> Sequence[LedgerEntry]:
    services = _services(request)
    query = search.query(services.pseudonymizer)
    found = services.ledger.search(query)
    services.audit.record(who, action, _criteria(query), results=len(found))
    return found


def _home(principal: Principal) -> str:
    return "/compliance" if principal.role is Role.COMPLIANCE else "/operations"


def create_app(services: WebServices) -> FastAPI:  # noqa: C901, PLR0915 - one route table, read top-down
    """The web application over ``services``."""
    guard = CsrfGuard(services.csrf_key, secure_cookie=services.cookie_secure)
    throttle = LoginThrottle(services.login_attempts)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warming = asyncio.create_task(services.warm())
        try:
            yield
        finally:
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warming
            await asyncio.to_thread(services.close)

    app = FastAPI(
        lifespan=lifespan,
        title="sambus",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(guard.check_origin)],
    )
    app.state.services = services
    app.state.csrf = guard
    app.middleware("http")(add_security_headers)

    def render(
        request: Request,
        name: str,
        context: dict[str, Any],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """A page, with the CSRF token its forms carry (and the browser's CSRF cookie when it has none)."""
        token, fresh = guard.issue(request)
        response = templates.TemplateResponse(
            request, name, {**context, "csrf_token": token}, status_code=status_code, headers=headers
        )
        if fresh is not None:
            guard.set_cookie(response, fresh)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _HTML in request.headers.get("accept", ""):
            return render(
                request,
                "error.html",
                {"status": exc.status_code, "detail": exc.detail, "principal": None},
                status_code=exc.status_code,
                headers=getattr(exc, "headers", None),
            )
        return await http_exception_handler(request, exc)

    @app.get("/static/sambus.css")
    async def stylesheet() -> Response:
        """The pages' styles (a file of this origin, so the Content-Security-Policy needs no inline style)."""
        return Response(STYLESHEET, media_type="text/css")

    @app.exception_handler(SambusError)
    async def _unavailable(request: Request, exc: SambusError) -> Response:  # noqa: ARG001
        status = 503 if exc.retriable else 400
        return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process is up (no token, as probes go)."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness (no token): 200 when broker and database answer, else 503 naming what does not."""
        checks = {check.name: await check() for check in services.readiness}
        missing = [name for name, ok in checks.items() if not ok]
        return JSONResponse(
            {"ready": not missing, "checks": checks, "missing": missing}, status_code=503 if missing else 200
        )

    @app.get("/metrics")
    async def metrics(_: Operator) -> Response:
        """Prometheus metrics; lag, dead letters and parked are read from the broker at each scrape."""
        with contextlib.suppress(SambusError):  # the counters are worth scraping while the broker is away
            services.metrics.observe_queues(await services.queues.snapshot())
        return PlainTextResponse(services.metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        """The login form (paste a token)."""
        return render(request, "login.html", {"principal": None, "error": None})

    @app.post("/login")
    async def login(request: Request, token: Annotated[str, Form()]) -> Response:
        """Check the token and keep it in a cookie (HttpOnly, SameSite=Strict, Secure); failures limited."""
        await guard.check_token(request)
        client = request.client.host if request.client else "unknown"
        wait = throttle.retry_after(client)
        if wait is not None:
            return render(
                request,
                "login.html",
                {"principal": None, "error": f"Too many failed logins: try again in {wait} s."},
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        principal = services.authenticator.authenticate(token.strip())
        if principal is None:
            throttle.failed(client)
            return render(
                request,
                "login.html",
                {"principal": None, "error": "That token is not valid."},
                status_code=401,
            )
        response = RedirectResponse(_home(principal), status_code=303)
        response.set_cookie(
            COOKIE, token.strip(), httponly=True, samesite="strict", secure=services.cookie_secure, path="/"
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        """Forget the login cookie."""
        await guard.check_token(request)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(
            COOKIE, httponly=True, samesite="strict", secure=services.cookie_secure, path="/"
        )
        return response

    @app.get("/")
    async def home(who: Anyone) -> Response:
        """The page of the principal's role."""
        return RedirectResponse(_home(who), status_code=303)

    @app.get("/operations", response_class=HTMLResponse)
    async def operations(
        request: Request,
        who: Operator,
        replayed: str | None = None,
        to: str | None = None,
        period: str | None = None,
    ) -> Response:
        """Queues, lag, dead letters (with replay), overdue deadlines and the follow-up indicators."""
        snapshot, letters = await asyncio.gather(
            services.queues.snapshot(), services.dead_letters.list(limit=DEAD_LETTERS_SHOWN)
        )
        try:
            chosen = Period.parse(period) if period else Period.latest_half(dt.datetime.now(dt.UTC).date())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        table = await asyncio.to_thread(indicators, services.stats, chosen)
        charts = [bar_chart(title, cells) for title, cells in table.chart_series()]
        return render(
            request,
            "operations.html",
            {
                "principal": who,
                "snapshot": snapshot,
                "lag_by_group": snapshot.lag_by_group(),
                "letters": letters,
                "replayed": replayed if replayed and re.fullmatch(r"\d+-\d+", replayed) else None,
                "replayed_to": to if to and re.fullmatch(r"[\w.-]+", to) else None,
                "period": chosen,
                "stats": table,
                "charts": charts,
            },
        )

    @app.post("/operations/dead-letters/{letter_id}/replay")
    async def replay_form(letter_id: str, _: Operator) -> Response:
        """Replay a dead letter from the operations page."""
        try:
            topic = await services.dead_letters.replay(letter_id)
        except UnknownDeadLetterError as exc:
            raise HTTPException(404, str(exc)) from exc
        return RedirectResponse(f"/operations?replayed={letter_id}&to={topic}", status_code=303)

    @app.get("/api/queues")
    async def api_queues(_: Operator) -> dict[str, Any]:
        """The queue snapshot as JSON."""
        return (await services.queues.snapshot()).to_json()

    @app.get("/api/dead-letters")
    async def api_dead_letters(_: Operator) -> list[dict[str, Any]]:
        """The dead letters (where from and why, never their content)."""
        return [d.summary() for d in await services.dead_letters.list()]

    @app.post("/api/dead-letters/{letter_id}/replay")
    async def api_replay(letter_id: str, _: Operator) -> dict[str, str]:
        """Publish a dead letter again on its source topic."""
        try:
            topic = await services.dead_letters.replay(letter_id)
        except UnknownDeadLetterError as exc:
            raise HTTPException(404, str(exc)) from exc
        return {"replayed": letter_id, "to": topic}

    @app.get("/api/stats")
    async def api_stats(_: Operator, period: str, fmt: str = "json") -> Response:
        """The follow-up indicators for a half-year (``2026H1``) or a year (``2026``), as JSON or CSV."""
        try:
            chosen = Period.parse(period)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        table = await asyncio.to_thread(indicators, services.stats, chosen)
        if fmt == "csv":
            return PlainTextResponse(table.to_csv(), media_type="text/csv")
        return JSONResponse(table.to_json())

    @app.get("/compliance", response_class=HTMLResponse)
    async def compliance(request: Request, who: Compliance) -> Response:
        """The ledger search form."""
        return render(
            request,
            "compliance.html",
            {"principal": who, "search": None, "results": None, "verification": None},
        )

    @app.post("/compliance", response_class=HTMLResponse)
    async def compliance_search(request: Request, who: Compliance, form: SearchForm) -> Response:
        """Search the ledger (audited)."""
        results = await asyncio.to_thread(_search, request, who, LedgerSearch.from_form(form), "search")
        return render(
            request,
            "compliance.html",
            {"principal": who, "search": form, "results": results, "verification": None},
        )

    @app.post("/compliance/export")
    async def compliance_export(request: Request, who: Compliance, form: SearchForm) -> Response:
        """The search's decisions as CSV (audited)."""
        results = await asyncio.to_thread(_search, request, who, LedgerSearch.from_form(form), "export")
        return PlainTextResponse(
            csv_text(results),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="sambus-decisions.csv"'},
        )

    @app.post("/compliance/verify", response_class=HTMLResponse)
    async def compliance_verify(request: Request, who: Compliance) -> Response:
        """Verify the ledger (audited); the whole ledger is read, in a worker thread."""
        verification = await asyncio.to_thread(services.ledger.verify)
        await asyncio.to_thread(services.audit.record, who, "verify", {}, results=verification.checked)
        return render(
            request,
            "compliance.html",
            {"principal": who, "search": None, "results": None, "verification": verification},
        )

    @app.post("/api/ledger/search")
    async def api_ledger_search(
        request: Request, who: Compliance, search: LedgerSearch
    ) -> list[dict[str, Any]]:
        """Search the ledger (audited)."""
        return [r.to_json() for r in await asyncio.to_thread(_search, request, who, search, "search")]

    @app.post("/api/ledger/verify")
    async def api_ledger_verify(who: Compliance) -> dict[str, Any]:
        """Verify the ledger (audited); the whole ledger is read, in a worker thread."""
        verification = await asyncio.to_thread(services.ledger.verify)
        await asyncio.to_thread(services.audit.record, who, "verify", {}, results=verification.checked)
        return asdict(verification)

    @app.get("/api/audit")
    async def api_audit(_: Admin) -> list[dict[str, Any]]:
        """The audit log, newest first (admins only)."""
        return [
            {**asdict(e), "at": e.at.isoformat()} for e in await asyncio.to_thread(services.audit.entries)
        ]

    return app
