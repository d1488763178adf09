"""CSRF protection: a per-session token that every state-changing request must carry.

The token lives in the signed session cookie and is put in each form as the hidden field
``csrf_token`` (scripts send it as the ``X-CSRF-Token`` header); a file upload form
(multipart) carries it as its first field, so that it is found in the body's first bytes. ``CsrfMiddleware`` checks
every POST, PUT, PATCH and DELETE before the route sees it, so a new form cannot forget
the check. The one exemption is the RFC 8058 one-click unsubscribe, ``POST /u/<token>``:
mail providers send it with no cookies from their own servers, and the signed token in
its URL is its authority (anyone holding it may unsubscribe that address anyway).
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_KEY = "csrf"
FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXEMPT_PATHS = (re.compile(r"^/u/[A-Za-z0-9_\-.~]+/?$"),)
# Forms here are a few fields; a larger body is not one of ours.
MAX_FORM_BYTES = 256 * 1024


def csrf_token(connection: HTTPConnection) -> str:
    """Return this session's CSRF token, creating it on first use."""
    session = connection.session
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def is_exempt(path: str) -> bool:
    """True for the one endpoint that must work without a session: one-click unsubscribe."""
    return any(pattern.match(path) for pattern in EXEMPT_PATHS)


def token_from_body(body: bytes, content_type: str) -> str:
    """Return the ``csrf_token`` field of a URL-encoded form body, or ''."""
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return ""
    values = parse_qs(body.decode("latin-1"), max_num_fields=200).get(FORM_FIELD, [])
    return values[0] if values else ""


def token_from_multipart(start: bytes, content_type: str) -> str:
    """Return the first part of a multipart body when it is the ``csrf_token`` field, or ''.

    ``start`` is the body's beginning: browsers send fields in the form's order, and the
    upload forms put the token first, before a file of many megabytes.
    """
    found = _BOUNDARY.search(content_type)
    if not content_type.startswith("multipart/form-data") or not found:
        return ""
    delimiter = b"--" + found.group(1).strip('"').encode("latin-1")
    if not start.startswith(delimiter + b"\r\n"):
        return ""
    head, sep, rest = start[len(delimiter) + 2 :].partition(b"\r\n\r\n")
    if not sep or not _TOKEN_PART.fullmatch(head.strip()):
        return ""
    value, sep, _ = rest.partition(b"\r\n" + delimiter)
    return value.decode("latin-1") if sep else ""


_BOUNDARY = re.compile(r";\s*boundary=(\"[^\"]+\"|[^;\s]+)")
_TOKEN_PART = re.compile(rb'content-disposition:\s*form-data;\s*name="csrf_token"', re.IGNORECASE)


class CsrfMiddleware:
    """Refuse unsafe requests whose token does not match the session's (must run inside sessions)."""

    def __init__(self, app: ASGIApp, refuse: ASGIApp) -> None:
        self.app = app
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        if is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        expected = connection.session.get(SESSION_KEY)
        sent = connection.headers.get(HEADER, "")
        body, complete = b"", True
        if not sent:
            content_type = connection.headers.get("content-type", "")
            body, complete = await _read_body(receive, MAX_FORM_BYTES)
            if complete and len(body) <= MAX_FORM_BYTES:
                sent = token_from_body(body, content_type)
            sent = sent or token_from_multipart(body, content_type)
        if not (isinstance(expected, str) and expected and hmac.compare_digest(expected, sent)):
            await self.refuse(scope, _replay(body, receive, complete), send)
            return
        await self.app(scope, _replay(body, receive, complete), send)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """Read the request body until it ends or passes ``limit`` bytes; the flag says it ended."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive, complete: bool = True) -> Receive:
    """Return a ``receive`` that first gives back the body already read, then the rest."""
    if not body:
        return receive
    pending = [body]

    async def replay() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": not complete}
        return await receive()

    return replay
