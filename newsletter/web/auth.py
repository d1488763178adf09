"""Editor login and logout, and the guard that every editor page goes through.

The session is a signed cookie (HttpOnly, SameSite=Lax, Secure when the base URL is
https) holding a random session token and the CSRF token; the server keeps the token's
hash in ``web_sessions`` (``newsletter.users``) and looks it up on every request.
Logging in starts a fresh session, so a session id planted before login is worthless.
Logging out, a new password and disabling the account delete the server's record, so a
copy of the cookie taken before is refused at once, by every web process.

Every route under ``/editor`` is wrapped in ``Guarded`` when the app is built
(``guard_routes``): it finds the session's editor and their roles, and lets the request
through only when ``permissions.ROUTES`` grants the route to one of those roles.

A successful login also leaves a device cookie: the address, and an id for this
browser, signed. Shown again at the login form, it makes the browser a trusted device
for that address, which the address's slowdown does not apply to (see ``users``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import quote

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter import audit, users
from newsletter.settings import Settings
from newsletter.web import permissions
from newsletter.web.csrf import csrf_token
from newsletter.web.templating import page

SESSION_TOKEN = "session"
SESSION_LIFETIME = users.SESSION_LIFETIME
DEVICE_COOKIE = "newsletter_device"
DEVICE_SECONDS = 180 * 24 * 3600
Endpoint = Callable[[Request], Awaitable[Response]]


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or a trusted proxy's X-Forwarded-For (web/server.py)."""
    return request.client.host if request.client else "unknown"


def safe_next(target: str) -> str:
    """Return ``target`` when it is a path inside the editor area, else the issues list."""
    if target.startswith("/editor/") and not target.startswith("//"):
        return target
    return "/editor/"


def _device_serializer(key: bytes) -> URLSafeTimedSerializer:
    secret = hmac.new(key, b"newsletter web trusted device", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(secret, salt="editor-device")


def trusted_device(request: Request, email: str) -> str:
    """The id of this browser when its device cookie is valid for ``email``, else ''."""
    raw = request.cookies.get(DEVICE_COOKIE, "")
    try:
        data = _device_serializer(request.app.state.settings.key()).loads(
            raw, max_age=DEVICE_SECONDS
        )
    except BadData:
        return ""
    if not isinstance(data, dict) or data.get("a") != email.strip().lower():
        return ""
    device = data.get("d")
    return device if isinstance(device, str) else ""


def remember_device(response: Response, settings: Settings, email: str, device: str) -> None:
    """Give the browser (again) its device cookie for ``email``; only the login form reads it."""
    value = _device_serializer(settings.key()).dumps({"a": email, "d": device})
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_SECONDS,
        path="/editor/login",
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
    )


def editor_only(endpoint: Endpoint) -> Endpoint:
    """Let logged-in editors through; send others to the login page (or 401 for scripts)."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        if "editor_id" in request.scope:  # the route's guard (web/permissions.py) checked it
            return await endpoint(request)
        token = request.session.get(SESSION_TOKEN)
        user = None
        if isinstance(token, str):
            user = await run_in_threadpool(
                users.session_user, request.app.state.settings.database, token
            )
        if user is None:
            return login_required(request)
        request.scope["editor_email"] = user.email
        request.scope["editor_id"] = user.id
        return await endpoint(request)

    return guarded


def login_required(request: Request) -> Response:
    """The login form for a page (coming back after), a 401 for scripts and forms."""
    if (
        request.method not in ("GET", "HEAD")
        or request.headers.get("accept") == "text/event-stream"
    ):
        return PlainTextResponse("login required", status_code=401)
    target = quote(request.url.path + ("?" + request.url.query if request.url.query else ""))
    return RedirectResponse(f"/editor/login?next={target}", status_code=303)


class Guarded:
    """A route's ASGI app behind the table: login first, then the route's permission."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        permission = permissions.required(request.method, self.path)
        if permission == permissions.OPEN:
            await self.app(scope, receive, send)
            return
        token = request.session.get(SESSION_TOKEN)
        found = None
        if isinstance(token, str):
            settings = request.app.state.settings
            found = await run_in_threadpool(users.session_roles, settings.database, token)
        if found is None:
            await login_required(request)(scope, receive, send)
            return
        user, roles = found
        scope.update(editor_email=user.email, editor_id=user.id, editor_roles=roles)
        if not permissions.allows(roles, permission):
            await forbidden(request)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def forbidden(request: Request) -> ASGIApp:
    """The 403 page: this account's roles do not include the page's permission."""
    context = {"title": "forbidden.title", "body": "forbidden.body"}
    return page(request, "error.html", context, status_code=403)


def guard_routes(routes: Iterable[BaseRoute], prefix: str = "") -> None:
    """Put every route under ``/editor`` (inside mounts too) behind ``Guarded``."""
    for route in routes:
        if isinstance(route, Mount):
            guard_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            path = prefix + route.path
            if path.startswith(permissions.EDITOR_AREA) and not isinstance(route.app, Guarded):
                route.app = Guarded(route.app, path)


def can(request: Request, permission: str) -> bool:
    """True when the request's editor has ``permission`` (for pages and handlers)."""
    return permissions.allows(request.scope.get("editor_roles", ()), permission)


async def audited(
    request: Request, action: str, obj: str = "", *, actor: str = "", **detail: object
) -> None:
    """Append an audit entry by the request's editor (or ``actor``), from its client address."""
    await run_in_threadpool(
        audit.record,
        request.app.state.settings.database,
        actor or str(request.scope.get("editor_email", "")),
        action,
        obj,
        client=client_ip(request),
        detail=detail,
    )


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
    device = trusted_device(request, email)
    result = await run_in_threadpool(
        users.authenticate, settings.database, email, password, client_ip(request), device=device
    )
    outcome = "login.succeeded" if result.user is not None else "login.failed"
    refusal = {"throttled": True} if result.throttled else {}
    await audited(request, outcome, actor=email.strip().lower(), **refusal)
    if result.user is None:
        return refused_login(request, result, {"next": target, "email": email})
    await end_own_session(request)  # a session the browser held before ends with it
    request.session[SESSION_TOKEN] = result.session_token
    csrf_token(request)
    response = RedirectResponse(target, status_code=303)
    remember_device(response, settings, result.user.email, device or secrets.token_urlsafe(12))
    return response


def refused_login(request: Request, result: users.LoginResult, context: dict[str, str]) -> Response:
    """The login form again, saying why: wrong password, refused, or slowed down."""
    if result.throttled:
        status, error, retry = 429, "login.throttled", int(users.WINDOW.total_seconds())
    elif result.wait_seconds:
        status, error, retry = 429, "login.slowed", result.wait_seconds
    else:
        return page(request, "login.html", {**context, "error": "login.failed"}, status_code=401)
    return page(
        request,
        "login.html",
        {**context, "error": error, "wait": retry},
        status_code=status,
        headers={"retry-after": str(retry)},
    )


async def end_own_session(request: Request) -> None:
    """End this browser's session on the server (every copy of its cookie) and in the cookie."""
    token = request.session.get(SESSION_TOKEN)
    if isinstance(token, str):
        await run_in_threadpool(users.end_session, request.app.state.settings.database, token)
    request.session.clear()


async def logout(request: Request) -> Response:
    """End the session, then show the login form."""
    await end_own_session(request)
    return RedirectResponse("/editor/login", status_code=303)


routes = [
    Route("/editor/login", login_form, methods=["GET"]),
    Route("/editor/login", login, methods=["POST"]),
    Route("/editor/logout", logout, methods=["POST"]),
]
