"""Editor login and logout, and the guard that every editor page goes through.

The session is a signed cookie (HttpOnly, SameSite=Lax, Secure when the base URL is
https) holding the editor's id, a stamp of their password hash and the CSRF token.
Logging in starts a fresh session, so a session id planted before login is worthless.
A new password changes the stamp and so ends every session started with the old one:
the way to shut out someone holding a copied cookie, short of changing the instance's
secret key (which would also break every unsubscribe link already sent).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter import db, users
from newsletter.models import User
from newsletter.web.csrf import csrf_token
from newsletter.web.templating import page

SESSION_USER = "editor_id"
SESSION_STAMP = "stamp"
Endpoint = Callable[[Request], Awaitable[Response]]


def client_ip(request: Request) -> str:
    """The client's address as the server saw it (a proxy must pass it on via uvicorn)."""
    return request.client.host if request.client else "unknown"


def safe_next(target: str) -> str:
    """Return ``target`` when it is a path inside the editor area, else the issues list."""
    if target.startswith("/editor/") and not target.startswith("//"):
        return target
    return "/editor/"


def password_stamp(key: bytes, password_hash: str) -> str:
    """A keyed digest of the password hash: it changes with the password, reveals nothing."""
    message = b"newsletter web session stamp\x00" + password_hash.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def _load_editor(settings_url: str, user_id: int) -> User | None:
    with db.transaction(settings_url) as session:
        return session.get(User, user_id)


def _session_editor(request: Request, user: User | None) -> User | None:
    """The editor, when the session was started with their current password."""
    stamp = request.session.get(SESSION_STAMP)
    if user is None or not isinstance(stamp, str):
        return None
    expected = password_stamp(request.app.state.settings.key(), user.password_hash)
    return user if hmac.compare_digest(stamp, expected) else None


def editor_only(endpoint: Endpoint) -> Endpoint:
    """Let logged-in editors through; send others to the login page (or 401 for scripts)."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        user_id = request.session.get(SESSION_USER)
        user = None
        if isinstance(user_id, int):
            user = await run_in_threadpool(
                _load_editor, request.app.state.settings.database, user_id
            )
        user = _session_editor(request, user)
        if user is None:
            if request.method != "GET" or request.headers.get("accept") == "text/event-stream":
                return PlainTextResponse("login required", status_code=401)
            target = quote(
                request.url.path + ("?" + request.url.query if request.url.query else "")
            )
            return RedirectResponse(f"/editor/login?next={target}", status_code=303)
        request.scope["editor_email"] = user.email
        request.scope["editor_id"] = user.id
        return await endpoint(request)

    return guarded


async def login_form(request: Request) -> Response:
    """Show the login form."""
    return page(request, "login.html", {"next": safe_next(request.query_params.get("next", ""))})


async def login(request: Request) -> Response:
    """Check the password (rate limited), then start a fresh session."""
    form = await request.form()
    email = str(form.get("email", ""))
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    settings = request.app.state.settings
    result = await run_in_threadpool(
        users.authenticate, settings.database, email, password, client_ip(request)
    )
    if result.user is None:
        message = "login.throttled" if result.throttled else "login.failed"
        context = {"next": target, "error": message, "email": email}
        return page(request, "login.html", context, status_code=429 if result.throttled else 401)
    request.session.clear()
    request.session[SESSION_USER] = result.user.id
    request.session[SESSION_STAMP] = password_stamp(settings.key(), result.user.password_hash)
    csrf_token(request)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    """End the session."""
    request.session.clear()
    return RedirectResponse("/editor/login", status_code=303)


routes = [
    Route("/editor/login", login_form, methods=["GET"]),
    Route("/editor/login", login, methods=["POST"]),
    Route("/editor/logout", logout, methods=["POST"]),
]
