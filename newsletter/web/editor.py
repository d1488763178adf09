"""Editor pages about issues: the list, the preview, its render data, frame and live events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import asdict

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from newsletter import db
from newsletter.compose.render import CompiledIssue, sample_values
from newsletter.errors import NotFoundError
from newsletter.models import Subscriber
from newsletter.settings import Settings
from newsletter.web import personal
from newsletter.web.auth import editor_only
from newsletter.web.email_view import email_response
from newsletter.web.preview import PreviewHub, PreviewState
from newsletter.web.templating import page

# Gmail clips a message whose HTML is larger than this and hides the rest behind a link.
GMAIL_CLIP_BYTES = 102 * 1024
# How many subscribers the "preview as" picker offers.
PICKER_SIZE = 200
# A comment line keeps proxies from closing an idle event stream.
KEEPALIVE_SECONDS = 15.0


def hub_of(request: Request) -> PreviewHub:
    """The app's preview hub."""
    return request.app.state.hub


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


async def state_or_404(request: Request) -> PreviewState:
    """The preview state of the issue named in the path; 404 for unknown issues."""
    try:
        return await hub_of(request).state(request.path_params["slug"])
    except NotFoundError:
        raise HTTPException(status_code=404) from None


@editor_only
async def issues_list(request: Request) -> Response:
    """Every issue file with its subject, date and lint status."""
    hub = hub_of(request)
    rows = []
    for slug in hub.slugs():
        state = await hub.state(slug)
        rows.append(
            {
                "slug": slug,
                "subject": state.compiled.subject if state.compiled else "",
                "date": state.compiled.date if state.compiled else "",
                "error": state.error,
                "findings": len(state.findings),
            }
        )
    return page(request, "editor/issues.html", {"rows": rows})


def picker_people(url: str) -> list[dict[str, object]]:
    """Subscribers offered by the "preview as" picker."""
    with db.transaction(url) as session:
        rows = session.execute(
            select(Subscriber.id, Subscriber.name, Subscriber.email)
            .where(Subscriber.status == "active")
            .order_by(Subscriber.email)
            .limit(PICKER_SIZE)
        )
        return [{"id": row.id, "name": row.name, "email": row.email} for row in rows]


@editor_only
async def preview_page(request: Request) -> Response:
    """The preview page; its script keeps it current."""
    state = await state_or_404(request)
    people = await run_in_threadpool(picker_people, settings_of(request).database)
    context = {
        "slug": state.slug,
        "subject": state.compiled.subject if state.compiled else "",
        "version": state.render_version,
        "people": people,
        "watching": hub_of(request).watching,
    }
    return page(request, "editor/preview.html", context)


async def personalised(request: Request, compiled: CompiledIssue) -> tuple[str, str]:
    """The email as the recipient chosen in ``?as=`` (or the sample recipient) gets it."""
    chosen = request.query_params.get("as", "")
    settings = settings_of(request)
    values = None
    if chosen.isdigit():
        values = await run_in_threadpool(_subscriber_values, settings, int(chosen))
    return compiled.personalise(values or sample_values(settings.base_url, compiled.lang))


def _subscriber_values(settings: Settings, subscriber_id: int) -> dict[str, str] | None:
    with db.transaction(settings.database) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        return personal.for_subscriber(settings, subscriber, personal.PREVIEW_CAMPAIGN)


@editor_only
async def render_data(request: Request) -> Response:
    """JSON for the page's script: text, source, findings, size, and any compile error."""
    state = await state_or_404(request)
    data: dict[str, object] = {
        "version": state.version,
        "render_version": state.render_version,
        "error": state.error,
        "has_render": state.compiled is not None,
        "size_limit": GMAIL_CLIP_BYTES,
    }
    if state.compiled is not None:
        html, text = await personalised(request, state.compiled)
        data.update(
            subject=state.compiled.subject,
            text=text,
            source=html,
            size_bytes=len(html.encode("utf-8")),
            findings=[asdict(finding) for finding in state.findings],
        )
    return JSONResponse(data, headers={"cache-control": "no-store"})


@editor_only
async def frame(request: Request) -> Response:
    """The email alone, for the sandboxed iframe, under a CSP that forbids scripts."""
    state = await state_or_404(request)
    if state.compiled is None:
        html = "<!doctype html><html><body></body></html>"
    else:
        html, _text = await personalised(request, state.compiled)
    return email_response(html)


@editor_only
async def events(request: Request) -> Response:
    """Server-sent events: one ``render`` event per new version of the issue."""
    state = await state_or_404(request)
    hub = hub_of(request)
    queue = hub.listen(state.slug)

    async def stream() -> AsyncIterator[str]:
        try:
            yield f"retry: 1000\nevent: render\ndata: {_event_data(state)}\n\n"
            while True:
                try:
                    current = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if current is None:
                    return  # the server is stopping; the page reconnects to the next one
                yield f"event: render\ndata: {_event_data(current)}\n\n"
        finally:
            hub.forget(state.slug, queue)

    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _event_data(state: PreviewState) -> str:
    return json.dumps({"version": state.version, "error": bool(state.error)})


routes = [
    Route("/editor/", issues_list),
    Route("/editor/issues/{slug}", preview_page),
    Route("/editor/issues/{slug}/render", render_data),
    Route("/editor/issues/{slug}/frame", frame),
    Route("/editor/issues/{slug}/events", events),
]
