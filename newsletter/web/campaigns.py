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
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter import db, users
from newsletter.audience import segments
from newsletter.audience.lists import current_lists
from newsletter.audience.subscribers import resolve_lists
from newsletter.compose.render import CompiledIssue
from newsletter.dispatch import approval, campaign, outbox, overlap
from newsletter.errors import (
    AlreadySentError,
    InputError,
    Message,
    NewsletterError,
    NotFoundError,
)
from newsletter.models import utcnow
from newsletter.settings import Settings
from newsletter.web import clicks, i18n, permissions, revisions
from newsletter.web.auth import audited, can, editor_only, forbidden
from newsletter.web.dispatch import Dispatcher
from newsletter.web.preview import PreviewState
from newsletter.web.templating import page

AT_FORMAT = "%Y-%m-%dT%H:%M"
# A test copy is sent while the editor waits; past this the page shows the row as it stands.
TEST_SEND_SECONDS = 120
STATUSES = ("draft", "awaiting", "scheduled", "running", "paused", "cancelled", "done")
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
        raise InputError(i18n.coded("issue.does_not_compile", error=state.error))
    errors = [f for f in state.findings if f.severity == "error"]
    if errors:
        first = errors[0]
        if first.line:
            count, line, text = len(errors), first.line, first.message
            raise InputError(
                i18n.coded("issue.lint_errors_at", count=count, line=line, message=text)
            )
        raise InputError(i18n.coded("issue.lint_errors", count=len(errors), message=first.message))
    return state, state.compiled


async def _unsendable(request: Request, context: dict[str, object]) -> dict[str, object]:
    """``context`` with the reason the issue cannot be sent, so the form says it at once
    (a draft saved from the editor that does not compile); the POST refuses it again."""
    try:
        await sendable(request)
    except InputError as exc:
        context["error"] = i18n.explain(exc, i18n.choose_language(request))
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
        await _refuse_outside_editors(request, address)
        campaign_id = await run_in_threadpool(campaign.create_test, settings, compiled, address)
        await audited(request, "campaign.test", f"campaign:{campaign_id}", issue=compiled.slug)
        if not settings.embedded:
            await run_in_threadpool(dispatcher_of(request).start, campaign_id)
            return RedirectResponse(f"/editor/campaigns/{campaign_id}", status_code=303)
        await run_in_threadpool(dispatcher_of(request).run_now, campaign_id, TEST_SEND_SECONDS)
        line = (await run_in_threadpool(campaign.report, settings, campaign_id))[0]
        context["result"] = asdict(line)
        context["campaign_id"] = campaign_id
    except NewsletterError as exc:
        context["error"] = i18n.explain(exc, i18n.choose_language(request))
        return page(request, "editor/test_send.html", context, status_code=400)
    return page(request, "editor/test_send.html", context)


async def _refuse_outside_editors(request: Request, address: str) -> None:
    """InputError when someone who may not send tries a test copy to a non-editor address:
    an author's test copies go to editors only."""
    if can(request, permissions.SEND):
        return
    url = settings_of(request).database
    if not await run_in_threadpool(users.is_editor, url, address):
        raise InputError(i18n.coded("test.not_editor", address=address))


# Starting a campaign --------------------------------------------------------------------


def _all_lists(settings: Settings) -> list[dict[str, str]]:
    """The lists a campaign may go to: every list that is not archived."""
    with db.transaction(settings.database) as session:
        return [{"slug": m.slug, "name": m.name or m.slug} for m in current_lists(session)]


def _builder(settings: Settings) -> dict[str, object]:
    """What the segment builder offers: each field's values, and the named segments."""
    with db.transaction(settings.database) as session:
        saved = [
            {"id": s.id, "name": s.name, "definition": s.definition}
            for s in segments.saved(session)
        ]
        return {"offered": segments.offered_values(session), "saved": saved}


def parse_send_at(text: str, now: datetime | None = None) -> datetime | None:
    """Read the form's local date and time; empty means now; InputError when past or malformed."""
    if not text.strip():
        return None
    try:
        moment = datetime.strptime(text.strip(), AT_FORMAT).astimezone()
    except ValueError:
        english = f"send at: expected a date and time, got {text!r}"
        raise InputError(Message("campaign.send_at_format", english, {"text": text})) from None
    if moment <= (now or utcnow()):
        english = f"send at: {text} is in the past"
        raise InputError(Message("campaign.send_at_past", english, {"text": text}))
    return moment


