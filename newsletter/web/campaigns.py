"""Editor pages for sending: test send, starting a campaign, the dashboard and its report.

Every action calls ``newsletter.dispatch.campaign``; this module only reads forms and shows
results. A campaign is started in two steps: the form, then a confirmation page that
shows how many people would receive it and how many of them already got the issue from
another campaign (then it asks: only the new ones, or everyone again), then the start.
The confirmation page carries a one-time start token: posting it again (a second click,
going back and pressing it once more) lands on the campaign the first post created.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter import db
from newsletter.compose.render import CompiledIssue
from newsletter.dispatch import campaign, outbox, overlap
from newsletter.errors import AlreadySentError, InputError, NewsletterError, NotFoundError
from newsletter.models import MailingList, utcnow
from newsletter.settings import Settings
from newsletter.web import i18n
from newsletter.web.auth import editor_only
from newsletter.web.dispatch import Dispatcher
from newsletter.web.preview import PreviewState
from newsletter.web.templating import page

AT_FORMAT = "%Y-%m-%dT%H:%M"
# A test copy is sent while the editor waits; past this the page shows the row as it stands.
TEST_SEND_SECONDS = 120
STATUSES = ("draft", "scheduled", "running", "paused", "cancelled", "done")
# The confirmation page's one-time token: 24 random bytes, URL-safe.
START_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def dispatcher_of(request: Request) -> Dispatcher:
    """The app's dispatcher."""
    return request.app.state.dispatcher


async def sendable(request: Request) -> tuple[PreviewState, CompiledIssue]:
    """The issue in the path, compiled now; InputError when it has errors."""
    try:
        state = await request.app.state.hub.state(request.path_params["slug"])
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    if state.error or state.compiled is None:
        raise InputError(f"the issue does not compile: {state.error}")
    errors = [f for f in state.findings if f.severity == "error"]
    if errors:
        first = errors[0]
        where = f"line {first.line}: " if first.line else ""
        raise InputError(f"lint found {len(errors)} error(s), first: {where}{first.message}")
    return state, state.compiled


async def _unsendable(request: Request, context: dict[str, object]) -> dict[str, object]:
    """``context`` with the reason the issue cannot be sent, so the form says it at once
    (a draft saved from the editor that does not compile); the POST refuses it again."""
    try:
        await sendable(request)
    except InputError as exc:
        context["error"] = str(exc)
    return context


# Test send ------------------------------------------------------------------------------


@editor_only
async def test_form(request: Request) -> Response:
    """Ask for the address of a test copy."""
    context = {"slug": request.path_params["slug"], "address": request.scope["editor_email"]}
    return page(request, "editor/test_send.html", await _unsendable(request, context))


@editor_only
async def test_send(request: Request) -> Response:
    """Send one ``[TEST]`` copy; embedded, wait for and show the server's answer."""
    slug = request.path_params["slug"]
    form = await request.form()
    address = str(form.get("address", "")).strip()
    context: dict[str, object] = {"slug": slug, "address": address}
    try:
        _state, compiled = await sendable(request)
        settings = settings_of(request)
        campaign_id = await run_in_threadpool(campaign.create_test, settings, compiled, address)
        if not settings.embedded:
            await run_in_threadpool(dispatcher_of(request).start, campaign_id)
            return RedirectResponse(f"/editor/campaigns/{campaign_id}", status_code=303)
        await run_in_threadpool(dispatcher_of(request).run_now, campaign_id, TEST_SEND_SECONDS)
        line = (await run_in_threadpool(campaign.report, settings, campaign_id))[0]
        context["result"] = asdict(line)
        context["campaign_id"] = campaign_id
    except NewsletterError as exc:
        context["error"] = str(exc)
        return page(request, "editor/test_send.html", context, status_code=400)
    return page(request, "editor/test_send.html", context)


# Starting a campaign --------------------------------------------------------------------


def _all_lists(settings: Settings) -> list[dict[str, str]]:
    with db.transaction(settings.database) as session:
        rows = session.scalars(select(MailingList).order_by(MailingList.name, MailingList.slug))
        return [{"slug": m.slug, "name": m.name or m.slug} for m in rows]


def parse_where(text: str) -> dict[str, str]:
    """Read the segment box: one ``key=value`` per line; InputError naming a bad line."""
    where: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InputError(f"segment line {number}: expected key=value, got {line.strip()!r}")
        where[key.strip()] = value.strip()
    return where


