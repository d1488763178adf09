"""Sending an issue again: who already has it, and one campaign created at a time.

An issue is known by its slug or by its compiled content (``fingerprint``: the same
issue under another file name). Another non-test campaign of the issue *reached* a
person when its row for them is::

    sent, uncertain, sending          whatever the campaign's status (cancelled included)
    queued                            while the campaign is scheduled, running or paused
    failed, suppressed, cancelled     never: those people count as new

``campaign.create`` refuses a campaign when ``audience`` counts anyone of it whom others
of the issue reached (``REFUSE``), leaves those people out as it materialises the rows
(``ONLY_NEW``), or sends to them anyway (``AGAIN``). Two creators must not both pass the
check: the final check and the insert of the new campaign run under ``lock_creation``,
one creator at a time across processes and machines. A campaign of the issue in
``draft`` (being materialised), or scheduled and about to start, has not yet said whom
it reaches, so no other campaign of the issue is created meanwhile
(``refuse_while_busy``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Select, Subquery, and_, func, literal, or_, select, text
from sqlalchemy.orm import Session, aliased

from newsletter.audience.subscribers import Where, eligible_recipients, resolve_lists
from newsletter.db import transaction
from newsletter.dispatch import outbox
from newsletter.errors import AlreadySentError, StateError
from newsletter.models import Campaign, OutboxRow, utcnow
from newsletter.settings import Settings

if TYPE_CHECKING:
    from newsletter.compose.render import CompiledIssue

# What a new campaign does about people whom another campaign of the issue reached:
REFUSE = "refuse"  # refuse the campaign (AlreadySentError), naming the other one
ONLY_NEW = "only-new"  # leave them out
AGAIN = "again"  # send it to them again
REPEAT_CHOICES = (REFUSE, ONLY_NEW, AGAIN)
REACHED = (outbox.SENT, outbox.UNCERTAIN, outbox.SENDING)
# Campaign statuses whose queued rows will still go out (``campaign.ACTIVE``); paused
# counts, since it can be resumed.
IN_PROGRESS = ("scheduled", "running", "paused")
# A scheduled campaign this close to its time (or past it) may be adding newcomers right
# now. The margin covers the scheduler's tick and the clocks of different machines.
STARTING_SOON = timedelta(seconds=60)
# The PostgreSQL advisory lock held while a campaign is checked and inserted; the only
# other advisory lock of the application is the audit log's (``audit.APPEND_LOCK``).
CREATE_LOCK = 0x6E6C6372


@dataclass(frozen=True)
class Earlier:
    """Another campaign of the same issue, and how many of the audience it reached."""

    campaign_id: int
    status: str
    people: int


@dataclass(frozen=True)
class Audience:
    """Whom a campaign to these lists would reach, and whom others of the issue reached.

    ``earlier`` holds the other campaigns that reached anyone of the audience, most first;
    ``newest_id`` is the highest campaign id there was when it was counted.
    """

    recipients: int
    already: int
    earlier: tuple[Earlier, ...]
    newest_id: int

    @property
    def new(self) -> int:
        """Recipients whom no other campaign of the issue reached."""
        return self.recipients - self.already


def fingerprint(compiled: CompiledIssue) -> str:
    """SHA-256 of the compiled subject, HTML and text: one issue, whatever its file is called."""
    digest = hashlib.sha256()
    for part in (compiled.subject, compiled.html, compiled.text):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


def of_issue(slug: str, content_hash: str) -> ColumnElement[bool]:
    """The non-test campaigns of the issue with this slug or this compiled content.

    An empty hash (a campaign stored without one) matches by slug only.
    """
    same = Campaign.issue_slug == slug
    if content_hash:
        same = or_(same, Campaign.content_hash == content_hash)
    return and_(Campaign.is_test.is_(False), same)


def _reached(row: type[OutboxRow]) -> ColumnElement[bool]:
    """``row`` (an outbox alias joined to its campaign) reached or will reach its person."""
    return or_(
        row.state.in_(REACHED), and_(row.state == outbox.QUEUED, Campaign.status.in_(IN_PROGRESS))
    )


def reached_rows(campaign_ids: Sequence[int], email: ColumnElement[str]) -> Select[tuple[int]]:
    """Rows of these campaigns that reached ``email`` (a column of the enclosing query).

    Looked up by (campaign, email), the outbox's unique index: one probe per person.
    """
    earlier = aliased(OutboxRow)
    return (
        select(literal(1))
        .select_from(earlier)
        .join(Campaign, Campaign.id == earlier.campaign_id)
        .where(earlier.campaign_id.in_(list(campaign_ids)), earlier.email == email)
        .where(_reached(earlier))
    )


def audience(
    settings: Settings, compiled: CompiledIssue, slugs: Sequence[str], where: Where
) -> Audience:
    """Count whom a campaign of ``compiled`` to these lists would reach, and who has it already."""
    with transaction(settings.database) as session:
        list_ids = [found.id for found in resolve_lists(session, slugs)]
        newest = session.scalar(select(func.max(Campaign.id))) or 0
        others = session.execute(
            select(Campaign.id, Campaign.status)
            .where(of_issue(compiled.slug, fingerprint(compiled)), Campaign.id <= newest)
            .order_by(Campaign.id)
        ).all()
        eligible = eligible_recipients(list_ids, where).subquery()
        if not others:
            recipients = session.scalar(select(func.count()).select_from(eligible)) or 0
            return Audience(recipients, 0, (), newest)
        ids = [other_id for other_id, _ in others]
        # One pass over the audience counts both: each pass reads every recipient, and at
        # 1,000,000 that is what the check costs.
        reached = _reached_emails(ids).subquery()
        recipients, already = session.execute(
            select(func.count(), func.count(reached.c.email)).select_from(
                eligible.outerjoin(reached, reached.c.email == eligible.c.email)
            )
        ).one()
        if len(ids) == 1 or not already:  # the counts per campaign are known
            per_campaign = {ids[0]: already} if already else {}
        else:
            per_campaign = _reached_per_campaign(session, ids, eligible)
    earlier = sorted(
        (
            Earlier(other_id, status, per_campaign[other_id])
            for other_id, status in others
            if per_campaign.get(other_id)
        ),
        key=lambda found: (-found.people, found.campaign_id),
    )
    return Audience(recipients, already, tuple(earlier), newest)


def _reached_by(campaign_ids: Sequence[int]) -> Select[tuple[int, str]]:
    """(campaign, address) of every row of these campaigns that reached its person."""
    earlier = aliased(OutboxRow)
    return (
        select(earlier.campaign_id, earlier.email)
        .join(Campaign, Campaign.id == earlier.campaign_id)
        .where(earlier.campaign_id.in_(list(campaign_ids)))
        .where(_reached(earlier))
    )


def _reached_emails(campaign_ids: Sequence[int]) -> Select[tuple[str]]:
    """The addresses these campaigns reached, each once."""
    rows = _reached_by(campaign_ids).subquery()
    return select(rows.c.email).distinct()


def _reached_per_campaign(
    session: Session, campaign_ids: Sequence[int], eligible: Subquery
) -> dict[int, int]:
    """How many of the ``eligible`` people each of these campaigns reached.

    A join, not ``email IN (…)``: PostgreSQL planned the IN as an index probe per person,
    1.9 times as slow as the overall count at 200,000 people; the join takes 0.8 times.
    """
    rows = _reached_by(campaign_ids).subquery()
    counted = (
        select(rows.c.campaign_id, func.count())
        .select_from(eligible.join(rows, rows.c.email == eligible.c.email))
        .group_by(rows.c.campaign_id)
    )
    return {campaign_id: people for campaign_id, people in session.execute(counted).all()}


def describe(found: Audience) -> str:
    """``campaign 12 (done) already covers 14 of these 15 recipients with this issue``."""
    named = [f"{other.campaign_id} ({other.status})" for other in found.earlier[:3]]
    more = len(found.earlier) - len(named)
    if more:
        named.append(f"{more} more")
    if len(named) == 1:
        who = f"campaign {named[0]} already covers"
    else:
        who = f"campaigns {', '.join(named[:-1])} and {named[-1]} already cover"
    return f"{who} {found.already} of these {found.recipients} recipients with this issue"


def refuse_if_reached(found: Audience) -> None:
    """AlreadySentError, naming the campaigns and the command's choices, when any was reached."""
    if found.already:
        raise AlreadySentError(
            f"{describe(found)}; nothing was sent (--only-new sends it to the other "
            f"{found.new}, --again to all {found.recipients})"
        )