@dataclass(frozen=True)
class Choice:
    """The campaign form's values, as given (the segment as ``{field: [values]}``)."""

    lists: list[str]
    segment: dict[str, list[str]]
    saved: str = ""  # the id of the saved segment chosen, or ""
    segment_name: str = ""  # the name to save the segment under
    send_at_text: str = ""


def read_choice(form: FormData) -> Choice:
    """The campaign form's values, as given."""
    return Choice(
        lists=[str(v) for v in form.getlist("list")],
        segment={f: [str(v) for v in form.getlist(f"seg.{f}")] for f in segments.FIELDS},
        saved=str(form.get("saved", "")),
        segment_name=str(form.get("segment_name", "")).strip(),
        send_at_text=str(form.get("send_at", "")),
    )


#: The form field an error message is shown beside, by the message's first word(s).
ERROR_FIELDS = {
    "lists": "lists",
    "send at": "send_at",
    "segment_name": "segment_name",
    "segment": "segment",
    **{field: "segment" for field in segments.FIELDS},
}


def error_field(message: str) -> str:
    """The field a form error belongs beside, or "" (shown above the form)."""
    return ERROR_FIELDS.get(message.partition(":")[0], "")


def chosen_lists(slugs: list[str], offered: list[dict[str, str]]) -> list[str]:
    """The chosen lists; InputError when none is chosen or one is archived or unknown."""
    if not slugs:
        raise InputError(Message("campaign.no_lists", "lists: choose at least one list"))
    current = {item["slug"] for item in offered}
    for slug in slugs:
        if slug not in current:
            english = f"lists: no list {slug!r} to send to (unknown or archived)"
            raise InputError(Message("campaign.no_such_list", english, {"slug": slug}))
    return slugs


async def _form_page(
    request: Request, choice: Choice, *, status_code: int = 200, **extra: object
) -> Response:
    """The campaign form with ``choice`` filled in, and an error beside its field."""
    settings = settings_of(request)
    context: dict[str, object] = {
        "slug": request.path_params["slug"],
        "all_lists": await run_in_threadpool(_all_lists, settings),
        "builder": await run_in_threadpool(_builder, settings),
        "fields": segments.FIELDS,
        "choice": choice,
        "errors": {},
        **extra,
    }
    error = context.pop("error", "") or ""
    if error:
        # The field from the English text (``segment: …``), the words in the page's language.
        field = error_field(str(error))
        explained = error if isinstance(error, NewsletterError) else str(error)
        message = i18n.explain(explained, i18n.choose_language(request))
        if field:
            context["errors"] = {field: message}
        else:
            context["error"] = message
    return page(request, "editor/campaign_form.html", context, status_code=status_code)


@editor_only
async def campaign_form(request: Request) -> Response:
    """Choose lists, a segment (with its live count) and a time."""
    context = await _unsendable(request, {})
    return await _form_page(request, read_choice(FormData()), **context)


@editor_only
async def campaign_confirm(request: Request) -> Response:
    """Show who would receive it (the count) and ask to confirm; or count, save or load a segment."""
    form = await request.form()
    action = str(form.get("action", ""))
    if action in SEGMENT_ACTIONS:
        return await SEGMENT_ACTIONS[action](request, read_choice(form))
    return await _confirm_or_start(request, form, start=False)


@editor_only
async def campaign_start(request: Request) -> Response:
    """Create the campaign and start (or schedule) it."""
    return await _confirm_or_start(request, await request.form(), start=True)


def _count(settings: Settings, slugs: list[str], definition: segments.Definition) -> int:
    with db.transaction(settings.database) as session:
        list_ids = [found.id for found in resolve_lists(session, slugs)]
        return segments.count(session, list_ids, definition)


