"""Subscribers: addresses, segments, who may receive mail, and consent changes.

Everything the sender and the web pages ask about a person goes through here:

- ``normalise_email`` and ``email_hmac`` give the one spelling an address is stored and
  suppressed under (lower case, domain in punycode) and its keyed HMAC;
- ``eligible_recipients`` is the set-based SELECT a campaign's outbox is filled from,
  and ``can_receive`` the check made immediately before each send;
- ``unsubscribe``, ``set_preferences`` and ``record_bounce`` change consent and append
  a ``ConsentEvent`` for each change.

Suppression is kept as an HMAC of the normalised address, never the address itself, so
an erased person stays suppressed without being identifiable (a plain hash of an email
is reversible by dictionary; a keyed one is not without the instance's secret).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, ClassVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    String,
    Update,
    and_,
    bindparam,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from newsletter import db
from newsletter.audience.messages import msg
from newsletter.errors import InputError, NotFoundError
from newsletter.headers import CONTROL_CHARACTERS
from newsletter.models import (
    BounceEvent,
    Campaign,
    ConsentEvent,
    MailingList,
    Membership,
    OutboxRow,
    PendingUpload,
    Subscriber,
    Suppression,
    attribute_text,
    utcnow,
)

#: Subscriber columns a segment may name directly.
SEGMENT_COLUMNS: tuple[str, ...] = ("municipality", "role", "name")

#: Extra list-file columns kept in ``Subscriber.attributes`` and usable in segments.
#: A fixed set on purpose: a municipality's spreadsheet may carry personal codes or
#: private phone numbers, and only what a newsletter needs is stored (data minimisation).
ATTRIBUTES: tuple[str, ...] = ("institution", "department", "county", "language")

_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_DOT_ATOM = re.compile(f"[{_ATEXT}]+(?:\\.[{_ATEXT}]+)*")
_LOCAL_MAX, _ADDRESS_MAX = 64, 254


def normalise_email(address: str) -> str:
    """Return the stored form of ``address``: lower case, the domain in punycode.

    Raises ``InputError`` with email-validator's reason when the address is not valid.
    No DNS lookups are made. Non-ASCII local parts are refused: they need SMTPUTF8,
    which many municipal mail servers do not offer.
    """
    text = address.strip()
    if not text:
        raise InputError(msg("email.empty"))
    if CONTROL_CHARACTERS.search(text):
        raise InputError(msg("email.control"))
    local, at, domain = text.rpartition("@")
    # Fast path for the usual shape, a plain dot-atom before the @: email-validator
    # accepts such a local part as it is, and its domain check (about 80% of its
    # 25 µs per address, measured) is cached per domain, which repeats across a list.
    if at and len(local) <= _LOCAL_MAX and _DOT_ATOM.fullmatch(local):
        ascii_domain = _checked_domain(domain)
        if ascii_domain and len(local) + 1 + len(ascii_domain) <= _ADDRESS_MAX:
            return f"{local.lower()}@{ascii_domain}"
    return validated_email(text)


def validated_email(text: str) -> str:
    """Normalise ``text`` with a full email-validator check (the slow, general path)."""
    try:
        info = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InputError(msg("email.invalid", address=text, detail=str(exc))) from None
    return f"{info.local_part.lower()}@{info.ascii_domain.lower()}"


@lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str | None:
    """The punycode domain when email-validator accepts it, else None (then the slow path)."""
    try:
        info = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return info.ascii_domain.lower()


def email_hmac(key: bytes, normalised_email: str) -> str:
    """Return the hex HMAC-SHA256 of a normalised address, as kept in ``suppressions``."""
    return hmac.new(key, normalised_email.encode("utf-8"), hashlib.sha256).hexdigest()


def audit_name(key: bytes, address: str) -> str:
    """A person as the audit log names them: never the address, its suppression HMAC."""
    return f"hmac:{email_hmac(key, normalise_email(address))}"


def resolve_lists(session: Session, slugs: Sequence[str]) -> list[MailingList]:
    """Return the lists named by ``slugs`` in that order; ``NotFoundError`` names an unknown one."""
    wanted = list(dict.fromkeys(slugs))
    found = {
        row.slug: row
        for row in session.scalars(select(MailingList).where(MailingList.slug.in_(wanted)))
    }
    for slug in wanted:
        if slug not in found:
            known = ", ".join(session.scalars(select(MailingList.slug).order_by(MailingList.slug)))
            raise NotFoundError(f"no list {slug!r}; lists: {known or '(none)'}")
    return [found[slug] for slug in wanted]


def find_subscriber(session: Session, address: str) -> Subscriber | None:
    """Return the subscriber with this address (any letter case), or None."""
    return session.scalar(select(Subscriber).where(Subscriber.email == normalise_email(address)))


# Segments and eligibility -------------------------------------------------------------


#: A segment as the code passes it: field -> one value, or values any of which matches.
Where = Mapping[str, str | Sequence[str]]


def segment_filter(
    where: Where, *, known_attributes: Collection[str] = ATTRIBUTES
) -> ColumnElement[bool]:
    """Return a condition on ``Subscriber`` matching every field of ``where`` (AND).

    Keys are the columns ``municipality``, ``role``, ``name`` or a known attribute; any
    other key raises ``InputError`` naming it. A value matches exactly; a list of values
    matches any of them (OR). ``newsletter.audience.segments`` validates what people type.
    """
    conditions: list[ColumnElement[bool]] = []
    for key, value in where.items():
        values = [value] if isinstance(value, str) else list(value)
        if key in SEGMENT_COLUMNS:
            column: ColumnElement[str] = getattr(Subscriber, key)
        elif key in known_attributes:
            column = attribute_text(key)  # the expression the segment indexes use
        else:
            known = ", ".join((*SEGMENT_COLUMNS, *known_attributes))
            raise InputError(f"unknown attribute {key!r} in --where; known: {known}")
        conditions.append(column == values[0] if len(values) == 1 else column.in_(values))
    return and_(true(), *conditions)


def eligible_recipients(list_ids: Sequence[int], where: Where) -> Select[Any]:
    """Return SELECT (subscriber_id, list_id, email) of the active members of ``list_ids``.

    One row per subscriber even when lists overlap (the lowest list id wins); both the
    subscriber and the membership must be active and the segment must match. Usable in
    ``insert(OutboxRow).from_select(["subscriber_id", "list_id", "email"], ...)``.
    """
    return (
        select(
            Subscriber.id.label("subscriber_id"),
            func.min(Membership.list_id).label("list_id"),
            Subscriber.email.label("email"),
        )
        .join(Membership, Membership.subscriber_id == Subscriber.id)
        .where(
            Membership.list_id.in_(list(list_ids)),
            Membership.status == "active",
            Subscriber.status == "active",
            segment_filter(where),
        )
        .group_by(Subscriber.id, Subscriber.email)
    )


def is_suppressed(session: Session, key: bytes, address: str) -> bool:
    """True when the (normalised) address is on the suppression list.

    An outbox row's ``erased:<hmac>`` (the person was erased after it was queued) is
    suppressed too, rather than an invalid address.
    """
    if address.startswith(ERASED_PREFIX):
        return True
    digest = email_hmac(key, normalise_email(address))
    return session.scalar(select(exists().where(Suppression.email_hmac == digest))) or False


def can_receive(
    session: Session, key: bytes, subscriber_id: int | None, list_id: int | None, email: str
) -> bool:
    """True when this message may be sent now; checked immediately before each send.

    The subscriber must still exist (None means erased), be active, still have this
    address, hold an active membership on ``list_id`` (None means the list was deleted),
    and the address must not be suppressed. One round trip.
    """
    return receiving(session, key, subscriber_id, list_id, email) is not None


def receiving(
    session: Session, key: bytes, subscriber_id: int | None, list_id: int | None, email: str
) -> Row[tuple[str, str]] | None:
    """The recipient's ``(name, municipality)`` when ``can_receive`` holds, else None.

    The sender's check and read in one statement: it runs once per recipient.
    """
    if subscriber_id is None or list_id is None:
        return None
    try:
        address = normalise_email(email)
    except InputError:
        return None
    parameters = {
        "p_subscriber": subscriber_id,
        "p_list": list_id,
        "p_email": address,
        "p_hmac": email_hmac(key, address),
    }
    found = session.connection().execute(_receiving_statement(), parameters)
    return found.first()


def receiving_many(
    session: Session, key: bytes, recipients: Sequence[tuple[int | None, int | None, str]]
) -> list[Row[tuple[str, str]] | None]:
    """``receiving`` for several ``(subscriber_id, list_id, email)``, in two statements.

    The answers come in the order asked; each is what ``receiving`` would answer in the
    same transaction (the same conditions, read from the same snapshot).
    """
    addresses = [_receivable_address(*wanted) for wanted in recipients]
    digests = {address: email_hmac(key, address) for address in addresses if address}
    if not digests:
        return [None] * len(recipients)
    connection = session.connection()
    ids = sorted(
        {subscriber for (subscriber, _, _), a in zip(recipients, addresses, strict=True) if a}
    )
    people = {
        (row.id, row.list_id): row
        for row in connection.execute(_receiving_many_statement(), {"p_ids": ids})
    }
    suppressed = set(
        connection.execute(_suppressed_statement(), {"p_hmacs": list(digests.values())}).scalars()
    )
    answers: list[Row[tuple[str, str]] | None] = []
    for (subscriber_id, list_id, _), address in zip(recipients, addresses, strict=True):
        person = people.get((subscriber_id, list_id)) if address else None
        allowed = person is not None and person.email == address
        answers.append(person if allowed and digests[address] not in suppressed else None)
    return answers


def _receivable_address(subscriber_id: int | None, list_id: int | None, email: str) -> str | None:
    """The normalised address of a recipient who may be checked, else None (never receives)."""
    if subscriber_id is None or list_id is None:
        return None
    try:
        return normalise_email(email)
    except InputError:
        return None


@cache
def _receiving_many_statement() -> Select[Any]:
    """Active people with their active memberships, for ``receiving_many``."""
    return (
        select(
            Subscriber.id,
            Membership.list_id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.municipality,
        )
        .join(Membership, Membership.subscriber_id == Subscriber.id)
        .where(
            Subscriber.id.in_(bindparam("p_ids", expanding=True)),
            Subscriber.status == "active",
            Membership.status == "active",
        )
    )


@cache
def _suppressed_statement() -> Select[Any]:
    return select(Suppression.email_hmac).where(
        Suppression.email_hmac.in_(bindparam("p_hmacs", expanding=True))
    )


@cache
def _receiving_statement() -> Select[tuple[str, str]]:
    """The check of ``receiving``, built once with bound parameters.

    It runs once per recipient; building the SELECT cost more than running it
    (about 0.58 ms per recipient measured in the sender, most of it construction).
    """
    suppressed = exists().where(Suppression.email_hmac == bindparam("p_hmac"))
    return (
        select(Subscriber.name, Subscriber.municipality)
        .join(Membership, Membership.subscriber_id == Subscriber.id)
        .where(
            Subscriber.id == bindparam("p_subscriber"),
            Subscriber.email == bindparam("p_email"),
            Subscriber.status == "active",
            Membership.list_id == bindparam("p_list"),
            Membership.status == "active",
            ~suppressed,
        )
    )


# Consent changes ----------------------------------------------------------------------


def take_write_lock(session: Session) -> None:
    """On SQLite, make the transaction a writer now, before it reads anything.

    A SQLite transaction that reads and then writes fails at once with "database is
    locked" when another connection committed in between (its WAL snapshot is stale),
    whatever the busy timeout; one that writes first waits its turn instead. Sending
    writes outbox rows all the time, so a one-click unsubscribe during a send would
    hit this. An UPDATE that matches nothing still takes the lock. PostgreSQL needs
    nothing: it locks rows, not the database.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(MailingList).where(false()).values(id=MailingList.id))


