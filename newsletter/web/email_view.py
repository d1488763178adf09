"""Serving an email's HTML as a web page that can show it but never run anything in it.

Used by the editors' preview frame and by the public view-in-browser and archive pages.
The issue's HTML is sanitised when it is compiled; this is the second wall: a CSP with
no script source at all, and the CSP ``sandbox`` directive, so even someone opening the
URL on its own (not in the sandboxed iframe) gets a document where scripts are off.
"""

from __future__ import annotations

import re
from html import escape

from starlette.responses import HTMLResponse

EMAIL_CSP = (
    "default-src 'none'; img-src https: http: data: cid:; style-src 'unsafe-inline'; "
    "font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"
)
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
# Links in a framed email would otherwise open inside the frame.
_BASE = '<base target="_blank">'


def open_links_outside(html: str) -> str:
    """Return ``html`` with ``<base target="_blank">`` first in its head."""
    match = _HEAD.search(html)
    if match is None:
        return _BASE + html
    return html[: match.end()] + _BASE + html[match.end() :]


def with_description(html: str, description: str) -> str:
    """Return ``html`` with ``<meta name="description">`` first in its head (archive pages)."""
    if not description or '<meta name="description"' in html:
        return html
    meta = f'<meta name="description" content="{escape(description, quote=True)}">'
    match = _HEAD.search(html)
    if match is None:
        return meta + html
    return html[: match.end()] + meta + html[match.end() :]


def email_response(html: str, *, status_code: int = 200) -> HTMLResponse:
    """An email as a page: links open in a new tab, no script can run, nothing is cached."""
    return HTMLResponse(
        open_links_outside(html),
        status_code=status_code,
        headers={
            "content-security-policy": EMAIL_CSP,
            "cache-control": "no-store",
            "x-frame-options": "SAMEORIGIN",
        },
    )
