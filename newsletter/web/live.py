"""The editor page's live preview and autosave: unsaved text, rendered in memory.

While an editor types, the page posts the whole text (debounced) to ``/live``: it is
compiled and linted from memory, nothing is written, and the reply carries what the
preview shows (plain text, HTML source, findings, size) or the one-line compile error.
The email itself is kept in memory, the newest per editor and issue, for the preview's
sandboxed frame to load from ``/live-frame?n=<number>``; an older number gets the newest.

Every few seconds after a change the page also posts the text to ``/draft``: an autosaved
draft in the database (``drafts``), offered back when the editor reopens the issue.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter.errors import IssueError
from newsletter.web import drafts, issue_files, issues
from newsletter.web.auth import editor_only
from newsletter.web.editor import GMAIL_CLIP_BYTES, personalised, settings_of
from newsletter.web.email_view import email_response
from newsletter.web.preview import ISSUE_SUFFIX, SLUG

log = logging.getLogger(__name__)

# The text plus JSON quoting: at worst six bytes per character (\\uXXXX) beyond the limit.
BODY_MAX_BYTES = 6 * issue_files.TEXT_MAX_BYTES
# Renders kept for the preview frames: one per editor and issue, the oldest dropped first.
RENDERS_KEPT = 64
_numbers = itertools.count(1)
_EMPTY = "<!doctype html><html><body></body></html>"


class LiveRenders:
    """The newest in-memory email per (editor, issue), numbered so a frame asks for its own."""

    def __init__(self) -> None:
        self._renders: OrderedDict[tuple[str, str], tuple[int, str]] = OrderedDict()

    def put(self, editor: str, slug: str, html: str) -> int:
        """Keep ``html`` as the newest render of ``slug`` for ``editor``; return its number."""
        number = next(_numbers)
        self._renders[(editor, slug)] = (number, html)
        self._renders.move_to_end((editor, slug))
        while len(self._renders) > RENDERS_KEPT:
            self._renders.popitem(last=False)
        return number

    def get(self, editor: str, slug: str) -> str:
        """The newest render of ``slug`` for ``editor`` (an empty page when there is none)."""
        kept = self._renders.get((editor, slug))
        return kept[1] if kept else _EMPTY


def renders_of(request: Request) -> LiveRenders:
    """The app's live renders, made on first use."""
    state = request.app.state
    if not hasattr(state, "live_renders"):
        state.live_renders = LiveRenders()
    return state.live_renders


def _issue_name(request: Request) -> tuple[str, Path]:
    """The slug in the path and the file it names (which need not exist); 404 if unsafe."""
    slug = request.path_params["slug"]
    if not SLUG.match(slug):
        raise HTTPException(status_code=404)
    return slug, settings_of(request).issues_dir / f"{slug}{ISSUE_SUFFIX}"


async def _json_fields(request: Request, *names: str) -> dict[str, str] | Response:
    """The string fields ``names`` of a JSON body; a 400/413 reply when it is not one."""
    body = await request.body()
    if len(body) > BODY_MAX_BYTES:
        return JSONResponse({"error": "too large"}, status_code=413)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(data.get(n), str) for n in names):
        return JSONResponse({"error": f"expected a JSON object with {', '.join(names)}"}, 400)
    text = issue_files.normalise(data["text"]) if "text" in names else ""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") is valid JSON, not text
        return JSONResponse({"error": "the text is not valid Unicode"}, status_code=400)
    if size > issue_files.TEXT_MAX_BYTES:
        return JSONResponse({"error": "too large"}, status_code=413)
    return {name: data[name] for name in names} | ({"text": text} if "text" in names else {})


@editor_only
async def live_preview(request: Request) -> Response:
    """Compile the posted text in memory: the preview's data, or the compile error's line."""
    slug, path = _issue_name(request)
    fields = await _json_fields(request, "text")
    if isinstance(fields, Response):
        return fields
    settings = settings_of(request)
    data: dict[str, object] = {"size_limit": GMAIL_CLIP_BYTES, "has_render": False}
    try:
        compiled, findings = await run_in_threadpool(
            issues.compile_text, fields["text"], path, settings
        )
    except IssueError as exc:
        line = exc.line if exc.path == str(path) else None
        data.update(error=str(exc), error_line=line)
        return JSONResponse(data, headers={"cache-control": "no-store"})
    except Exception as exc:  # a bug in compiling must not break the editor's page
        log.exception("compiling the unsaved text of %s failed", path)
        data.update(error=f"{path}: {type(exc).__name__}: {exc}", error_line=None)
        return JSONResponse(data, headers={"cache-control": "no-store"})
    html, text = await personalised(request, compiled)
    number = renders_of(request).put(request.scope["editor_email"], slug, html)
    data.update(
        error="",
        has_render=True,
        subject=compiled.subject,
        text=text,
        source=html,
        size_bytes=len(html.encode("utf-8")),
        findings=[asdict(finding) for finding in findings],
        frame_url=f"/editor/issues/{slug}/live-frame?n={number}",
    )
    return JSONResponse(data, headers={"cache-control": "no-store"})


@editor_only
async def live_frame(request: Request) -> Response:
    """The newest in-memory render, for the sandboxed frame, under the email CSP."""
    slug, _path = _issue_name(request)
    return email_response(renders_of(request).get(request.scope["editor_email"], slug))


@editor_only
async def autosave(request: Request) -> Response:
    """Keep the posted text as the editor's draft of the issue (the file is not touched)."""
    slug, _path = _issue_name(request)
    fields = await _json_fields(request, "text", "loaded")
    if isinstance(fields, Response):
        return fields
    url, editor = settings_of(request).database, request.scope["editor_email"]
    await run_in_threadpool(drafts.keep, url, slug, editor, fields["text"], fields["loaded"])
    return JSONResponse({"saved": True}, headers={"cache-control": "no-store"})


@editor_only
async def discard_draft(request: Request) -> Response:
    """Turn the autosaved draft down; back to the issue as saved."""
    slug, _path = _issue_name(request)
    url, editor = settings_of(request).database, request.scope["editor_email"]
    await run_in_threadpool(drafts.discard, url, slug, editor)
    return RedirectResponse(f"/editor/issues/{slug}/edit", status_code=303)


routes = [
    Route("/editor/issues/{slug}/live", live_preview, methods=["POST"]),
    Route("/editor/issues/{slug}/live-frame", live_frame, methods=["GET"]),
    Route("/editor/issues/{slug}/draft", autosave, methods=["POST"]),
    Route("/editor/issues/{slug}/draft/discard", discard_draft, methods=["POST"]),
]