def suppress(session: Session, digest: str, reason: str) -> None:
    """Add the HMAC ``digest`` to the suppression list (idempotent, safe under concurrency)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(Suppression)
        .values(email_hmac=digest, reason=reason)
        .on_conflict_do_nothing(index_elements=["email_hmac"])
    )


def record_event(
    session: Session,
    subscriber_id: int,
    kind: str,
    source: str,
    *,
    list_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
    text_version: str = "",
) -> None:
    """Append one consent event (the table is never updated, only appended to)."""
    # One INSERT, not an ORM object and a flush: a third of a one-click unsubscribe's time.
    session.execute(
        insert(ConsentEvent).values(
            subscriber_id=subscriber_id,
            list_id=list_id,
            kind=kind,
            source=source[:300],
            text_version=text_version,
            detail=dict(detail or {}),
        )
    )


def unsubscribe(
    session: Session,
    key: bytes,
    subscriber_id: int,
    list_id: int | None,
    source: str,
    *,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Unsubscribe from one list, or from every list when ``list_id`` is None.

    Idempotent: a second call changes nothing and records nothing. A per-list
    unsubscribe keeps the membership row as ``unsubscribed`` (so no import re-adds it);
    unsubscribing from all also suppresses the address. Returns True when something
    changed; an unknown subscriber or list is no change (the web page must not tell).
    ``detail`` (e.g. who asked, and why) goes into the consent event.
    """
    if list_id is not None and _leave_list(session, subscriber_id, list_id):
        record_event(session, subscriber_id, "unsubscribe", source, list_id=list_id, detail=detail)
        return True
    take_write_lock(session)
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return False
    if list_id is None:
        return _unsubscribe_all(session, key, subscriber, source, detail=detail)
    if session.get(MailingList, list_id) is None:
        return False
    membership = session.scalar(
        select(Membership).where(
            Membership.subscriber_id == subscriber_id, Membership.list_id == list_id
        )
    )
    if membership is not None and membership.status == "unsubscribed":
        return False
    if membership is None:
        # Remember the refusal even for a list the person was never on.
        session.add(Membership(subscriber_id=subscriber_id, list_id=list_id, status="unsubscribed"))
    else:
        membership.status = "unsubscribed"
    record_event(session, subscriber_id, "unsubscribe", source, list_id=list_id, detail=detail)
    return True