# One creator at a time ------------------------------------------------------------------


def lock_creation(session: Session) -> None:
    """Make this transaction the only one checking and inserting a campaign now.

    Must be the transaction's first statement. PostgreSQL: an advisory lock, released at
    commit, that only other creators wait for. SQLite: ``BEGIN IMMEDIATE`` takes the
    write lock before the first read (pysqlite would begin only at the first write, after
    the check); the transaction is a few short statements, and busy_timeout makes other
    writers wait for it instead of failing.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CREATE_LOCK)))
    else:
        session.execute(text("BEGIN IMMEDIATE"))


def refuse_while_busy(session: Session, slug: str, content_hash: str) -> None:
    """StateError when another campaign of the issue is being prepared or about to start.

    Whom that campaign reaches is not known until it is running, so no count against it
    would be right.
    """
    busy = session.execute(
        select(Campaign.id, Campaign.status, Campaign.send_at)
        .where(
            of_issue(slug, content_hash),
            or_(
                Campaign.status == "draft",
                and_(Campaign.status == "scheduled", Campaign.send_at <= utcnow() + STARTING_SOON),
            ),
        )
        .order_by(Campaign.id)
        .limit(1)
    ).first()
    if busy is None:
        return
    other, status, send_at = busy
    if status == "draft":
        raise StateError(
            f"campaign {other} of this issue is being prepared right now; nothing was sent; "
            f"try again once it has started (newsletter campaign status {other}), or cancel "
            f"it if it was interrupted (newsletter campaign cancel {other})"
        )
    when = outbox.aware(send_at) or utcnow()
    late = " (is `newsletter scheduler` running?)" if when < utcnow() else ""
    raise StateError(
        f"campaign {other} of this issue is to start at {when.astimezone():%Y-%m-%d %H:%M}{late} "
        "and may be adding recipients then; nothing was sent; try again once it is running"
    )


def created_since(session: Session, slug: str, content_hash: str, newest: int) -> bool:
    """True when a campaign of the issue was created after campaign id ``newest``."""
    found = session.scalar(
        select(Campaign.id).where(of_issue(slug, content_hash), Campaign.id > newest).limit(1)
    )
    return found is not None


def to_skip(session: Session, campaign_id: int, repeat: str) -> list[int] | None:
    """The other campaigns of this one's issue whose people it leaves out ([] for ``AGAIN``).

    None while one of them is a draft: whom that one reaches is not known yet.
    """
    if repeat == AGAIN:
        return []
    slug, content_hash = session.execute(
        select(Campaign.issue_slug, Campaign.content_hash).where(Campaign.id == campaign_id)
    ).one()
    rows = session.execute(
        select(Campaign.id, Campaign.status).where(
            of_issue(slug, content_hash), Campaign.id != campaign_id
        )
    ).all()
    if any(status == "draft" for _, status in rows):
        return None
    return [other for other, _ in rows]


def started_by(session: Session, start_token: str) -> int | None:
    """The campaign that this start token (of a web confirmation page) created, if any."""
    return session.scalar(select(Campaign.id).where(Campaign.start_token == start_token))