async def count_choice(request: Request, choice: Choice) -> Response:
    """The form again with the number of recipients the choice holds (the form without JS)."""
    settings = settings_of(request)
    try:
        slugs = chosen_lists(choice.lists, await run_in_threadpool(_all_lists, settings))
        definition = segments.parse_definition(choice.segment)
        found = await run_in_threadpool(_count, settings, slugs, definition)
    except NewsletterError as exc:
        return await _form_page(request, choice, status_code=400, error=exc)
    return await _form_page(request, choice, count=found)


def _save_segment(settings: Settings, choice: Choice, by: str) -> str:
    definition = segments.parse_definition(choice.segment)
    with db.transaction(settings.database) as session:
        saved = segments.save(session, choice.segment_name, definition, by)
        return str(saved.id)


async def save_segment(request: Request, choice: Choice) -> Response:
    """Save the builder's segment under the name given; the form again, with it chosen."""
    try:
        saved_id = await run_in_threadpool(
            _save_segment, settings_of(request), choice, request.scope["editor_email"]
        )
    except NewsletterError as exc:
        return await _form_page(request, choice, status_code=400, error=exc)
    return await _form_page(request, replace(choice, saved=saved_id), saved_notice=True)


def _saved_definition(settings: Settings, saved_id: str) -> segments.Definition:
    if not saved_id.isdigit():
        raise InputError(Message("segment.choose", "segment: choose a saved segment"))
    with db.transaction(settings.database) as session:
        return segments.parse_definition(segments.find(session, int(saved_id)).definition)


async def load_segment(request: Request, choice: Choice) -> Response:
    """Fill the builder with a saved segment (the form without JS; the script does it at once)."""
    try:
        definition = await run_in_threadpool(_saved_definition, settings_of(request), choice.saved)
    except NewsletterError as exc:
        return await _form_page(request, choice, status_code=400, error=exc)
    segment = {field: definition.get(field, []) for field in segments.FIELDS}
    return await _form_page(request, replace(choice, segment=segment))


SEGMENT_ACTIONS = {"count": count_choice, "save": save_segment, "load": load_segment}


@editor_only
async def segment_count(request: Request) -> Response:
    """The live count of the builder: ``{"count": n}``, or ``{"error": …}`` with 400."""
    settings = settings_of(request)
    query = request.query_params
    try:
        slugs = chosen_lists(query.getlist("list"), await run_in_threadpool(_all_lists, settings))
        definition = segments.parse_definition(
            {field: query.getlist(f"seg.{field}") for field in segments.FIELDS}
        )
        found = await run_in_threadpool(_count, settings, slugs, definition)
    except NewsletterError as exc:
        message = i18n.explain(exc, i18n.choose_language(request))
        return JSONResponse({"error": message}, status_code=400, headers=NO_STORE)
    return JSONResponse({"count": found}, headers=NO_STORE)


NO_STORE = {"cache-control": "no-store"}


async def _confirm_or_start(request: Request, form: FormData, *, start: bool) -> Response:
    settings = settings_of(request)
    slug = request.path_params["slug"]
    choice = read_choice(form)
    status_code = 200
    context: dict[str, object] = {"slug": slug, "choice": choice}
    try:
        _state, compiled = await sendable(request)
        slugs = chosen_lists(choice.lists, await run_in_threadpool(_all_lists, settings))
        where = segments.parse_definition(choice.segment)
        send_at = parse_send_at(choice.send_at_text)
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
        return await _form_page(request, choice, status_code=400, error=exc)
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
    where: segments.Definition,
    send_at: datetime | None,
    form: FormData,
) -> Response:
    """Create the campaign the confirmation page asked for (once per page), then its dashboard."""
    token = str(form.get("start_token", ""))
    if not START_TOKEN.fullmatch(token):
        raise InputError(i18n.coded("campaign.start_token"))
    repeat = str(form.get("repeat", overlap.REFUSE))
    hold = settings_of(request).approvals > 0
    if not hold and not can(request, permissions.SEND):
        return forbidden(request)  # without approvals, this starts it: a sender's step
    created = await run_in_threadpool(
        lambda: campaign.create(
            settings_of(request),
            compiled,
            slugs,
            where,
            send_at=send_at,
            repeat=repeat,
            start_token=token,
            created_by=request.scope["editor_email"],
            hold=hold,
        )
    )
    if not created.existing:
        obj = f"campaign:{created.campaign_id}"
        await audited(request, "campaign.create", obj, issue=compiled.slug, status=created.status)
    if created.status == "running" and not created.existing:
        await run_in_threadpool(dispatcher_of(request).start, created.campaign_id)
    return RedirectResponse(f"/editor/campaigns/{created.campaign_id}", status_code=303)