# The one-click case on PostgreSQL, built once: mark the membership unsubscribed unless it
# already is, and append the event. Parameters: subscriber, list, source, now.
_LEAVE = (
    update(Membership)
    .where(
        Membership.subscriber_id == bindparam("subscriber"),
        Membership.list_id == bindparam("list"),
        Membership.status != "unsubscribed",
    )
    .values(status="unsubscribed", updated_at=bindparam("now"))
)
_EVENT_COLUMNS = ("subscriber_id", "list_id", "kind", "source", "text_version", "at", "detail")
# Both in one statement, the event inserted for the row the UPDATE returned.
_left = _LEAVE.returning(Membership.subscriber_id, Membership.list_id).cte("left_list")
_LEAVE_AND_RECORD = insert(ConsentEvent).from_select(
    _EVENT_COLUMNS,
    select(
        _left.c.subscriber_id,
        _left.c.list_id,
        literal("unsubscribe", String),
        bindparam("source", type_=String),
        literal("", String),
        bindparam("now", type_=ConsentEvent.__table__.c.at.type),
        literal({}, ConsentEvent.__table__.c.detail.type),
    ),
)


def leave_list_at_once(url: str, subscriber_id: int, list_id: int, source: str) -> bool:
    """Leave one list and record the event, committed; False when nothing was left to mark.

    The one-click unsubscribe's common case, with as few round trips as the database
    allows: on PostgreSQL one statement that is its own transaction (the UPDATE's
    returned row feeds the event's INSERT: both or neither, durably committed before it
    returns); on SQLite the calls that arrive together share one transaction
    (``_SqliteLeaves``). False (someone not on the list, unknown, or already
    unsubscribed) leaves the rest to ``unsubscribe``.
    """
    if db.is_sqlite(db.engine_for(url)):
        return _SqliteLeaves.of(url).leave(_Leave(subscriber_id, list_id, source[:300]))
    values = {"subscriber": subscriber_id, "list": list_id, "source": source[:300], "now": utcnow()}
    with db.autocommit(url) as connection:
        return bool(connection.execute(_LEAVE_AND_RECORD, values).rowcount)


