"""Browser-facing protections: security headers, CSRF tokens with an Origin check, login throttling.

* Every response carries a Content-Security-Policy (only this origin's styles, no scripts, no framing),
  ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin`` and
  ``Cache-Control: no-store``.
* A state-changing request (POST, PUT, PATCH, DELETE) from another origin is refused (``Origin``, else
  ``Referer``, else ``Sec-Fetch-Site``). One that a browser could send with ambient credentials (no
  ``Authorization`` header: the login cookie, or the login form itself) must also carry the CSRF token of
  its ``sambus_csrf`` cookie, in a ``csrf_token`` form field or an ``X-CSRF-Token`` header. The token is an
  HMAC of the cookie under a server key, compared in constant time.
* Failed logins are limited per client address (:class:`LoginThrottle`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, Response

CSRF_COOKIE = "sambus_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make browsers send "Origin: null" on forms
    "Cache-Control": "no-store",
}


async def add_security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """HTTP middleware: the security headers on every response, errors included."""
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


def same_origin(request: Request) -> bool:
    """Whether a request comes from this service's own pages (or from no browser page at all)."""
    own = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}".lower()
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == own
    referer = request.headers.get("referer")
    if referer is not None:
        return _origin(referer) == own
    return request.headers.get("sec-fetch-site", "same-origin") in {"same-origin", "none"}


class CsrfGuard:
    """Issues and checks CSRF tokens bound to the browser's ``sambus_csrf`` cookie."""

    def __init__(self, key: bytes | None = None, *, secure_cookie: bool = True) -> None:
        """Sign tokens with ``key`` (random per process when not given)."""
        self._key = key or secrets.token_bytes(32)
        self.secure_cookie = secure_cookie

    def _token(self, cookie: str) -> str:
        return hmac.new(self._key, f"csrf|{cookie}".encode(), hashlib.sha256).hexdigest()

    def issue(self, request: Request) -> tuple[str, str | None]:
        """``(token for the page's forms, new cookie value or None when the browser has one)``."""
        cookie = request.cookies.get(CSRF_COOKIE)
        fresh = None
        if not cookie:
            cookie = fresh = secrets.token_urlsafe(32)
        return self._token(cookie), fresh

    def set_cookie(self, response: Response, value: str) -> None:
        """Give the browser its CSRF cookie (HttpOnly, SameSite=Strict, Secure unless configured off)."""
        response.set_cookie(
            CSRF_COOKIE, value, httponly=True, samesite="strict", secure=self.secure_cookie, path="/"
        )

    @staticmethod
    async def check_origin(request: Request) -> None:
        """A dependency of every route: refuse a state-changing request from another origin.

        Raises:
            HTTPException: 403.
        """
        if request.method in UNSAFE_METHODS and not same_origin(request):
            raise HTTPException(403, "cross-site request refused: it does not come from this service's pages")

    async def check_token(self, request: Request) -> None:
        """Refuse a state-changing request without the CSRF token of the browser's CSRF cookie.

        Called for requests a browser sends with ambient credentials: the login cookie, the login form.

        Raises:
            HTTPException: 403 naming what is missing.
        """
        if request.method not in UNSAFE_METHODS:
            return
        cookie = request.cookies.get(CSRF_COOKIE)
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            value = (await request.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not cookie or not sent or not hmac.compare_digest(sent, self._token(cookie)):
            raise HTTPException(
                403, "the form's CSRF token is missing or not valid: reload the page and try again"
            )


class LoginThrottle:
    """At most ``attempts`` failed logins per ``window_s`` seconds from one client address."""

    def __init__(
        self, attempts: int = 10, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Allow ``attempts`` failures per ``window_s`` per address."""
        self._attempts = attempts
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(client, deque())
        while failures and now - failures[0] > self._window_s:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        failures = self._recent(client)
        if len(failures) < self._attempts:
            return None
        return max(1, round(self._window_s - (self._clock() - failures[0])))

    def failed(self, client: str) -> None:
        """Count a failed login."""
        self._recent(client).append(self._clock())
        if len(self._failures) > 10_000:  # noqa: PLR2004 - bound the memory an address scan can take
            for stale in [c for c, f in self._failures.items() if not f]:
                del self._failures[stale]
