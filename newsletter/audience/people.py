"""People: finding a person, and what an editor does for one (edit, resubscribe, add).

The editors' person pages call these, as the command line calls ``subscribers``:
unsubscribing, exporting and erasing are ``subscribers.unsubscribe``,
``export_subscriber`` and ``erase_person`` themselves. Every change here appends a
consent event naming the editor and the reason or consent source they gave.

Finding a person searches ``Subscriber.search`` (the address, name, municipality and
institution folded by ``models.fold``) for a folded substring of the query: "siauliu"
finds "Šiaulių m.". PostgreSQL answers from a trigram index (``ix_subscribers_search``,
pg_trgm); SQLite scans, which for the few thousand people of an embedded install is
a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from newsletter.audience.lists import HEADER_FIELDS, MAX_ATTRIBUTE_LENGTH, MAX_LENGTHS
from newsletter.audience.subscribers import (
    ATTRIBUTES,
    email_hmac,
    export_subscriber,
    find_subscriber,
    normalise_email,
    record_event,
    take_write_lock,
)
from newsletter.errors import InputError, NotFoundError
from newsletter.headers import CONTROL_CHARACTERS, UnsafeValueError, check_header_text
from newsletter.models import MailingList, Membership, Subscriber, Suppression, fold

#: People shown per page of search results.
PAGE_SIZE = 25
#: A query longer than this is cut (no field is longer than an address, 320).
MAX_QUERY = 320
#: Reasons and consent sources are kept in ``consent_events.source`` (300) and its detail.
MAX_REASON = 300
#: The profile fields an editor may change; the address itself is not one of them (a new
#: address is a new person: add them, and unsubscribe or erase the old one).
EDITABLE = ("name", "municipality", "role", *ATTRIBUTES)
#: Where a person's change is recorded as coming from.
SOURCE = "editor"


class FormError(InputError):
    """Fields of a form that cannot be accepted: ``problems`` maps a field to a code.

    The codes are ``CODES`` (the pages show each as ``people.error.<code>``);
    ``existing_id`` names the person who already has the address (``exists``).
    """

    #: Every code a problem may have; the last three are the pages' own (a mistyped
    #: confirmation, an invitation sent moments ago, a mail server that refused it).
    CODES = (
        "required",
        "too_long",
        "control",
        "header",
        "invalid",
        "suppressed",
        "exists",
        "bounced",
        "mismatch",
        "recently_invited",
        "not_sent",
    )

    def __init__(self, problems: Mapping[str, str], *, existing_id: int | None = None) -> None:
        unknown = set(problems.values()) - set(self.CODES)
        if unknown:
            raise ValueError(f"unknown form error codes {sorted(unknown)}")  # a bug
        self.problems = dict(problems)
        self.existing_id = existing_id
        super().__init__("; ".join(f"{field}: {code}" for field, code in self.problems.items()))


# Finding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One person in the search results."""

    id: int
    email: str
    name: str
    municipality: str
    institution: str
    status: str


@dataclass(frozen=True)
class SearchPage:
    """A page of search results; ``has_more`` when a next page exists."""

    query: str
    page: int
    people: list[Found]
    has_more: bool


def search(session: Session, query: str, page: int = 1, per_page: int = PAGE_SIZE) -> SearchPage:
    """The people whose address, name, municipality or institution contains ``query``.

    Case and diacritics do not matter; results come in address order. No total is
    counted (for a broad query on a million people that count alone is slow): one row
    more than a page tells whether a next page exists.
    """
    text = CONTROL_CHARACTERS.sub(" ", query)[:MAX_QUERY].strip()
    page = max(page, 1)
    statement = select(
        Subscriber.id,
        Subscriber.email,
        Subscriber.name,
        Subscriber.municipality,
        Subscriber.attributes["institution"].as_string(),
        Subscriber.status,
    )
    if text:
        statement = statement.where(Subscriber.search.contains(fold(text), autoescape=True))
    rows = session.execute(
        statement.order_by(Subscriber.email).offset((page - 1) * per_page).limit(per_page + 1)
    ).all()
    people = [Found(r[0], r[1], r[2], r[3], r[4] or "", r[5]) for r in rows[:per_page]]
    return SearchPage(text, page, people, len(rows) > per_page)