def parse_send_at(text: str, now: datetime | None = None) -> datetime | None:
    """Read the form's local date and time; empty means now; InputError when past or malformed."""
    if not text.strip():
        return None
    try:
        moment = datetime.strptime(text.strip(), AT_FORMAT).astimezone()
    except ValueError:
        raise InputError(f"send at: expected a date and time, got {text!r}") from None
    if moment <= (now or utcnow()):
        raise InputError(f"send at: {text} is in the past")
    return moment


def read_choice(form: FormData) -> dict[str, object]:
    """The campaign form's values, as given."""
    return {
        "lists": [str(v) for v in form.getlist("list")],
        "where_text": str(form.get("where", "")),
        "send_at_text": str(form.get("send_at", "")),
    }


@editor_only
async def campaign_form(request: Request) -> Response:
    """Choose lists, a segment and a time."""
    lists = await run_in_threadpool(_all_lists, settings_of(request))
    choice = {"lists": [], "where_text": "", "send_at_text": ""}
    context = {"slug": request.path_params["slug"], "all_lists": lists, "choice": choice}
    return page(request, "editor/campaign_form.html", await _unsendable(request, context))


@editor_only
async def campaign_confirm(request: Request) -> Response:
    """Show who would receive it (the count) and ask to confirm."""
    return await _confirm_or_start(request, start=False)


@editor_only
async def campaign_start(request: Request) -> Response:
    """Create the campaign and start (or schedule) it."""
    return await _confirm_or_start(request, start=True)


async def _confirm_or_start(request: Request, *, start: bool) -> Response:
    settings = settings_of(request)
    slug = request.path_params["slug"]
    form = await request.form()
    choice = read_choice(form)
    lists = await run_in_threadpool(_all_lists, settings)
    context: dict[str, object] = {"slug": slug, "all_lists": lists, "choice": choice}
    status_code = 200
    try:
        slugs = list(choice["lists"])  # type: ignore[call-overload]
        if not slugs:
            raise InputError("lists: choose at least one list")
        where = parse_where(str(choice["where_text"]))
        send_at = parse_send_at(str(choice["send_at_text"]))
        _state, compiled = await sendable(request)
        settings.refuse_unfit_base_url()
        if start:
            try:
                return await _start(request, compiled, slugs, where, send_at, form)
            except AlreadySentError:
                # Another campaign reached some of them since the page was shown: ask again.
                context["changed"] = True
                status_code = 409
        found = await run_in_threadpool(overlap.audience, settings, compiled, slugs, where)
    except NewsletterError as exc:
        context["error"] = str(exc)
        return page(request, "editor/campaign_form.html", context, status_code=400)
    context.update(
        count=found.recipients,
        found=found,
        start_token=secrets.token_urlsafe(24),
        subject=compiled.subject,
        send_at=send_at,
        where=where,
    )
    return page(request, "editor/campaign_confirm.html", context, status_code=status_code)


async def _start(
    request: Request,
    compiled: CompiledIssue,
    slugs: list[str],
    where: dict[str, str],
    send_at: datetime | None,
    form: FormData,
) -> Response:
    """Create the campaign the confirmation page asked for (once per page), then its dashboard."""
    token = str(form.get("start_token", ""))
    if not START_TOKEN.fullmatch(token):
        raise InputError("the confirmation page's one-time token is missing; confirm again")
    repeat = str(form.get("repeat", overlap.REFUSE))
    created = await run_in_threadpool(
        lambda: campaign.create(
            settings_of(request),
            compiled,
            slugs,
            where,
            send_at=send_at,
            repeat=repeat,
            start_token=token,
        )
    )
    if created.status == "running" and not created.existing:
        await run_in_threadpool(dispatcher_of(request).start, created.campaign_id)
    return RedirectResponse(f"/editor/campaigns/{created.campaign_id}", status_code=303)


# Dashboard ------------------------------------------------------------------------------


def progress_data(now: campaign.Progress) -> dict[str, object]:
    """The dashboard's numbers, as JSON."""
    counts = now.counts
    return {
        "id": now.campaign_id,
        "status": now.status,
        "status_reason": now.status_reason,
        "total": now.total,
        "done": now.finished_rows,
        "rate": round(now.rate, 1),
        "counts": {
            "queued": counts.get(outbox.QUEUED, 0),
            "sending": counts.get(outbox.SENDING, 0),
            "sent": counts.get(outbox.SENT, 0),
            "failed": counts.get(outbox.FAILED, 0),
            "uncertain": counts.get(outbox.UNCERTAIN, 0) + counts.get("possible_duplicates", 0),
            "suppressed": counts.get(outbox.SUPPRESSED, 0),
            "cancelled": counts.get(outbox.CANCELLED, 0),
            "bounced_later": counts.get("bounced_later", 0),
        },
        "active": now.status in campaign.ACTIVE,
    }


