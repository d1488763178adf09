"""The database tables: subscribers, lists, consent and suppression, campaigns and the outbox.

The database is the record of truth. Redis and the workers hold nothing that cannot be
rebuilt from these rows. Schema changes go through Alembic (``newsletter/migrations``).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    literal_column,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.functions import FunctionElement


def utcnow() -> datetime:
    """Current time, timezone-aware UTC (stored as UTC on every backend)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class MailingList(Base):
    """A curated list, e.g. ``savivaldybes`` (officials of the 60 municipalities)."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Offered on /subscribe. True by default: every list was offered before the flag.
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set while the list is archived: hidden from the campaign form and /subscribe, kept
    # with its members and history, and back again once unarchived.
    archived_at: Mapped[datetime | None] = mapped_column(default=None)

    memberships: Mapped[list[Membership]] = relationship(back_populates="mailing_list")


class Segment(Base):
    """A named, reusable segment: ``{field: [values]}``, see ``newsletter.audience.segments``."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ListImport(Base):
    """One list file imported into a list: who, when, which file (name and SHA-256), what it did.

    The file itself is not kept; its report's counts are.
    """

    __tablename__ = "list_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[str] = mapped_column(String(320), default="")  # an editor's address, or a command
    file_name: Mapped[str] = mapped_column(String(300), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    # rows, added, updated, unchanged, suppressed, duplicates, removed, rejected
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PendingUpload(Base):
    """A list file uploaded in the browser, kept between its dry run and its confirmation.

    Kept in the database, not on one web process's disk, so that the confirmation may reach
    another process; deleted when the import is committed, and once ``expires_at`` passes.
    """

    __tablename__ = "pending_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # random, in the confirm form
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    # The import asked for: {"slug", "name", "sync"}, and the dry run's fingerprint.
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Subscriber(Base):
    """One person, unique by normalised address (lower-cased, domain in punycode)."""

    __tablename__ = "subscribers"
    # Never reuse an erased person's id: links in mail already sent name it (SQLite would
    # otherwise hand the highest id out again after a delete).
    __table_args__ = (
        # Finding a person by any part of ``search`` (LIKE '%…%'): a trigram index on
        # PostgreSQL (pg_trgm), where 1,000,000 people would otherwise be scanned for each
        # search. SQLite gets none: a LIKE with a leading % cannot use a B-tree, and an
        # index would be one more copy of the text an erasure has to wipe.
        Index(
            "ix_subscribers_search",
            "search",
            postgresql_using="gin",
            postgresql_ops={"search": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    municipality: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(100), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # active | unsubscribed (from everything) | bounced
    status: Mapped[str] = mapped_column(String(20), default="active")
    bounce_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The address, name, municipality and institution folded (``search_text``), searched by
    # the editors' "find a person". Filled on every ORM write (``_fill_search`` below); the
    # importer, which writes in bulk, fills it itself.
    search: Mapped[str] = mapped_column(Text, default="")

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )


def fold(value: str) -> str:
    """``value`` as searched: case-folded, without diacritics ("Šiaulių" → "siauliu").

    NFKD splits each Lithuanian letter (ą č ę ė į š ų ū ž) into its base letter and a
    combining mark, which is dropped.
    """
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def search_text(email: str, name: str, municipality: str, institution: str) -> str:
    """The ``search`` column of a subscriber: its fields folded, one per line.

    A line break never matches a query (queries are one line), so no match spans two fields.
    """
    return "\n".join(fold(v or "") for v in (email, name, municipality, institution))


class AttributeText(FunctionElement[str]):
    """One of ``Subscriber.attributes`` as text, its key written into the SQL.

    ``Subscriber.attributes[key].as_string()`` sends the key as a bound parameter, which
    SQLite cannot match with an index; this renders ``(attributes ->> 'county')`` on
    PostgreSQL and ``json_extract(attributes, '$.county')`` on SQLite, the expressions of
    the segment indexes below. Build it with ``attribute_text``.
    """

    type = String()
    inherit_cache = True
    name = "attribute_text"


ATTRIBUTE_KEY = re.compile(r"[a-z_]+")


def attribute_text(key: str, attributes: Any = None) -> AttributeText:
    """``attributes[key]`` as text (``Subscriber.attributes`` unless another column is given)."""
    if not ATTRIBUTE_KEY.fullmatch(key):
        raise ValueError(f"not an attribute key: {key!r}")
    column = Subscriber.attributes if attributes is None else attributes
    return AttributeText(column, literal_column(f"'{key}'"))


@compiles(AttributeText, "postgresql")
def _attribute_text_postgresql(element: AttributeText, compiler: Any, **kw: Any) -> str:
    column, key = element.clauses
    return f"({compiler.process(column, **kw)} ->> {compiler.process(key, **kw)})"


@compiles(AttributeText)
def _attribute_text_sqlite(element: AttributeText, compiler: Any, **kw: Any) -> str:
    column, key = element.clauses
    return f"json_extract({compiler.process(column, **kw)}, '$.{key.name.strip(chr(39))}')"


#: The values a segment matches on, each indexed with ``status`` first: the builder offers
#: the values active people hold (one index probe per value, ``segments.offered_values``)
#: and the live count finds who matches without reading every person's attributes.
SEGMENT_INDEXES = {
    "municipality": Subscriber.__table__.c.municipality,
    "role": Subscriber.__table__.c.role,
    **{
        key: attribute_text(key, Subscriber.__table__.c.attributes)
        for key in ("county", "institution", "department", "language")
    },
}
for _field, _expression in SEGMENT_INDEXES.items():
    Index(f"ix_subscribers_segment_{_field}", Subscriber.__table__.c.status, _expression)


@event.listens_for(Subscriber, "before_insert")
@event.listens_for(Subscriber, "before_update")
def _fill_search(_mapper: Any, _connection: Any, subscriber: Subscriber) -> None:
    """Keep ``Subscriber.search`` in step with the fields on every ORM insert and update."""
    institution = str((subscriber.attributes or {}).get("institution", ""))
    subscriber.search = search_text(
        subscriber.email, subscriber.name, subscriber.municipality, institution
    )


class Membership(Base):
    """A subscriber on a list; ``unsubscribed`` rows are kept so re-imports never re-add them."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("subscriber_id", "list_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    # active | unsubscribed | pending (double opt-in not yet confirmed)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="memberships")
    mailing_list: Mapped[MailingList] = relationship(back_populates="memberships")


class ConsentEvent(Base):
    """Append-only record of how consent was given or withdrawn."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"))
    # import | subscribe | confirm | unsubscribe | preferences | bounce | complaint | admin
    kind: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(300), default="")  # file name, form, command
    text_version: Mapped[str] = mapped_column(String(50), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Suppression(Base):
    """An address that must never be mailed or re-imported, kept as a keyed HMAC only."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hmac: Mapped[str] = mapped_column(String(64), unique=True)
    # unsubscribed | bounced | erased | complaint
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Campaign(Base):
    """One issue sent to a set of lists: the compiled issue is stored once, here."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_slug: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    compiled: Mapped[dict[str, Any]] = mapped_column(default=dict)  # html, text, preheader, ...
    # SHA-256 of the compiled subject, HTML and text: the same issue under another file name.
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    lists: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"slugs": [...], "where": {...}}
    # draft | scheduled | running | paused | cancelled | done
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    # Why the campaign stopped on its own (e.g. the mail server refused our login).
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    send_at: Mapped[datetime | None] = mapped_column(default=None)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # The process sending this campaign in-process (no Redis), and until when its lease
    # holds: see ``newsletter/dispatch/lease.py``. Empty when nobody holds it.
    lease_holder: Mapped[str] = mapped_column(String(200), default="")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    # The one-time token of the web confirmation page that started it: a second POST of
    # the same page finds this campaign instead of creating another.
    start_token: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    # Who created it (an editor's address, or ``cli:<operator>``): its author, who may not
    # approve it (``newsletter/dispatch/approval.py``).
    created_by: Mapped[str] = mapped_column(String(320), default="")