# Dashboard ------------------------------------------------------------------------------

#: The statuses in which ``campaign.pause``, ``resume`` and ``cancel`` accept a campaign,
#: as the dashboard offers them; the server refuses the others whatever is shown.
STEERING = {
    "pause": ("running", "scheduled"),
    "resume": ("paused",),
    "cancel": ("draft", approval.AWAITING, *campaign.ACTIVE),
}


def steering(now: campaign.Progress) -> list[str]:
    """The dashboard's buttons for the campaign: none once it is done or cancelled.

    A ``running`` campaign that sent nothing lately while rows wait (its sending process
    stopped or was killed) is offered "resume" too: the server picks it up, or says
    which live process still sends it.
    """
    offered = [action for action, statuses in STEERING.items() if now.status in statuses]
    waiting = now.counts.get(outbox.QUEUED, 0) + now.counts.get(outbox.SENDING, 0)
    if now.status == "running" and now.rate == 0 and waiting:
        offered.insert(1, "resume")
    return offered


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
        "actions": steering(now),
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
    data["created_by"] = now.created_by
    data["created"] = now.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return data


@editor_only
async def dashboard(request: Request) -> Response:
    """One campaign: live counts and the buttons to steer it."""
    now = await progress_or_404(request)
    data = _row(now)
    when = now.send_at.astimezone().strftime("%Y-%m-%d %H:%M") if now.send_at else ""
    context = {"c": data, "send_at": when, "status_labels": status_labels(request)}
    context["revision"] = {"sha256": now.source_sha256, "url": ""}
    if now.source_sha256:
        url = settings_of(request).database
        link = await run_in_threadpool(
            revisions.history_link, url, now.issue_slug, now.source_sha256
        )
        context["revision"]["url"] = link
    context["standing"] = await approval_of(request, now)
    context["clicks"] = await run_in_threadpool(clicks.panel, settings_of(request), now.campaign_id)
    return page(request, "editor/dashboard.html", context)


def status_labels(request: Request) -> dict[str, str]:
    """Campaign statuses in the page's language, for the dashboard's script."""
    lang = i18n.choose_language(request)
    return {status: i18n.translate(f"status.{status}", lang) for status in STATUSES}


async def current_file(request: Request, slug: str) -> str:
    """The fingerprint of the issue as its file compiles now (the preview hub's); '' if not."""
    try:
        state = await request.app.state.hub.state(slug)
    except NotFoundError:
        return ""
    if state.error or state.compiled is None:
        return ""
    return overlap.fingerprint(state.compiled)


async def approval_of(request: Request, now: campaign.Progress) -> approval.Standing | None:
    """Where the approvals of a campaign awaiting them stand; None for other campaigns."""
    if now.status != approval.AWAITING:
        return None
    current = await current_file(request, now.issue_slug)
    settings = settings_of(request)
    return await run_in_threadpool(approval.standing, settings, now.campaign_id, current)


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
        await audited(request, f"campaign.{action}", f"campaign:{campaign_id}")
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    except NewsletterError as exc:
        now = await progress_or_404(request)
        context = {
            "c": _row(now),
            "send_at": "",
            "error": i18n.explain(exc, i18n.choose_language(request)),
            "status_labels": status_labels(request),
            "standing": await approval_of(request, now),
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
    Route("/editor/segments/count", segment_count, methods=["GET"]),
    Route("/editor/campaigns", campaigns_list, methods=["GET"]),
    Route("/editor/campaigns/{campaign_id:int}", dashboard, methods=["GET"]),
    Route("/editor/campaigns/{campaign_id:int}/progress", progress_json, methods=["GET"]),
    Route("/editor/campaigns/{campaign_id:int}/report.csv", report, methods=["GET"]),
    Route("/editor/campaigns/{campaign_id:int}/{action:str}", steer, methods=["POST"]),
]