@dataclass(eq=False)
class _Leave:
    """One caller's one-click write, waiting for a transaction to carry it."""

    subscriber_id: int
    list_id: int
    source: str
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to write the next batch rather than with its answer
    left: bool = False
    error: BaseException | None = None


# Calls written in one transaction at most (each is two terms of the UPDATE's condition).
LEAVE_BATCH = 100


@lru_cache(maxsize=LEAVE_BATCH)
def _leave_many(count: int) -> Update:
    """Mark ``count`` (subscriber, list) memberships unsubscribed, returning those changed.

    Parameters s0, l0, s1, l1 … and now; built once per count, so compiled once. An OR of
    (subscriber_id = ? AND list_id = ?) terms: each is a look-up in the unique index,
    where SQLite scans the whole table for ``(subscriber_id, list_id) IN (VALUES …)``.
    """
    pairs = (
        and_(
            Membership.subscriber_id == bindparam(f"s{i}"), Membership.list_id == bindparam(f"l{i}")
        )
        for i in range(count)
    )
    return (
        update(Membership)
        .where(or_(*pairs), Membership.status != "unsubscribed")
        .values(status="unsubscribed", updated_at=bindparam("now"))
        .returning(Membership.subscriber_id, Membership.list_id)
    )


_EVENTS = insert(ConsentEvent)


class _SqliteLeaves:
    """Group commit of one process's concurrent one-click writes to one SQLite file.

    SQLite takes one writer at a time. Each write in its own transaction held the
    process's writer lock for 0.1 ms alone, but for 0.5 ms at the median and 10 ms at
    the 99th percentile under 20 concurrent POSTs (the thread also waits for the GIL
    between its calls into SQLite), and the lock was held 65% of the time: the queue for
    it set the POST's p99 (benchmarks/unsubscribe.py). Here a caller that finds no batch
    being written writes everything queued so far in one transaction (one UPDATE, one
    INSERT, one commit) and answers all of those callers; whoever queued meanwhile is
    woken to write the next batch. Every caller still returns only after its commit.
    """

    _all: ClassVar[dict[str, _SqliteLeaves]] = {}
    _all_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.queue: list[_Leave] = []
        self.writing = False

    @classmethod
    def forget_inherited(cls) -> None:
        """In a forked child: drop the parent's queues (its batch in flight never ends here)."""
        cls._all = {}
        cls._all_lock = threading.Lock()

    @classmethod
    def of(cls, url: str) -> _SqliteLeaves:
        with cls._all_lock:
            found = cls._all.get(url)
            if found is None:
                found = cls._all[url] = cls(url)
            return found

    def leave(self, mine: _Leave) -> bool:
        with self.lock:
            self.queue.append(mine)
            lead = not self.writing
            self.writing = True
        if not lead:
            mine.done.wait()
        if mine.lead or lead:
            self._write_batch()
        if mine.error is not None:
            raise mine.error
        return mine.left

    def _write_batch(self) -> None:
        """Write what is queued (the caller's own call among it), then pass the turn on."""
        with self.lock:
            batch, self.queue = self.queue[:LEAVE_BATCH], self.queue[LEAVE_BATCH:]
        try:
            self._write(batch)
        except BaseException as exc:  # every caller of the batch raises it
            for leave in batch:
                leave.error = exc
        finally:
            with self.lock:
                following = self.queue[0] if self.queue else None
                if following is None:
                    self.writing = False
                else:
                    following.lead = True
            for leave in batch:
                leave.lead = False
                leave.done.set()
            if following is not None:
                following.done.set()

    def _write(self, batch: list[_Leave]) -> None:
        now = utcnow()
        pairs = list({(leave.subscriber_id, leave.list_id) for leave in batch})
        with db.write_connection(self.url) as connection:
            values: dict[str, object] = {"now": now}
            for number, (subscriber_id, list_id) in enumerate(pairs):
                values[f"s{number}"], values[f"l{number}"] = subscriber_id, list_id
            left = {tuple(row) for row in connection.execute(_leave_many(len(pairs)), values)}
            events = []
            for leave in batch:
                pair = (leave.subscriber_id, leave.list_id)
                leave.left = pair in left
                if leave.left:
                    left.discard(pair)  # the same person twice in a batch: one event
                    events.append(
                        {
                            "subscriber_id": leave.subscriber_id,
                            "list_id": leave.list_id,
                            "kind": "unsubscribe",
                            "source": leave.source,
                            "text_version": "",
                            "at": now,
                            "detail": {},
                        }
                    )
            if events:
                connection.execute(_EVENTS, events)


