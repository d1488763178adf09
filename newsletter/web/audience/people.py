"""Editor pages of people: find a person, their page and its actions, add a person.

The work is the audience layer's, by the functions the command line calls: unsubscribe
is ``subscribers.unsubscribe``, the export download is ``subscribers export``'s JSON
(``export_subscriber``), erasure is ``erase_person``; editing, resubscribing,
reactivating and adding are ``audience.people``'s. Each action asks for a reason or a
consent source, recorded in the person's consent events. A form's problems are shown
beside its fields (``FormError`` codes, translated as ``people.error.<code>``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter import db
from newsletter.audience import people
from newsletter.audience.subscribers import (
    ATTRIBUTES,
    audit_name,
    erase_person,
    export_subscriber,
    normalise_email,
    unsubscribe,
)
from newsletter.errors import DeliveryError, InputError, NotFoundError
from newsletter.models import MailingList, Subscriber
from newsletter.settings import Settings
from newsletter.web import signup
from newsletter.web.auth import audited, editor_only
from newsletter.web.templating import page

SEARCH_PAGE = "editor/people/index.html"
PERSON_PAGE = "editor/people/person.html"
NEW_PAGE = "editor/people/new.html"
T = TypeVar("T")


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


async def in_session(request: Request, work: Callable[[Session, bytes], T]) -> T:
    """Run ``work(session, key)`` in one transaction, off the event loop."""
    settings = settings_of(request)

    def run() -> T:
        with db.transaction(settings.database) as session:
            return work(session, settings.key())

    return await run_in_threadpool(run)


def when(moment: str | None) -> str:
    """An ISO time of the export, as the pages show times (local, to the minute)."""
    if not moment:
        return ""
    return datetime.fromisoformat(moment).astimezone().strftime("%Y-%m-%d %H:%M")


def subscriber_id_of(request: Request) -> int:
    """The person's id in the path."""
    return int(request.path_params["subscriber_id"])


def field(form: FormData, name: str) -> str:
    """A text field of the form, as sent (empty when missing)."""
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


# Finding ------------------------------------------------------------------------------


@editor_only
async def search_page(request: Request) -> Response:
    """Find a person by address, name, municipality or institution; a page at a time."""
    query = request.query_params.get("q", "")
    number = request.query_params.get("page", "1")
    number_int = int(number) if number.isdigit() and 0 < int(number) < 100_000 else 1
    found = await in_session(request, lambda s, _k: people.search(s, query, number_int))
    context = {
        "found": found,
        "erased": request.query_params.get("erased") == "1",
        "page_url": lambda n: "/editor/people?" + urlencode({"q": found.query, "page": n}),
    }
    return page(request, SEARCH_PAGE, context)


# One person ---------------------------------------------------------------------------


def _profile_values(record: dict[str, Any]) -> dict[str, str]:
    profile = record["profile"]
    values = {name: profile[name] for name in ("name", "municipality", "role")}
    values.update({name: str(profile["attributes"].get(name, "")) for name in ATTRIBUTES})
    return values


async def _person_page(
    request: Request, *, status_code: int = 200, failed: str = "", **context: Any
) -> Response:
    """The person's page; 404 when nobody has this id (never was, or was erased)."""
    subscriber_id = subscriber_id_of(request)

    def read(session: Session, key: bytes) -> tuple[dict[str, Any] | None, list[Any]]:
        return people.person_record(session, key, subscriber_id), people.all_lists(session)

    record, lists = await in_session(request, read)
    if record is None:
        raise HTTPException(status_code=404)
    values: dict[str, Any] = {
        "person": record,
        "subscriber_id": subscriber_id,
        "lists": lists,
        "on_list": {m["list_id"]: m["status"] for m in record["memberships"]},
        "fields": people.EDITABLE,
        "edit": _profile_values(record),
        "errors": {},
        "failed": failed,
        "done": request.query_params.get("done", ""),
        "when": when,
    }
    values.update(context)
    return page(request, PERSON_PAGE, values, status_code=status_code)


@editor_only
async def person_page(request: Request) -> Response:
    """Profile, lists, consent history, messages sent, bounces, and the actions."""
    return await _person_page(request)


def _done(request: Request, what: str) -> Response:
    """Back to the person's page after an action (POST, redirect, GET)."""
    return RedirectResponse(
        f"/editor/people/{subscriber_id_of(request)}?done={what}", status_code=303
    )


async def _act(
    request: Request, name: str, work: Callable[[Session, bytes, FormData], object]
) -> Response:
    """Run one action of the page; its form's problems are shown beside its fields."""
    form = await request.form()
    try:
        await in_session(request, lambda session, key: work(session, key, form))
    except people.FormError as exc:
        return await _person_page(request, status_code=400, failed=name, errors=exc.problems)
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    await audited(request, f"person.{name}", f"subscriber:{subscriber_id_of(request)}")
    return _done(request, name)


