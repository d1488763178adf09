"""Public pages for recipients: unsubscribe, preferences, view in browser, archive, subscribe.

Every page reached by a token answers a bad token (garbage, tampered, or naming a
person no longer here) with the same page and status, so a page never tells whether an
address exists. GET never changes anything: mail scanners follow links.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, bindparam, exists, or_, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter import db
from newsletter.audience import subscribers, tokens
from newsletter.compose.render import CompiledIssue
from newsletter.dispatch import outbox
from newsletter.errors import DeliveryError, InputError
from newsletter.models import Campaign, MailingList, Membership, OutboxRow, Subscriber
from newsletter.settings import Settings
from newsletter.web import i18n, personal, signup
from newsletter.web.auth import client_ip
from newsletter.web.email_view import email_response, with_description
from newsletter.web.templating import page

log = logging.getLogger(__name__)

INVALID_STATUS = 404
THROTTLED = "subscribe.throttled"
# Campaigns whose issue is going or went out, and may be read in the archive; a cancelled
# one only when it reached someone (cancelling at once keeps a mistaken issue private).
SENDING_STATUSES = ("running", "paused", "done")
REACHED_STATES = (outbox.SENT, outbox.UNCERTAIN)


def is_public() -> ColumnElement[bool]:
    """SQL condition: the campaign's issue went out, so the archive may show it."""
    reached = exists().where(
        OutboxRow.campaign_id == Campaign.id, OutboxRow.state.in_(REACHED_STATES)
    )
    return and_(
        Campaign.is_test.is_(False),
        Campaign.started_at.is_not(None),
        or_(Campaign.status.in_(SENDING_STATUSES), and_(Campaign.status == "cancelled", reached)),
    )


@dataclass(frozen=True)
class Holder:
    """The person a valid token names, and the list it was sent for."""

    subscriber_id: int
    email: str
    list_id: int | None
    list_name: str


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


# The token's person and list in one query (list columns NULL for no list or an unknown one).
_HOLDER = (
    select(Subscriber.id, Subscriber.email, MailingList.name, MailingList.slug)
    .select_from(Subscriber)
    .outerjoin(MailingList, MailingList.id == bindparam("list_id"))
    .where(Subscriber.id == bindparam("subscriber_id"))
)


def _holder(settings: Settings, token: str) -> Holder | None:
    """Resolve a token to its subscriber; None for any bad or unknown token alike."""
    ids = tokens.read_token(settings.key(), token)
    if ids is None:
        return None
    subscriber_id, list_id = ids
    with db.autocommit(settings.database) as connection:
        row = connection.execute(
            _HOLDER, {"subscriber_id": subscriber_id, "list_id": list_id}
        ).first()
    if row is None:
        return None
    return Holder(row.id, row.email, list_id, row.name or row.slug or "")


def invalid_token(request: Request) -> Response:
    """The one answer for every bad token."""
    context = {"title": "token.invalid_title", "body": "token.invalid"}
    return page(request, "error.html", context, status_code=INVALID_STATUS)


# Unsubscribe ----------------------------------------------------------------------------


async def unsubscribe_page(request: Request) -> Response:
    """Ask for confirmation; change nothing."""
    holder = await run_in_threadpool(_holder, settings_of(request), request.path_params["token"])
    if holder is None:
        return invalid_token(request)
    context = {"holder": holder, "token": request.path_params["token"]}
    return page(request, "public/unsubscribe.html", context)


async def unsubscribe(request: Request) -> Response:
    """Unsubscribe: the page's button, or RFC 8058 one-click (no cookies, any origin).

    The one-click POST carries ``List-Unsubscribe=One-Click``; it gets a short 200 answer
    and never a redirect. Repeating either is harmless.
    """
    settings = settings_of(request)
    form = await request.form(max_files=0, max_fields=20)
    one_click = form.get("List-Unsubscribe") == "One-Click"
    source = "one-click" if one_click else "unsubscribe page"
    token = request.path_params["token"]
    if not await run_in_threadpool(_unsubscribe, settings, token, source):
        if one_click:
            return PlainTextResponse("invalid link\n", status_code=INVALID_STATUS)
        return invalid_token(request)
    if one_click:
        return PlainTextResponse("unsubscribed\n", headers={"cache-control": "no-store"})
    return page(request, "public/unsubscribed.html", {"token": token})


def _unsubscribe(settings: Settings, token: str, source: str) -> bool:
    """Unsubscribe the token's holder, committed before it returns; False for a bad token.

    A token for one list the person is on takes one statement on PostgreSQL and one
    short transaction on SQLite (``leave_list_at_once``): under 20 concurrent one-click
    POSTs each extra statement or transaction is queueing for SQLite's one writer, or a
    round trip to PostgreSQL (benchmarks/unsubscribe.py). Everything else (a token for
    all lists, a list never joined, a repeat, an unknown person) takes one transaction.
    """
    ids = tokens.read_token(settings.key(), token)
    if ids is None:
        return False
    subscriber_id, list_id = ids
    if list_id is not None and subscribers.leave_list_at_once(
        settings.database, subscriber_id, list_id, source
    ):
        return True
    with db.write_transaction(settings.database) as session:
        if subscribers.unsubscribe(session, settings.key(), subscriber_id, list_id, source):
            return True
        return session.get(Subscriber, subscriber_id) is not None