os.register_at_fork(after_in_child=_SqliteLeaves.forget_inherited)


def _leave_list(session: Session, subscriber_id: int, list_id: int) -> bool:
    """Mark the membership unsubscribed in one UPDATE; False when none was left to mark.

    The common one-click case in one statement, which is also the transaction's first
    write (so it takes SQLite's write lock before anything is read).
    """
    return bool(
        session.execute(
            update(Membership)
            .where(
                Membership.subscriber_id == subscriber_id,
                Membership.list_id == list_id,
                Membership.status != "unsubscribed",
            )
            .values(status="unsubscribed")
        ).rowcount
    )


def _unsubscribe_all(
    session: Session,
    key: bytes,
    subscriber: Subscriber,
    source: str,
    *,
    kind: str = "unsubscribe",
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Leave every list and suppress the address; the event (``kind``) only on a change.

    A complaint suppresses with its own reason, so the suppression list says why.
    """
    changed = session.execute(
        update(Membership)
        .where(Membership.subscriber_id == subscriber.id, Membership.status != "unsubscribed")
        .values(status="unsubscribed")
    ).rowcount
    was_active = subscriber.status == "active"
    if was_active:
        subscriber.status = "unsubscribed"
    reason = "complaint" if kind == "complaint" else "unsubscribed"
    suppress(session, email_hmac(key, subscriber.email), reason)
    if not (changed or was_active):
        return False
    record_event(session, subscriber.id, kind, source, detail={"scope": "all", **(detail or {})})
    return True


def set_preferences(
    session: Session, key: bytes, subscriber_id: int, active_list_ids: Collection[int], source: str
) -> bool:
    """Set which of the person's own lists stay active, as chosen on the preferences page.

    Only lists the subscriber already has a membership on can be chosen. Choosing at
    least one list after an unsubscribe-from-all makes the subscriber active again and
    lifts that suppression (the person asked for it); a bounce or erasure is never lifted.
    Returns True when something changed; records one ``preferences`` event.
    """
    take_write_lock(session)
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status == "bounced":
        return False
    chosen = set(active_list_ids)
    before: dict[int, str] = {}
    after: dict[int, str] = {}
    for membership in subscriber.memberships:
        before[membership.list_id] = membership.status
        membership.status = "active" if membership.list_id in chosen else "unsubscribed"
        after[membership.list_id] = membership.status
    reactivated = subscriber.status == "unsubscribed" and "active" in after.values()
    if reactivated:
        subscriber.status = "active"
        session.execute(
            Suppression.__table__.delete().where(
                Suppression.email_hmac == email_hmac(key, subscriber.email),
                Suppression.reason == "unsubscribed",
            )
        )
    if before == after and not reactivated:
        return False
    active = sorted(k for k, v in after.items() if v == "active")
    record_event(session, subscriber.id, "preferences", source, detail={"active_lists": active})
    return True


def record_bounce(
    session: Session, key: bytes, subscriber_id: int, threshold: int, detail: str
) -> None:
    """Count one hard bounce; at ``threshold`` mark the subscriber bounced and suppress it.

    The count is incremented in SQL so that concurrent workers do not lose bounces.
    """
    session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .values(bounce_count=Subscriber.bounce_count + 1)
        .execution_options(synchronize_session=False)
    )
    subscriber = session.get(Subscriber, subscriber_id, populate_existing=True)
    if subscriber is None or subscriber.bounce_count < threshold:
        return
    _mark_bounced(session, key, subscriber, {"bounces": subscriber.bounce_count, "reply": detail})


def _mark_bounced(
    session: Session, key: bytes, subscriber: Subscriber, detail: dict[str, Any]
) -> None:
    """Mark the subscriber bounced and suppress the address (once), with a consent event."""
    if subscriber.status == "bounced":
        return
    subscriber.status = "bounced"
    suppress(session, email_hmac(key, subscriber.email), "bounced")
    detail["reply"] = str(detail.get("reply", ""))[:500]
    record_event(session, subscriber.id, "bounce", "dispatch", detail=detail)


def record_soft_bounce(
    session: Session, key: bytes, subscriber_id: int, threshold: int, days: int, detail: str
) -> None:
    """At ``threshold`` soft bounces within ``days`` days, mark the subscriber bounced.

    The soft bounces are the ``bounce_events`` rows of kind ``soft``, the one just
    recorded included, so each report is counted once however often it is read.
    """
    since = utcnow() - timedelta(days=days)
    count = session.scalar(
        select(func.count()).where(
            BounceEvent.subscriber_id == subscriber_id,
            BounceEvent.kind == "soft",
            BounceEvent.at >= since,
        )
    )
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or (count or 0) < threshold:
        return
    _mark_bounced(session, key, subscriber, {"soft_bounces": count, "days": days, "reply": detail})


def record_complaint(session: Session, key: bytes, subscriber_id: int, detail: str) -> bool:
    """A spam complaint: unsubscribe from every list at once and suppress, with a consent event.

    Returns True when something changed (a second report of the same person changes nothing).
    """
    take_write_lock(session)
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return False
    return _unsubscribe_all(
        session, key, subscriber, "feedback loop", kind="complaint", detail={"report": detail[:500]}
    )


# Privacy: export and erasure ----------------------------------------------------------

#: Prefix of the address kept in outbox rows of an erased person: ``erased:<hmac>``.
ERASED_PREFIX = "erased:"


def export_subscriber(session: Session, key: bytes, address: str) -> dict[str, Any]:
    """Return everything held about one person, JSON-ready (GDPR access request).

    Profile, memberships, consent events, what was sent (outbox rows with their
    campaigns) and any suppression. After erasure only the suppression remains, and
    the export says so. ``NotFoundError`` when nothing at all is held.
    """
    email = normalise_email(address)
    digest = email_hmac(key, email)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
    suppression = session.scalar(select(Suppression).where(Suppression.email_hmac == digest))
    if subscriber is None and suppression is None:
        raise NotFoundError(f"no data is held about {email}")
    sent_to_them = OutboxRow.email.in_([email, ERASED_PREFIX + digest])
    if subscriber is not None:
        sent_to_them = sent_to_them | (OutboxRow.subscriber_id == subscriber.id)
    sent = session.execute(
        select(OutboxRow, Campaign)
        .join(Campaign, Campaign.id == OutboxRow.campaign_id)
        .where(sent_to_them)
        .order_by(OutboxRow.id)
    ).all()
    return {
        "email": email,
        "profile": _profile(subscriber) if subscriber else None,
        "memberships": _memberships(session, subscriber.id) if subscriber else [],
        "consent_events": _events(session, subscriber.id) if subscriber else [],
        "sent": [_sent(row, campaign) for row, campaign in sent],
        "suppression": (
            {"reason": suppression.reason, "since": _iso(suppression.created_at)}
            if suppression
            else None
        ),
    }


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes that were stored as UTC."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _profile(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "id": subscriber.id,
        "email": subscriber.email,
        "name": subscriber.name,
        "municipality": subscriber.municipality,
        "role": subscriber.role,
        "attributes": subscriber.attributes,
        "status": subscriber.status,
        "bounce_count": subscriber.bounce_count,
        "created_at": _iso(subscriber.created_at),
        "updated_at": _iso(subscriber.updated_at),
    }


def _memberships(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Membership, MailingList)
        .join(MailingList, MailingList.id == Membership.list_id)
        .where(Membership.subscriber_id == subscriber_id)
        .order_by(MailingList.slug)
    ).all()
    return [
        {
            "list": mailing_list.slug,
            "list_name": mailing_list.name,
            "status": membership.status,
            "since": _iso(membership.created_at),
            "changed": _iso(membership.updated_at),
        }
        for membership, mailing_list in rows
    ]


def _events(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ConsentEvent, MailingList.slug)
        .outerjoin(MailingList, MailingList.id == ConsentEvent.list_id)
        .where(ConsentEvent.subscriber_id == subscriber_id)
        .order_by(ConsentEvent.id)
    ).all()
    return [
        {
            "at": _iso(event.at),
            "kind": event.kind,
            "list": slug,
            "source": event.source,
            "text_version": event.text_version,
            "detail": event.detail,
        }
        for event, slug in rows
    ]


def _sent(row: Any, campaign: Any) -> dict[str, Any]:
    return {
        "campaign_id": campaign.id,
        "issue": campaign.issue_slug,
        "subject": campaign.subject,
        "state": row.state,
        "sent_at": _iso(row.sent_at),
    }


#: What an address becomes in replies and error texts kept after erasure.
ERASED_TEXT = "[erased]"


def scrub_address(text: str, address: str) -> str:
    """``text`` with every spelling (any letter case) of ``address`` replaced by ``[erased]``.

    Runs once per outcome a sender records, so the usual case (a reply that does not
    quote the address) costs one lower-casing and one search, no regular expression.
    """
    if not text or not address or address.lower() not in text.lower():
        return text
    return re.sub(re.escape(address), ERASED_TEXT, text, flags=re.IGNORECASE)


@dataclass(frozen=True)
class Erasure:
    """What an erasure found and did.

    ``outbox_rows`` is every outbox row of the person (all of them now anonymised),
    ``stopped`` those not yet sent that it ended as ``suppressed``, and ``in_flight``
    the ids of rows a sender held at that moment (``sending``): their message may still
    reach the mail server, and their outcome is recorded without the address.
    """

    held: bool
    outbox_rows: int
    stopped: int
    in_flight: tuple[int, ...]


def erase_subscriber(session: Session, key: bytes, address: str) -> Erasure:
    """Erase a person: delete their data, keep only a keyed HMAC that suppresses the address.

    The subscriber row goes (memberships and consent events with it, by cascade);
    outbox rows keep their campaign statistics but their address becomes
    ``erased:<hmac>``, their subscriber link is cut, the address is scrubbed from SMTP
    replies and failure reasons (and from a campaign's pause reason), and rows not yet
    sent are ended as ``suppressed``; a test send's campaign forgets the address it went
    to the same way. A row a sender holds stays ``sending``: the outbox writes its
    outcome without the address (``outbox._record``); ``erase_person`` waits for it. On
    SQLite, deleted bytes are overwritten (``secure_delete``); see also
    ``forget_deleted_bytes``. Idempotent: run again, it finds nothing left in plain text.

    The first statement is a write, so on SQLite the transaction holds the write lock
    before it reads anything a concurrent writer could change; on PostgreSQL the
    person's outbox rows are locked before anything is changed, so a sender recording
    one of them waits (and then sees the erased row) instead of being overwritten with
    what was read before, and both lock the outbox row before the suppression list.
    """
    email = normalise_email(address)
    digest = email_hmac(key, email)
    take_write_lock(session)
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("PRAGMA secure_delete = ON")
    subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email == email))
    theirs = OutboxRow.email.in_([email, ERASED_PREFIX + digest])
    if subscriber_id is not None:
        theirs = theirs | (OutboxRow.subscriber_id == subscriber_id)
    rows = session.execute(
        select(
            OutboxRow.id,
            OutboxRow.state,
            OutboxRow.last_error,
            OutboxRow.smtp_reply,
            OutboxRow.bounce_detail,
        )
        .where(theirs)
        .order_by(OutboxRow.id)
        .with_for_update()
    ).all()
    suppress(session, digest, "erased")
    session.execute(
        update(Suppression).where(Suppression.email_hmac == digest).values(reason="erased")
    )
    for row_id, state, last_error, smtp_reply, bounce_detail in rows:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id)
            .values(
                email=ERASED_PREFIX + digest,
                subscriber_id=None,
                last_error=scrub_address(last_error or "", email),
                smtp_reply=scrub_address(smtp_reply or "", email),
                bounce_detail=scrub_address(bounce_detail or "", email),
                state="suppressed" if state == "queued" else state,
            )
        )
    _forget_test_sends(session, email, ERASED_PREFIX + digest)
    _scrub_campaign_reasons(session, email)
    # A list file waiting between its dry run and its confirmation may hold the address,
    # and an XLSX is zipped, so no byte search can tell: every waiting upload goes (its
    # editor uploads again).
    session.execute(PendingUpload.__table__.delete())
    if subscriber_id is not None:
        session.execute(Subscriber.__table__.delete().where(Subscriber.id == subscriber_id))
    return Erasure(
        held=subscriber_id is not None,
        outbox_rows=len(rows),
        stopped=sum(state == "queued" for _, state, *_ in rows),
        in_flight=tuple(row_id for row_id, state, *_ in rows if state == "sending"),
    )


def _scrub_campaign_reasons(session: Session, email: str) -> None:
    """Scrub the address from why a campaign stopped (a refused RCPT TO may quote it)."""
    quoting = session.execute(
        select(Campaign.id, Campaign.status_reason).where(
            func.lower(Campaign.status_reason).contains(email, autoescape=True)
        )
    ).all()
    for campaign_id, reason in quoting:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(status_reason=scrub_address(reason, email))
        )


def _forget_test_sends(session: Session, email: str, replacement: str) -> None:
    """Replace the address kept on test-send campaigns (``lists["test_to"]``)."""
    sent_to_them = session.execute(
        select(Campaign.id, Campaign.lists).where(
            Campaign.is_test.is_(True), Campaign.lists["test_to"].as_string() == email
        )
    ).all()
    for campaign_id, lists in sent_to_them:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(lists={**lists, "test_to": replacement})
        )


def forget_deleted_bytes(url: str) -> bool:
    """After an erasure on SQLite, rebuild the file and empty the WAL; False if that failed.

    ``secure_delete`` zeroes what the erasure itself deleted, but older versions of the
    person's rows (before an update) can still sit in free space of a page; VACUUM
    rebuilds the file from live rows only, and a TRUNCATE checkpoint empties the WAL,
    which holds page images too. Both wait for other writers (busy timeout) and fail
    when another connection is mid-statement. PostgreSQL keeps dead row versions until
    (auto)vacuum; nothing is done for it here.
    """
    engine = db.engine_for(url)
    if not db.is_sqlite(engine):
        return True
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("VACUUM")
            busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
    except OperationalError:
        return False
    return not busy


@dataclass(frozen=True)
class ErasureReport:
    """What ``erase_person`` did, for the one line the command prints.

    ``outcomes`` counts the person's outbox rows once in-flight messages are done:
    ``sent``, ``failed``, ``uncertain`` (may have been delivered), ``stopped`` (ended by
    this erasure before they were sent) and ``unsent`` (suppressed or cancelled
    earlier). ``in_flight`` counts the rows a sender held when the erasure began by
    what became of them (the same words); ``sending`` means still unfinished when the
    wait ended, and its outcome will be stored without the address.
    """

    held: bool
    outcomes: Counter[str]
    in_flight: Counter[str]
    waited_seconds: float
    files: int
    compacted: bool


def erase_person(
    url: str,
    key: bytes,
    address: str,
    outbox_folder: Path,
    *,
    wait_seconds: float,
    on_wait: Callable[[int], None] | None = None,
) -> ErasureReport:
    """Erase one person everywhere: database, messages in flight, ``.eml`` files.

    1. ``erase_subscriber``, in one transaction: from its commit on no message is
       started for them, and any outcome recorded later is stored without the address.
    2. Wait, up to ``wait_seconds`` (a sender's lease: no claim lasts longer), for the
       rows a sender held: their message may still reach the mail server, and a folder
       transport may still be writing its file.
    3. Erase once more (idempotent): it ends as ``stopped`` what such a row left queued
       (a temporary refusal) and scrubs anything written meanwhile.
    4. Compact SQLite (``forget_deleted_bytes``) and delete the person's ``.eml`` files.

    ``on_wait`` hears how many messages are waited for, before the wait begins.
    """
    with db.transaction(url) as session:
        first = erase_subscriber(session, key, address)
    if first.in_flight and on_wait is not None:
        on_wait(len(first.in_flight))
    started = time.monotonic()
    await_rows(url, first.in_flight, wait_seconds)
    waited = time.monotonic() - started
    with db.transaction(url) as session:
        again = erase_subscriber(session, key, address)
        outcomes = _outcomes(session, key, address)
        in_flight = _states(session, first.in_flight)
    outcomes["stopped"] = first.stopped + again.stopped
    outcomes["unsent"] -= outcomes["stopped"]
    in_flight["stopped"] = in_flight.pop("suppressed", 0)
    compacted = forget_deleted_bytes(url)
    files = erase_outbox_files(outbox_folder, address)
    return ErasureReport(first.held, +outcomes, +in_flight, waited, files, compacted)


def await_rows(url: str, row_ids: Sequence[int], timeout: float, poll: float = 0.1) -> bool:
    """Wait until none of the outbox rows is ``sending``; False if ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    while row_ids:
        with db.transaction(url) as session:
            if not _states(session, row_ids)["sending"]:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def _states(session: Session, row_ids: Sequence[int]) -> Counter[str]:
    """How many of these outbox rows are in each state."""
    if not row_ids:
        return Counter()
    return Counter(session.scalars(select(OutboxRow.state).where(OutboxRow.id.in_(row_ids))))


def _outcomes(session: Session, key: bytes, address: str) -> Counter[str]:
    """The erased person's outbox rows by outcome (``unsent``: suppressed or cancelled)."""
    erased = ERASED_PREFIX + email_hmac(key, normalise_email(address))
    found: Counter[str] = Counter()
    states = session.execute(
        select(OutboxRow.state, func.count())
        .where(OutboxRow.email == erased)
        .group_by(OutboxRow.state)
    )
    for state, number in states:
        found["unsent" if state in ("suppressed", "cancelled") else state] += number
    return found


def erase_outbox_files(folder: Path, address: str) -> int:
    """Delete the ``.eml`` files written for ``address`` in the outbox folder; return how many.

    The folder transport (used when no SMTP server is set) keeps every message as a
    file, each naming its recipient. A write in progress (or cut short by a crash) is
    a hidden ``.<name>.eml.<pid>.<random>.tmp`` file: those go too, and a sender still
    writing one then fails to rename it and retries, which the erasure has stopped.
    The address must stand on its own: a longer one that contains it (``jona@…`` for
    ``ona@…``) is another person's.
    """
    needle = re.escape(normalise_email(address).encode("ascii"))
    alone = re.compile(rb"(?<![\w.!#$%&'*+/=?^`{|}~-])" + needle + rb"(?![\w-]|\.\w)")
    removed = 0
    if not folder.is_dir():
        return 0
    for path in [*folder.rglob("*.eml"), *folder.rglob(".*.eml.*.tmp")]:
        try:
            found = alone.search(path.read_bytes().lower())
        except FileNotFoundError:  # renamed or removed by its writer meanwhile
            continue
        if found:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
