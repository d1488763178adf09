"""The history page of an issue: its revisions, the diff between two, and restoring one.

A restore is a save of the old text, under the same guard as any save: the page carries
the sha256 of the file as it was shown, and a file changed meanwhile shows the conflict.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.web import issue_files, revisions
from newsletter.web.auth import editor_only
from newsletter.web.editor import hub_of, settings_of, state_or_404
from newsletter.web.templating import page
from newsletter.web.writing import store


def _chosen(request: Request, name: str, fallback: int | None) -> int | None:
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() else fallback


@editor_only
async def history_page(request: Request) -> Response:
    """Revisions newest first; the diff from ``?a=`` to ``?b=`` (default: the last save)."""
    state = await state_or_404(request)
    url = settings_of(request).database
    rows = await run_in_threadpool(revisions.history, url, state.slug)
    by_id = {row.id: row for row in rows}
    newer = _chosen(request, "b", rows[0].id if rows else None)
    older = _chosen(request, "a", rows[1].id if len(rows) > 1 else None)
    lines: list[tuple[str, str]] = []
    if older in by_id and newer in by_id:
        lines = revisions.diff(by_id[older].text, by_id[newer].text)
    text = await run_in_threadpool(issue_files.read_text, hub_of(request).issue_path(state.slug))
    context = {
        "slug": state.slug,
        "rows": rows,
        "older": older,
        "newer": newer,
        "lines": lines,
        "loaded": issue_files.digest(text),
    }
    return page(request, "editor/history.html", context)


@editor_only
async def restore(request: Request) -> Response:
    """Save the text of an old revision over the version the history page showed."""
    state = await state_or_404(request)
    url = settings_of(request).database
    revision_id = request.path_params["revision_id"]
    revision = await run_in_threadpool(revisions.one, url, state.slug, revision_id)
    if revision is None:
        raise HTTPException(status_code=404)
    form = await request.form()
    path = hub_of(request).issue_path(state.slug)
    return await store(request, path, revision.text, str(form.get("loaded", "")))


routes = [
    Route("/editor/issues/{slug}/history", history_page, methods=["GET"]),
    Route("/editor/issues/{slug}/history/{revision_id:int}/restore", restore, methods=["POST"]),
]