# The predicate of the partial index of queued rows; a query uses that index only when
# its WHERE holds this very text (a bound parameter does not count).
QUEUED_ONLY = text("state = 'queued'")


class OutboxRow(Base):
    """One recipient of one campaign, and its send log.

    State moves only along ``queued → sending (lease) → sent | failed | uncertain``;
    ``cancelled`` and ``suppressed`` end rows that were never sent. The full machine is
    drawn in ``newsletter/dispatch/outbox.py``.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("campaign_id", "email"),
        # Progress, reports and the end of a campaign count its rows by state.
        Index("ix_outbox_campaign_state", "campaign_id", "state"),
        # The reconciler walks the queued rows in id order: without this it would pass
        # over every row ever sent, on every tick. Partial, so it holds only the queued
        # rows and sending or recording a row adds nothing to it.
        Index("ix_outbox_queued", "id", sqlite_where=QUEUED_ONLY, postgresql_where=QUEUED_ONLY),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(20), default="queued")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    smtp_code: Mapped[int | None] = mapped_column(Integer, default=None)
    smtp_reply: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(200), default="")
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Earliest time of the next attempt after a temporary failure (backoff with jitter,
    # kept here because Celery ETA/countdown on Redis is redelivered in a loop).
    not_before: Mapped[datetime | None] = mapped_column(default=None)
    # When a task carrying this row was last handed to the broker; the reconciler
    # hands it again when this is older than a lease (the broker may have lost it).
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    # An earlier attempt ended without a known outcome (worker lost, or a timeout after
    # DATA): if this row is sent, the recipient may hold two copies.
    uncertain_before: Mapped[bool] = mapped_column(Boolean, default=False)
    # A bounce or complaint that came back by mail after the server accepted the message
    # (``newsletter bounces``): when, hard | soft | complaint, and the report's diagnostic.
    bounced_at: Mapped[datetime | None] = mapped_column(default=None)
    bounce_kind: Mapped[str] = mapped_column(String(20), default="")
    bounce_detail: Mapped[str] = mapped_column(Text, default="")


class BounceEvent(Base):
    """One bounce or complaint read from the bounce mailbox, against one outbox row.

    ``fingerprint`` (the report's identity and the row) is unique, so a report read twice
    counts once. Soft bounces are counted from here over a window. No address is kept.
    """

    __tablename__ = "bounce_events"
    __table_args__ = (Index("ix_bounce_events_subscriber_kind_at", "subscriber_id", "kind", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="CASCADE"), index=True
    )
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(20))  # hard | soft | complaint
    status: Mapped[str] = mapped_column(String(20), default="")  # RFC 3463, e.g. 5.1.1
    at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """An editor who may log in to the web app; the password is kept as an argon2 hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set while the account is disabled: no login, no session.
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class WebSession(Base):
    """A logged-in browser session; the cookie holds a token, this row only its SHA-256.

    Deleting the row ends the session everywhere, whoever holds a copy of the cookie.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class LoginAttempt(Base):
    """One failed or successful login, kept for a while to rate-limit guessing.

    Limits count per (address, client) and per client; ``device`` names the trusted
    device (an earlier successful login's cookie) the attempt came from, or is empty.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    device: Mapped[str] = mapped_column(String(32), default="")
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class IssueRevision(Base):
    """One saved version of an issue file, written by the editor pages (the file is the truth).

    ``author`` is the editor's address at the time, kept if the account goes; empty for a
    version found on disk (written outside the browser) when an editor saved over it.
    """

    __tablename__ = "issue_revisions"
    __table_args__ = (Index("ix_issue_revisions_slug_id", "slug", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(320), default="")
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)


class IssueDraft(Base):
    """An editor's unsaved text of an issue, autosaved from the editor page (not a revision).

    One per editor and issue; ``loaded`` is the sha256 of the file version the text was
    edited from, so restoring it and saving goes through the same concurrency guard.
    An explicit save removes it.
    """

    __tablename__ = "issue_drafts"
    __table_args__ = (UniqueConstraint("slug", "editor", name="uq_issue_drafts_slug_editor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200))
    editor: Mapped[str] = mapped_column(String(320))
    text: Mapped[str] = mapped_column(Text)
    loaded: Mapped[str] = mapped_column(String(64))
    saved_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UserRole(Base):
    """One role an editor holds: author, sender, list_keeper or admin (``users.ROLES``)."""

    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class CampaignApproval(Base):
    """One editor's approval of a campaign, bound to what they were shown.

    Valid only while the campaign's content, its lists and segment, and its recipient
    count are still the ones recorded here (``dispatch/approval.py``).
    """

    __tablename__ = "campaign_approvals"
    __table_args__ = (UniqueConstraint("campaign_id", "approver"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    approver: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    audience_hash: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[int] = mapped_column(Integer)


class AuditEntry(Base):
    """One entry of the append-only audit log; ``hash`` chains it to the entry before.

    ``seq`` counts entries from 1 without gaps (ids may skip on PostgreSQL when a
    transaction rolls back); the serialisation that is hashed is drawn in ``audit.py``.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(40), index=True)
    object: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class MediaImage(Base):
    """An image of the library, re-encoded on upload and kept here under its SHA-256.

    Kept in the database, not on one web process's disk, so every web process serves the
    same files and a database backup holds them. ``sha256`` is that of ``content``, the
    bytes served at ``/media/<sha256>.<ext>``; the original file name and the alt text
    are kept as typed (the pages escape them).
    """

    __tablename__ = "media_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    ext: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str] = mapped_column(String(50))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)  # bytes of ``content``
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(300), default="")
    alt: Mapped[str] = mapped_column(String(500), default="")
    uploaded_by: Mapped[str] = mapped_column(String(320), default="")
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


# Aggregate click counting (``newsletter/dispatch/clicks.py``): counts per link, never
# per person. The salted hash of a click's client lives a day in ``click_events`` and
# is then folded into the counts; the salt is in another table and replaced daily.


class CampaignLink(Base):
    """One counted link of a campaign's issue (``/c/<campaign>/<number>/<signature>``)."""

    __tablename__ = "campaign_links"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)  # the only place the redirect may lead
    text: Mapped[str] = mapped_column(String(500), default="")
    section: Mapped[str] = mapped_column(String(300), default="")
    sponsor: Mapped[str] = mapped_column(String(200), default="")
    # Folded in from click_events of past days; today's are counted from the events.
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    scanner_clicks: Mapped[int] = mapped_column(Integer, default=0)
    readers: Mapped[int] = mapped_column(Integer, default=0)


class CampaignReaders(Base):
    """The estimate of distinct readers of a campaign's links, summed over past days."""

    __tablename__ = "campaign_readers"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    readers: Mapped[int] = mapped_column(Integer, default=0)


class ClickEvent(Base):
    """One request of a counted link; insert-only, so concurrent clicks are all counted.

    ``visitor`` is a hash of the client's address and user agent under the day's salt:
    it tells one client's clicks apart within the day and nothing once the salt is gone.
    """

    __tablename__ = "click_events"
    __table_args__ = (Index("ix_click_events_campaign_at", "campaign_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    visitor: Mapped[str] = mapped_column(String(32))
    head: Mapped[bool] = mapped_column(Boolean, default=False)  # a HEAD request: a scanner


class ClickSalt(Base):
    """The day's random salt of the visitor hash; deleted when the next day's is made."""

    __tablename__ = "click_salts"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    salt: Mapped[str] = mapped_column(String(64))