def _who(request: Request) -> str:
    return str(request.scope["editor_email"])


def _list_choice(form: FormData) -> int | None:
    """The list of an unsubscribe form: an id, or None for every list."""
    chosen = field(form, "list_id")
    if chosen == "all":
        return None
    if not chosen.isdigit():
        raise people.FormError({"list_id": "required"})
    return int(chosen)


@editor_only
async def unsubscribe_person(request: Request) -> Response:
    """Unsubscribe from one list or from all, with the reason given."""
    subscriber_id, by = subscriber_id_of(request), _who(request)

    def work(session: Session, key: bytes, form: FormData) -> None:
        list_id = _list_choice(form)
        reason = people.required_text("reason", field(form, "reason"))
        if list_id is not None and session.get(MailingList, list_id) is None:
            raise NotFoundError(f"no list #{list_id}")
        detail = {"by": by, "reason": reason}
        unsubscribe(session, key, subscriber_id, list_id, people.SOURCE, detail=detail)

    return await _act(request, "unsubscribed", work)


@editor_only
async def edit_person(request: Request) -> Response:
    """Change the profile fields, each checked as an import checks it."""
    subscriber_id, by = subscriber_id_of(request), _who(request)
    form = await request.form()
    values = {name: field(form, name) for name in people.EDITABLE}

    def work(session: Session, _key: bytes) -> None:
        people.edit_profile(session, subscriber_id, values, field(form, "reason"), by)

    try:
        await in_session(request, work)
    except people.FormError as exc:
        context = {"errors": exc.problems, "edit": values, "reason": field(form, "reason")}
        return await _person_page(request, status_code=400, failed="edited", **context)
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    await audited(request, "person.edited", f"subscriber:{subscriber_id}")
    return _done(request, "edited")


@editor_only
async def resubscribe_person(request: Request) -> Response:
    """Put the person back on a list, on the consent source given."""
    subscriber_id, by = subscriber_id_of(request), _who(request)

    def work(session: Session, key: bytes, form: FormData) -> None:
        list_id = field(form, "list_id")
        if not list_id.isdigit():
            raise people.FormError({"list_id": "required"})
        consent = field(form, "consent_source")
        people.resubscribe(session, key, subscriber_id, int(list_id), consent, by)

    return await _act(request, "resubscribed", work)


@editor_only
async def reactivate_person(request: Request) -> Response:
    """Make a bounced address active again, with the reason given."""
    subscriber_id, by = subscriber_id_of(request), _who(request)

    def work(session: Session, key: bytes, form: FormData) -> None:
        people.reactivate(session, key, subscriber_id, field(form, "reason"), by)

    return await _act(request, "reactivated", work)


async def _address_of(request: Request) -> str:
    """The address of the person in the path; 404 when nobody has this id."""
    subscriber_id = subscriber_id_of(request)

    def read(session: Session, _key: bytes) -> str | None:
        subscriber = session.get(Subscriber, subscriber_id)
        return subscriber.email if subscriber else None

    address = await in_session(request, read)
    if address is None:
        raise HTTPException(status_code=404)
    return address


def export_file_name(email: str) -> str:
    """A file name for the export that any system accepts: letters, digits, ``.-_``."""
    return "export-" + re.sub(r"[^a-z0-9.-]+", "_", email.lower()) + ".json"


@editor_only
async def export_person(request: Request) -> Response:
    """The JSON of ``subscribers export`` for this person, as a download."""
    address = await _address_of(request)
    data = await in_session(request, lambda s, k: export_subscriber(s, k, address))
    name = export_file_name(data["email"])
    await audited(request, "person.export", audit_name(settings_of(request).key(), address))
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2) + "\n",
        media_type="application/json",
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "cache-control": "no-store",
        },
    )


@editor_only
async def erase(request: Request) -> Response:
    """Erase the person, once the editor has typed their address; then the page is gone."""
    settings = settings_of(request)
    form = await request.form()
    address = await _address_of(request)
    try:
        typed = normalise_email(field(form, "confirm_email"))
    except InputError:
        typed = ""
    if typed != address:
        return await _person_page(
            request, status_code=400, failed="erase", errors={"confirm_email": "mismatch"}
        )
    report = await run_in_threadpool(
        erase_person,
        settings.database,
        settings.key(),
        address,
        settings.outbox,
        wait_seconds=settings.lease_seconds,
    )
    await audited(request, "person.erase", audit_name(settings.key(), address))
    compacted = "1" if report.compacted else "0"
    return RedirectResponse(f"/editor/people?erased=1&compacted={compacted}", status_code=303)


