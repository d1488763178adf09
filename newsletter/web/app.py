"""The application factory: one Starlette app for the editors' area and the public pages."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.db import database_error
from newsletter.settings import Settings
from newsletter.web import (
    admin,
    approvals,
    audience,
    auth,
    campaigns,
    clicks,
    editor,
    feed,
    history,
    public,
    statement,
    writing,
)
from newsletter.web.csrf import CsrfMiddleware
from newsletter.web.dispatch import Dispatcher
from newsletter.web.logs import redact
from newsletter.web.media import routes as media_routes
from newsletter.web.preview import PreviewHub
from newsletter.web.signup import ResendGuard
from newsletter.web.sponsors import routes as sponsor_routes
from newsletter.web.templating import make_templates, page

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "newsletter_session"
SESSION_SECONDS = int(auth.SESSION_LIFETIME.total_seconds())

# Pages of the app itself: scripts and styles only from our own /static/, frames only ours.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
DEFAULT_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    # Token URLs (/u/, /p/, /v/) must not leak to sites linked from those pages.
    "referrer-policy": "no-referrer",
    "x-frame-options": "SAMEORIGIN",
}
# Seconds a client is asked to wait after a 503 (the database away).
RETRY_AFTER = {"retry-after": "30"}


class SecurityHeaders:
    """Add ``DEFAULT_HEADERS`` to every response that has not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in DEFAULT_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def session_secret(settings: Settings) -> str:
    """A key for session cookies derived from the instance key, apart from the token key."""
    return hmac.new(settings.key(), b"newsletter web session", hashlib.sha256).hexdigest()


async def csrf_refused(scope: Scope, receive: Receive, send: Send) -> None:
    """The 403 page for a state-changing request without a valid CSRF token."""
    request = Request(scope, receive)
    response = page(
        request, "error.html", {"title": "csrf.title", "body": "csrf.body"}, status_code=403
    )
    await response(scope, receive, send)


async def not_found(request: Request, exc: Exception) -> Response:
    """A page for unknown URLs and other HTTP errors, in the visitor's language."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    context = {"title": "notfound.title", "body": ""}
    return page(request, "error.html", context, status_code=status)


async def database_down(request: Request, exc: Exception) -> Response:
    """A 503 page when the database is unavailable, full or locked; logged here, one line.

    Any other database error is a bug: it is raised again, to the 500 page and its traceback.
    """
    mapped = database_error(exc, request.app.state.settings.database)
    if mapped is None:
        raise exc
    log.error("%s %s: %s: %s", request.method, redact(request.url.path), mapped.what, mapped.fix)
    context = {"title": "dbdown.title", "body": "dbdown.body"}
    return page(request, "error.html", context, status_code=503, headers=RETRY_AFTER)


async def home(request: Request) -> Response:
    """The root shows the public archive."""
    return RedirectResponse("/archive", status_code=303)


def create_app(settings: Settings, *, watch: bool = True) -> Starlette:
    """Build the web app for ``settings``; ``watch`` turns on live reload of previews."""
    hub = PreviewHub(settings, watch=watch)
    dispatcher = Dispatcher(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with hub.running(), dispatcher.running():
            yield

    routes = [
        Route("/", home),
        *auth.routes,
        *writing.routes,  # before editor's: /editor/issues/new is not a slug
        *history.routes,
        *editor.routes,
        *approvals.routes,  # before campaigns': /approve, /start are not steering actions
        *campaigns.routes,
        *audience.routes,
        *admin.routes,
        *media_routes,
        *sponsor_routes,
        *clicks.routes,
        *feed.routes,  # before public's: /archive/feed.xml is not an issue
        *public.routes,
        *statement.routes,
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    auth.guard_routes(routes)  # every editor route behind permissions.ROUTES
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret(settings),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_SECONDS,
            same_site="lax",
            https_only=settings.base_url.startswith("https://"),
        ),
        Middleware(CsrfMiddleware, refuse=csrf_refused),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: not_found, SQLAlchemyError: database_down},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = make_templates()
    app.state.hub = hub
    app.state.dispatcher = dispatcher
    app.state.resend_guard = ResendGuard()
    return app