# Preferences ----------------------------------------------------------------------------


def _memberships(settings: Settings, subscriber_id: int) -> list[dict[str, object]]:
    """The person's lists with whether each is active."""
    with db.transaction(settings.database) as session:
        rows = session.execute(
            select(MailingList.id, MailingList.name, MailingList.slug, Membership.status)
            .join(Membership, Membership.list_id == MailingList.id)
            .where(Membership.subscriber_id == subscriber_id)
            .order_by(MailingList.name, MailingList.slug)
        )
        return [
            {"id": row.id, "name": row.name or row.slug, "active": row.status == "active"}
            for row in rows
        ]


async def preferences_page(request: Request) -> Response:
    """Show the person's lists with checkboxes, and a button to leave all."""
    settings = settings_of(request)
    holder = await run_in_threadpool(_holder, settings, request.path_params["token"])
    if holder is None:
        return invalid_token(request)
    lists = await run_in_threadpool(_memberships, settings, holder.subscriber_id)
    context = {
        "holder": holder,
        "lists": lists,
        "token": request.path_params["token"],
        "saved": request.query_params.get("saved") == "1",
    }
    return page(request, "public/preferences.html", context)


async def save_preferences(request: Request) -> Response:
    """Keep the chosen lists, or leave all; then show the page again."""
    settings = settings_of(request)
    token = request.path_params["token"]
    holder = await run_in_threadpool(_holder, settings, token)
    if holder is None:
        return invalid_token(request)
    form = await request.form(max_files=0, max_fields=500)
    leave_all = form.get("action") == "leave_all"
    chosen = {int(v) for v in form.getlist("list") if isinstance(v, str) and v.isdigit()}
    await run_in_threadpool(_save_preferences, settings, holder, chosen, leave_all)
    return RedirectResponse(f"/p/{token}?saved=1", status_code=303)


def _save_preferences(
    settings: Settings, holder: Holder, chosen: set[int], leave_all: bool
) -> None:
    with db.transaction(settings.database) as session:
        if leave_all:
            subscribers.unsubscribe(
                session, settings.key(), holder.subscriber_id, None, "preferences page"
            )
        else:
            subscribers.set_preferences(
                session, settings.key(), holder.subscriber_id, chosen, "preferences page"
            )


# View in browser and archive ------------------------------------------------------------


def _sent_issue(settings: Settings, campaign_id: int, token: str | None) -> str | None:
    """The campaign's HTML for the token's holder, neutral without one; None if not shown.

    A test send, or a campaign that is not public, is shown only to a token holder it was
    sent to: every subscriber holds a valid token, and must not read unpublished drafts.
    """
    with db.transaction(settings.database) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.started_at is None or not campaign.compiled:
            return None
        public = bool(session.scalar(select(is_public()).where(Campaign.id == campaign_id)))
        ids = tokens.read_token(settings.key(), token) if token else None
        subscriber = session.get(Subscriber, ids[0]) if ids else None
        if subscriber is not None and not public:
            subscriber = subscriber if _was_sent(session, campaign_id, subscriber.id) else None
        if subscriber is not None and ids is not None:
            values = personal.for_subscriber(settings, subscriber, campaign_id, ids[1])
        elif public:
            values = personal.neutral(settings)
        else:
            return None
        compiled = CompiledIssue.from_dict(campaign.compiled)
    html, _text = compiled.personalise(values)
    return with_description(html, compiled.preheader)


def _was_sent(session: Session, campaign_id: int, subscriber_id: int) -> bool:
    """True when the campaign has a copy for the subscriber (their outbox row)."""
    row = session.scalar(
        select(OutboxRow.id)
        .where(OutboxRow.campaign_id == campaign_id, OutboxRow.subscriber_id == subscriber_id)
        .limit(1)
    )
    return row is not None


async def view_in_browser(request: Request) -> Response:
    """A sent issue as its recipient saw it; personal values blank for a bad token."""
    html = await run_in_threadpool(
        _sent_issue,
        settings_of(request),
        request.path_params["campaign_id"],
        request.path_params["token"],
    )
    if html is None:
        raise HTTPException(status_code=404)
    return email_response(html)


async def archive_issue(request: Request) -> Response:
    """A sent issue with no personal values, for the archive."""
    html = await run_in_threadpool(
        _sent_issue, settings_of(request), request.path_params["campaign_id"], None
    )
    if html is None:
        raise HTTPException(status_code=404)
    return email_response(html)