# Adding -------------------------------------------------------------------------------


def _new_values(form: FormData | None) -> dict[str, str]:
    names = ("email", "consent_source", "mode", *people.EDITABLE)
    values = {name: field(form, name) if form else "" for name in names}
    values["mode"] = values["mode"] if values["mode"] == "invite" else "add"
    return values


async def _new_page(request: Request, *, status_code: int = 200, **context: Any) -> Response:
    lists = await in_session(request, lambda s, _k: people.all_lists(s))
    values: dict[str, Any] = {
        "lists": lists,
        "values": _new_values(None),
        "chosen": [],
        "errors": {},
        "existing": None,
        "fields": people.EDITABLE,
        "invited": request.query_params.get("invited", ""),
    }
    values.update(context)
    return page(request, NEW_PAGE, values, status_code=status_code)


@editor_only
async def new_person_page(request: Request) -> Response:
    """The form to add a person by hand, or to send them an invitation."""
    return await _new_page(request)


@editor_only
async def add(request: Request) -> Response:
    """Add the person on the consent source given, or mail them a double opt-in invitation."""
    form = await request.form()
    values = _new_values(form)
    chosen = [int(v) for v in form.getlist("list") if isinstance(v, str) and v.isdigit()]
    by = _who(request)
    try:
        if values["mode"] == "invite":
            await _invite(request, values, chosen)
            await audited(request, "person.invited", "")
            return RedirectResponse("/editor/people/new?invited=1", status_code=303)
        added = await in_session(
            request,
            lambda s, k: people.add_person(
                s, k, values["email"], values, chosen, values["consent_source"], by
            ),
        )
    except people.FormError as exc:
        context = {"values": values, "chosen": chosen, "errors": exc.problems}
        return await _new_page(request, status_code=400, existing=exc.existing_id, **context)
    await audited(request, "person.added", f"subscriber:{added}")
    return RedirectResponse(f"/editor/people/{added}?done=added", status_code=303)


#: The public form's errors (``signup.prepare``) as the add form's fields and codes.
PREPARE_FIELDS = {"lists": ("lists", "required"), "name": ("name", "header")}


async def _invite(request: Request, values: dict[str, str], chosen: list[int]) -> None:
    """Mail the confirmation link of the public form; nothing is stored until it is confirmed.

    The invitation is in the person's language when the form gives one (``en``), else
    in Lithuanian. ``FormError`` for a bad form, a bounced address, a mailbox invited in
    the last minutes (the public form's limit) or a mail server that refused it.
    """
    settings = settings_of(request)
    guard: signup.ResendGuard = request.app.state.resend_guard

    def prepare(session: Session, key: bytes) -> tuple[signup.SignupRequest, bool, list[str]]:
        try:
            asked = signup.prepare(session, values["email"], values["name"], chosen)
        except InputError as exc:
            where, code = PREPARE_FIELDS.get(str(exc).partition(":")[0], ("email", "invalid"))
            raise people.FormError({where: code}) from None
        names = [name for list_id, _slug, name in people.all_lists(session) if list_id in chosen]
        return asked, signup.may_mail(session, key, asked.email), names

    asked, allowed, names = await in_session(request, prepare)
    if not allowed:
        raise people.FormError({"email": "bounced"})
    if not guard.allow(settings.key(), asked.email):
        raise people.FormError({"email": "recently_invited"})
    lang = "en" if values.get("language", "").strip().lower() == "en" else "lt"
    try:
        await run_in_threadpool(signup.send_confirmation_link, settings, asked, lang, names)
    except DeliveryError:
        raise people.FormError({"email": "not_sent"}) from None


routes = [
    Route("/editor/people", search_page, methods=["GET"]),
    Route("/editor/people/new", new_person_page, methods=["GET"]),
    Route("/editor/people/new", add, methods=["POST"]),
    Route("/editor/people/{subscriber_id:int}", person_page, methods=["GET"]),
    Route("/editor/people/{subscriber_id:int}/unsubscribe", unsubscribe_person, methods=["POST"]),
    Route("/editor/people/{subscriber_id:int}/edit", edit_person, methods=["POST"]),
    Route("/editor/people/{subscriber_id:int}/resubscribe", resubscribe_person, methods=["POST"]),
    Route("/editor/people/{subscriber_id:int}/reactivate", reactivate_person, methods=["POST"]),
    Route("/editor/people/{subscriber_id:int}/export", export_person, methods=["GET"]),
    Route("/editor/people/{subscriber_id:int}/erase", erase, methods=["POST"]),
]