async def progress_or_404(request: Request) -> campaign.Progress:
    """The progress of the campaign in the path; 404 when there is none."""
    try:
        return await run_in_threadpool(
            campaign.progress, settings_of(request), request.path_params["campaign_id"]
        )
    except NotFoundError:
        raise HTTPException(status_code=404) from None


@editor_only
async def campaigns_list(request: Request) -> Response:
    """Every campaign, newest first."""
    items = await run_in_threadpool(campaign.all_campaigns, settings_of(request))
    return page(request, "editor/campaigns.html", {"items": [_row(p) for p in items]})


def _row(now: campaign.Progress) -> dict[str, object]:
    data = progress_data(now)
    data.update(subject=now.subject, slug=now.issue_slug, is_test=now.is_test)
    data["created"] = now.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return data


@editor_only
async def dashboard(request: Request) -> Response:
    """One campaign: live counts and the buttons to steer it."""
    now = await progress_or_404(request)
    data = _row(now)
    when = now.send_at.astimezone().strftime("%Y-%m-%d %H:%M") if now.send_at else ""
    context = {"c": data, "send_at": when, "status_labels": status_labels(request)}
    return page(request, "editor/dashboard.html", context)


def status_labels(request: Request) -> dict[str, str]:
    """Campaign statuses in the page's language, for the dashboard's script."""
    lang = i18n.choose_language(request)
    return {status: i18n.translate(f"status.{status}", lang) for status in STATUSES}


@editor_only
async def progress_json(request: Request) -> Response:
    """The dashboard's numbers, polled by its script."""
    now = await progress_or_404(request)
    return JSONResponse(progress_data(now), headers={"cache-control": "no-store"})


@editor_only
async def steer(request: Request) -> Response:
    """Pause, resume or cancel; then back to the dashboard."""
    settings = settings_of(request)
    campaign_id = request.path_params["campaign_id"]
    action = request.path_params["action"]
    try:
        if action == "pause":
            await run_in_threadpool(campaign.pause, settings, campaign_id)
        elif action == "resume":
            status = await run_in_threadpool(campaign.resume, settings, campaign_id)
            if status == "running":
                await run_in_threadpool(dispatcher_of(request).start, campaign_id)
        elif action == "cancel":
            await run_in_threadpool(campaign.cancel, settings, campaign_id)
        else:
            raise HTTPException(status_code=404)
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    except NewsletterError as exc:
        now = await progress_or_404(request)
        context = {
            "c": _row(now),
            "send_at": "",
            "error": str(exc),
            "status_labels": status_labels(request),
        }
        return page(request, "editor/dashboard.html", context, status_code=409)
    return RedirectResponse(f"/editor/campaigns/{campaign_id}", status_code=303)


@editor_only
async def report(request: Request) -> Response:
    """Download the per-recipient report."""
    campaign_id = request.path_params["campaign_id"]
    try:
        lines = await run_in_threadpool(campaign.report, settings_of(request), campaign_id)
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    return Response(
        campaign.report_csv(lines),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="campaign-{campaign_id}.csv"',
            "cache-control": "no-store",
        },
    )


routes = [
    Route("/editor/issues/{slug}/test", test_form, methods=["GET"]),
    Route("/editor/issues/{slug}/test", test_send, methods=["POST"]),
    Route("/editor/issues/{slug}/campaign", campaign_form, methods=["GET"]),
    Route("/editor/issues/{slug}/campaign", campaign_confirm, methods=["POST"]),
    Route("/editor/issues/{slug}/campaign/start", campaign_start, methods=["POST"]),
    Route("/editor/campaigns", campaigns_list, methods=["GET"]),
    Route("/editor/campaigns/{campaign_id:int}", dashboard, methods=["GET"]),
    Route("/editor/campaigns/{campaign_id:int}/progress", progress_json, methods=["GET"]),
    Route("/editor/campaigns/{campaign_id:int}/report.csv", report, methods=["GET"]),
    Route("/editor/campaigns/{campaign_id:int}/{action:str}", steer, methods=["POST"]),
]