def _archive(settings: Settings) -> list[dict[str, object]]:
    with db.transaction(settings.database) as session:
        rows = session.execute(
            select(Campaign.id, Campaign.subject, Campaign.started_at)
            .where(is_public())
            .order_by(Campaign.started_at.desc(), Campaign.id.desc())
        )
        return [
            {"id": row.id, "subject": row.subject, "date": row.started_at.date().isoformat()}
            for row in rows
        ]


async def archive(request: Request) -> Response:
    """Sent issues, newest first."""
    issues = await run_in_threadpool(_archive, settings_of(request))
    return page(request, "public/archive.html", {"issues": issues})


# Subscribe (double opt-in) --------------------------------------------------------------


def _lists(settings: Settings) -> list[dict[str, object]]:
    with db.transaction(settings.database) as session:
        return [
            {"id": m.id, "name": m.name or m.slug, "description": m.description}
            for m in signup.open_lists(session)
        ]


async def subscribe_form(request: Request) -> Response:
    """The subscribe form."""
    lists = await run_in_threadpool(_lists, settings_of(request))
    return page(request, "public/subscribe.html", {"lists": lists, "error": "", "values": {}})


async def subscribe(request: Request) -> Response:
    """Check the form and mail a confirmation link; the same answer for every address."""
    settings = settings_of(request)
    form = await request.form(max_files=0, max_fields=200)
    values = {"email": str(form.get("email", "")), "name": str(form.get("name", ""))}
    chosen = [int(v) for v in form.getlist("list") if isinstance(v, str) and v.isdigit()]
    error = "" if form.get("consent") == "yes" else "subscribe.no_consent"
    lang = i18n.choose_language(request)
    guard: signup.ResendGuard = request.app.state.resend_guard
    if not error and not guard.client_allowed(client_ip(request)):
        error = THROTTLED
    if not error:
        error = await run_in_threadpool(_request_signup, settings, guard, values, chosen, lang)
    if error:
        lists = await run_in_threadpool(_lists, settings)
        context = {"lists": lists, "error": error, "values": values, "chosen": chosen}
        status = 429 if error == THROTTLED else 400
        return page(request, "public/subscribe.html", context, status_code=status)
    return page(request, "public/subscribe_sent.html")


def _request_signup(
    settings: Settings,
    guard: signup.ResendGuard,
    values: dict[str, str],
    chosen: list[int],
    lang: str,
) -> str:
    """Validate and mail the confirmation; return an i18n key of the form's error, or ''."""
    key = settings.key()
    with db.transaction(settings.database) as session:
        try:
            request = signup.prepare(session, values["email"], values["name"], chosen)
        except InputError as exc:
            field = str(exc).partition(":")[0]
            return {"lists": "subscribe.no_lists", "name": "subscribe.bad_name"}.get(
                field, "subscribe.invalid"
            )
        allowed = signup.may_mail(session, key, request.email)
        names = [m.name or m.slug for m in signup.open_lists(session) if m.id in request.list_ids]
    if not allowed or not guard.allow(key, request.email):
        return ""  # answer as if mailed: the page must not tell what we know of an address
    try:
        signup.send_confirmation_link(settings, request, lang, names)
    except DeliveryError as exc:
        log.warning("confirmation mail not sent: %s", exc)
    return ""


async def confirm_page(request: Request) -> Response:
    """Ask for a button press before confirming (link scanners must not subscribe anyone)."""
    found = signup.read_confirm_token(settings_of(request).key(), request.path_params["token"])
    if found is None:
        return invalid_token(request)
    return page(
        request,
        "public/confirm.html",
        {"token": request.path_params["token"], "email": found.email},
    )


async def confirm(request: Request) -> Response:
    """Apply the confirmed subscription."""
    settings = settings_of(request)
    found = signup.read_confirm_token(settings.key(), request.path_params["token"])
    if found is None:
        return invalid_token(request)
    await run_in_threadpool(_confirm, settings, found)
    return page(request, "public/confirmed.html")


def _confirm(settings: Settings, found: signup.SignupRequest) -> None:
    with db.transaction(settings.database) as session:
        signup.confirm(session, settings.key(), found, {})


routes = [
    Route("/u/{token}", unsubscribe_page, methods=["GET"]),
    Route("/u/{token}", unsubscribe, methods=["POST"]),
    Route("/p/{token}", preferences_page, methods=["GET"]),
    Route("/p/{token}", save_preferences, methods=["POST"]),
    Route("/v/{campaign_id:int}/{token}", view_in_browser, methods=["GET"]),
    Route("/archive", archive, methods=["GET"]),
    Route("/archive/{campaign_id:int}", archive_issue, methods=["GET"]),
    Route("/subscribe", subscribe_form, methods=["GET"]),
    Route("/subscribe", subscribe, methods=["POST"]),
    Route("/confirm/{token}", confirm_page, methods=["GET"]),
    Route("/confirm/{token}", confirm, methods=["POST"]),
]