# One person ---------------------------------------------------------------------------


def person_record(session: Session, key: bytes, subscriber_id: int) -> dict[str, Any] | None:
    """Everything held about the person (``export_subscriber``), or None when there is nobody.

    Each membership also carries its list's ``list_id``, for the page's actions.
    """
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    record = export_subscriber(session, key, subscriber.email)
    ids = {
        slug: list_id for slug, list_id in session.execute(select(MailingList.slug, MailingList.id))
    }
    for membership in record["memberships"]:
        membership["list_id"] = ids.get(membership["list"])
    record["bounces"] = [e for e in record["consent_events"] if e["kind"] == "bounce"]
    return record


def required_text(field: str, value: str) -> str:
    """``value`` stripped; ``FormError`` when it is empty, too long or not one line."""
    text = value.strip()
    code = "required" if not text else field_problem(field, text, MAX_REASON)
    if code:
        raise FormError({field: code})
    return text


def field_problem(field: str, value: str, limit: int | None = None) -> str:
    """Why ``value`` cannot be stored in ``field`` (a code of ``FormError``), or "".

    The importer's rules: one line, the columns' lengths, and for the values that go
    into a mail header the message builder's own check (``headers.check_header_text``).
    """
    if CONTROL_CHARACTERS.search(value):
        return "control"
    if field in HEADER_FIELDS:
        try:
            check_header_text(value)
        except UnsafeValueError:
            return "header"
    most = limit or MAX_LENGTHS.get(field, MAX_ATTRIBUTE_LENGTH)
    return "too_long" if len(value) > most else ""


def _profile_problems(values: Mapping[str, str]) -> dict[str, str]:
    found = {field: field_problem(field, values.get(field, "")) for field in EDITABLE}
    return {field: code for field, code in found.items() if code}


def _who(by: str, **more: str) -> dict[str, str]:
    """The detail of an editor's consent event: who, and what they gave."""
    return {"by": by, **{k: v for k, v in more.items() if v}}


