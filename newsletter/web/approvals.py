"""Approving a campaign: what the approver sees, the approval itself, refreshing and starting.

The page shows what the approval is bound to (``dispatch/approval.py``): the issue as it
will go out (its preview and lint findings), the lists and segment, the number of
recipients now, and the difference of its text from the last issue sent. The form
carries the digest of that basis; the server records the approval only if the basis is
still the same and the approver is not the campaign's author.
"""

from __future__ import annotations

import contextlib

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter.dispatch import approval, campaign, overlap
from newsletter.errors import NewsletterError, NotAllowedError, NotFoundError
from newsletter.web import i18n, revisions
from newsletter.web.auth import audited, editor_only
from newsletter.web.campaigns import (
    approval_of,
    current_file,
    dispatcher_of,
    progress_or_404,
    sendable,
    settings_of,
)
from newsletter.web.templating import page

APPROVE_PAGE = "editor/approve.html"


async def _context(request: Request) -> dict[str, object]:
    """Everything the approve page shows about the campaign in the path."""
    now = await progress_or_404(request)
    settings = settings_of(request)
    campaign_id = now.campaign_id
    try:
        stored = await run_in_threadpool(approval.stored, settings, campaign_id)
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    findings = []
    with contextlib.suppress(NotFoundError):
        findings = (await request.app.state.hub.state(now.issue_slug)).findings
    before = await run_in_threadpool(approval.last_sent, settings, campaign_id)
    lines = revisions.diff(before[2], stored[0].text) if before else []
    return {
        "c": now,
        "lists": stored[1],
        "standing": await approval_of(request, now),
        "findings": findings,
        "before": before,
        "lines": lines,
        "me": request.scope["editor_email"],
    }


async def _refused(request: Request, exc: NewsletterError, status_code: int) -> Response:
    """The approve page again, saying why in its own language."""
    context = {**await _context(request), "error": i18n.explain(exc, i18n.choose_language(request))}
    return page(request, APPROVE_PAGE, context, status_code=status_code)


@editor_only
async def approve_page(request: Request) -> Response:
    """The campaign as the approver must see it, and the approve button."""
    return page(request, APPROVE_PAGE, await _context(request))


@editor_only
async def approve(request: Request) -> Response:
    """Record the approval of what the page showed; refused for the author or after a change."""
    campaign_id = request.path_params["campaign_id"]
    now = await progress_or_404(request)
    shown = str((await request.form()).get("shown", ""))
    me = request.scope["editor_email"]
    current = await current_file(request, now.issue_slug)
    settings = settings_of(request)
    try:
        await run_in_threadpool(approval.approve, settings, campaign_id, me, shown, current)
    except NewsletterError as exc:
        status = 403 if isinstance(exc, NotAllowedError) else 409
        return await _refused(request, exc, status)
    await audited(request, "campaign.approve", f"campaign:{campaign_id}", basis=shown)
    return RedirectResponse(f"/editor/campaigns/{campaign_id}/approve", status_code=303)


@editor_only
async def refresh(request: Request) -> Response:
    """Take the issue file as it is now into the campaign; earlier approvals become void."""
    now = await progress_or_404(request)
    request.path_params["slug"] = now.issue_slug
    try:
        _state, compiled = await sendable(request)
        await run_in_threadpool(approval.refresh, settings_of(request), now.campaign_id, compiled)
    except NewsletterError as exc:
        return await _refused(request, exc, 409)
    obj = f"campaign:{now.campaign_id}"
    await audited(request, "campaign.refresh", obj, content=overlap.fingerprint(compiled))
    return RedirectResponse(f"/editor/campaigns/{now.campaign_id}/approve", status_code=303)


@editor_only
async def start(request: Request) -> Response:
    """Start an approved campaign now (approvals checked again first)."""
    now = await progress_or_404(request)
    settings = settings_of(request)
    current = await current_file(request, now.issue_slug)
    try:
        await run_in_threadpool(approval.start, settings, now.campaign_id, current)
    except NewsletterError as exc:
        return await _refused(request, exc, 409)
    await run_in_threadpool(campaign.start_due, settings)
    await run_in_threadpool(dispatcher_of(request).start, now.campaign_id)
    await audited(request, "campaign.start", f"campaign:{now.campaign_id}")
    return RedirectResponse(f"/editor/campaigns/{now.campaign_id}", status_code=303)


routes = [
    Route("/editor/campaigns/{campaign_id:int}/approve", approve_page, methods=["GET"]),
    Route("/editor/campaigns/{campaign_id:int}/approve", approve, methods=["POST"]),
    Route("/editor/campaigns/{campaign_id:int}/refresh", refresh, methods=["POST"]),
    Route("/editor/campaigns/{campaign_id:int}/start", start, methods=["POST"]),
]