def _subscriber(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFoundError(f"no subscriber #{subscriber_id}")
    return subscriber


def edit_profile(
    session: Session, subscriber_id: int, values: Mapping[str, str], reason: str, by: str
) -> list[str]:
    """Change the person's profile fields to ``values``; return the fields that changed.

    Every field is checked first, all problems raised at once (``FormError``); an
    unchanged form records nothing.
    """
    values = {field: values.get(field, "").strip() for field in EDITABLE}
    problems = _profile_problems(values)
    try:
        reason = required_text("reason", reason)
    except FormError as exc:
        problems.update(exc.problems)
    if problems:
        raise FormError(problems)
    take_write_lock(session)
    subscriber = _subscriber(session, subscriber_id)
    changed = [field for field in EDITABLE if _current(subscriber, field) != values[field]]
    if not changed:
        return []
    attributes = dict(subscriber.attributes or {})
    for field in changed:
        value = values[field]
        if field in ATTRIBUTES:
            attributes[field] = value
            if not value:
                del attributes[field]
        else:
            setattr(subscriber, field, value)
    subscriber.attributes = attributes
    detail = {"action": "edited", "fields": changed, **_who(by, reason=reason)}
    record_event(session, subscriber.id, "admin", SOURCE, detail=detail)
    return changed


def _current(subscriber: Subscriber, field: str) -> str:
    if field in ATTRIBUTES:
        return str((subscriber.attributes or {}).get(field, ""))
    return str(getattr(subscriber, field) or "")


def _suppression(session: Session, key: bytes, email: str) -> str | None:
    digest = email_hmac(key, email)
    return session.scalar(select(Suppression.reason).where(Suppression.email_hmac == digest))


def resubscribe(
    session: Session, key: bytes, subscriber_id: int, list_id: int, consent_source: str, by: str
) -> bool:
    """Put the person back on a list they left, on the consent they gave (``consent_source``).

    Refused (``FormError``) without a consent source, for a bounced address (reactivate it
    first) and for a suppressed one that was erased or complained. An unsubscribe from
    every list is lifted with it. Returns False when they were on the list already.
    """
    consent = required_text("consent_source", consent_source)
    take_write_lock(session)
    subscriber = _subscriber(session, subscriber_id)
    if subscriber.status == "bounced":
        raise FormError({"consent_source": "bounced"})
    if _suppression(session, key, subscriber.email) in ("erased", "complaint"):
        raise FormError({"consent_source": "suppressed"})
    if session.get(MailingList, list_id) is None:
        raise NotFoundError(f"no list #{list_id}")
    membership = next((m for m in subscriber.memberships if m.list_id == list_id), None)
    if membership is not None and membership.status == "active":
        return False
    if membership is None:
        session.add(Membership(subscriber_id=subscriber.id, list_id=list_id, status="active"))
    else:
        membership.status = "active"
    if subscriber.status == "unsubscribed":
        subscriber.status = "active"
        _lift(session, key, subscriber.email, "unsubscribed")
    detail = _who(by, action="resubscribed by an editor")
    record_event(session, subscriber.id, "subscribe", consent, list_id=list_id, detail=detail)
    return True


def _lift(session: Session, key: bytes, email: str, reason: str) -> None:
    """Delete the address's suppression when it is for ``reason`` (and no other)."""
    session.execute(
        delete(Suppression).where(
            Suppression.email_hmac == email_hmac(key, email), Suppression.reason == reason
        )
    )


def reactivate(session: Session, key: bytes, subscriber_id: int, reason: str, by: str) -> bool:
    """Make a bounced address active again (e.g. its mailbox works again), with a reason.

    The bounce count starts again from zero and the bounce suppression is lifted; the
    person's memberships are as they were. False when the address had not bounced.
    """
    reason = required_text("reason", reason)
    take_write_lock(session)
    subscriber = _subscriber(session, subscriber_id)
    if subscriber.status != "bounced":
        return False
    subscriber.status = "active"
    subscriber.bounce_count = 0
    _lift(session, key, subscriber.email, "bounced")
    detail = {"action": "reactivated after bounces", **_who(by, reason=reason)}
    record_event(session, subscriber.id, "admin", SOURCE, detail=detail)
    return True


def add_person(
    session: Session,
    key: bytes,
    email: str,
    values: Mapping[str, str],
    list_ids: Collection[int],
    consent_source: str,
    by: str,
) -> int:
    """Add a person by hand to ``list_ids``, on the consent they gave; return their id.

    Refused (``FormError``, every problem at once) for an invalid address, one already
    held (``existing_id`` names them) or suppressed (unsubscribed, bounced or erased:
    only the person's own confirmation brings such an address back), without a consent
    source or a list. Each list gets a ``subscribe`` event with the consent source.
    """
    values = {field: values.get(field, "").strip() for field in EDITABLE}
    problems = _profile_problems(values)
    address = ""
    try:
        address = normalise_email(email)
    except InputError:
        problems["email"] = "invalid"
    try:
        consent = required_text("consent_source", consent_source)
    except FormError as exc:
        problems.update(exc.problems)
    take_write_lock(session)
    known = set(session.scalars(select(MailingList.id).where(MailingList.id.in_(list_ids))))
    if not known:
        problems["lists"] = "required"
    existing = find_subscriber(session, address) if address else None
    if existing is not None:
        problems["email"] = "exists"
    elif address and _suppression(session, key, address) is not None:
        problems["email"] = "suppressed"
    if problems:
        raise FormError(problems, existing_id=existing.id if existing else None)
    person = Subscriber(
        email=address,
        name=values["name"],
        municipality=values["municipality"],
        role=values["role"],
        attributes={k: values[k] for k in ATTRIBUTES if values[k]},
    )
    session.add(person)
    session.flush()
    for list_id in sorted(known):
        session.add(Membership(subscriber_id=person.id, list_id=list_id, status="active"))
        detail = _who(by, action="added by an editor")
        record_event(session, person.id, "subscribe", consent, list_id=list_id, detail=detail)
    return person.id


def all_lists(session: Session) -> list[tuple[int, str, str]]:
    """Every list as (id, slug, name), by name: the choices of the person pages."""
    rows = session.execute(
        select(MailingList.id, MailingList.slug, MailingList.name).order_by(
            MailingList.name, MailingList.slug
        )
    )
    return [(r[0], r[1], r[2] or r[1]) for r in rows]
