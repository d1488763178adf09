"""Two-person approval: a campaign waits until enough people other than its author approve it.

With ``NEWSLETTER_APPROVALS`` at 1 or 2, a new campaign is ``awaiting`` (approval): it
holds the compiled issue but no outbox rows yet. An approval is bound to what the
approver was shown, its ``Basis``:

- the SHA-256 of the compiled issue (``overlap.fingerprint``), which must also be what
  the issue file compiles to now: editing the file or the sponsor registry changes it;
- the SHA-256 of the lists, the segment and the repeat choice;
- the number of recipients the campaign would have now.

An approval whose basis is no longer the campaign's is void, and says why. The approve
form carries the digest of the basis it showed: an approval posted after something
changed is refused (``StateError``), and so is one by the campaign's author
(``NotAllowedError``), whatever the form says. ``start`` (a sender's button) and
``release_due`` (the scheduler, at the campaign's time) check the approvals again and
only then hand the campaign on as ``scheduled`` for ``campaign.start_due`` to start. A
scheduled campaign whose time came without its approvals does not start; its status
reason says so, and it waits for a sender to start it once approved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from newsletter.compose.issue import compile_file
from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.dispatch import outbox, overlap
from newsletter.dispatch.messages import msg, recognise
from newsletter.errors import NewsletterError, NotAllowedError, NotFoundError, StateError
from newsletter.models import Campaign, CampaignApproval, utcnow
from newsletter.settings import Settings

AWAITING = "awaiting"
MISSED = "its time came without its approvals; a sender can start it once it is approved"


@dataclass(frozen=True)
class Basis:
    """What an approval is bound to; ``file_hash`` is '' when the file does not compile."""

    content_hash: str
    file_hash: str
    audience_hash: str
    recipients: int

    @property
    def digest(self) -> str:
        """One hash of the whole basis, carried by the approve form."""
        parts = f"{self.content_hash}\n{self.file_hash}\n{self.audience_hash}\n{self.recipients}"
        return hashlib.sha256(parts.encode()).hexdigest()


@dataclass(frozen=True)
class Approval:
    """One approval, and why it is void (empty when it holds)."""

    approver: str
    at: datetime
    void: tuple[str, ...]


@dataclass(frozen=True)
class Standing:
    """Where a campaign's approval stands now."""

    campaign_id: int
    status: str
    author: str
    needed: int
    basis: Basis
    approvals: tuple[Approval, ...]

    @property
    def problem(self) -> str:
        """Why nobody can approve the campaign as it is; '' when they can."""
        if self.basis.file_hash != self.basis.content_hash:
            return (
                "the issue file no longer compiles to this campaign's issue (it was edited, "
                "or its sponsors changed): refresh the campaign from the file"
            )
        return ""

    @property
    def valid(self) -> int:
        """Approvals that still hold."""
        return sum(1 for approval in self.approvals if not approval.void)

    @property
    def complete(self) -> bool:
        """Enough approvals hold, and the file is still the campaign's issue."""
        return not self.problem and self.valid >= self.needed


def audience_hash(lists: Mapping[str, Any]) -> str:
    """SHA-256 of a campaign's list slugs, segment and repeat choice."""
    definition = {
        "slugs": sorted(lists.get("slugs", [])),
        "where": dict(sorted(lists.get("where", {}).items())),
        "repeat": lists.get("repeat", overlap.REFUSE),
    }
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def file_hash(settings: Settings, slug: str) -> str:
    """The fingerprint of the issue ``slug`` as its file compiles now; '' when it does not."""
    try:
        return overlap.fingerprint(compile_file(settings.issues_dir / f"{slug}.md", settings))
    except (NewsletterError, OSError):
        return ""


def _basis(settings: Settings, row: Campaign, current_file: str) -> Basis:
    compiled = CompiledIssue.from_dict(row.compiled)
    lists = row.lists
    found = overlap.audience(settings, compiled, lists.get("slugs", []), lists.get("where", {}))
    recipients = found.new if lists.get("repeat") == overlap.ONLY_NEW else found.recipients
    return Basis(row.content_hash, current_file, audience_hash(lists), recipients)


def _void(approval: CampaignApproval, basis: Basis) -> tuple[str, ...]:
    reasons = []
    if approval.content_hash != basis.file_hash:
        reasons.append("the issue changed (its file was edited, or its sponsors changed)")
    if approval.audience_hash != basis.audience_hash:
        reasons.append("the lists or the segment changed")
    if approval.recipients != basis.recipients:
        reasons.append(
            f"the recipients changed: {approval.recipients} then, {basis.recipients} now"
        )
    return tuple(reasons)


def standing(settings: Settings, campaign_id: int, current_file: str | None = None) -> Standing:
    """The campaign's approvals and whether each still holds; ``current_file`` is its
    file's fingerprint if the caller compiled it already."""
    with transaction(settings.database) as session:
        row = _campaign(session, campaign_id)
        given = list(
            session.scalars(
                select(CampaignApproval)
                .where(CampaignApproval.campaign_id == campaign_id)
                .order_by(CampaignApproval.id)
            )
        )
        session.expunge_all()
    if current_file is None:
        current_file = file_hash(settings, row.issue_slug)
    basis = _basis(settings, row, current_file)
    approvals = tuple(
        Approval(a.approver, outbox.aware(a.at) or utcnow(), _void(a, basis)) for a in given
    )
    return Standing(campaign_id, row.status, row.created_by, settings.approvals, basis, approvals)


def _campaign(session: Session, campaign_id: int) -> Campaign:
    row = session.get(Campaign, campaign_id)
    if row is None:
        raise NotFoundError(msg("campaign.not_found", campaign_id=campaign_id))
    return row


def approve(
    settings: Settings, campaign_id: int, approver: str, shown: str, current_file: str | None = None
) -> Standing:
    """Record ``approver``'s approval of what they were shown (``shown``: the basis digest).

    NotAllowedError for the campaign's author; StateError when the campaign is not
    awaiting approval, cannot be approved as it is, or changed since it was shown.
    """
    now = standing(settings, campaign_id, current_file)
    if approver.strip().lower() == now.author.strip().lower():
        raise NotAllowedError(msg("approval.own"))
    if now.status != AWAITING:
        raise StateError(msg("approval.not_awaiting", campaign_id=campaign_id, status=now.status))
    if now.problem:
        raise StateError(recognise(now.problem))
    if shown != now.basis.digest:
        raise StateError(msg("approval.changed"))
    with transaction(settings.database) as session:
        session.execute(
            delete(CampaignApproval).where(
                CampaignApproval.campaign_id == campaign_id, CampaignApproval.approver == approver
            )
        )
        session.add(
            CampaignApproval(
                campaign_id=campaign_id,
                approver=approver,
                content_hash=now.basis.content_hash,
                audience_hash=now.basis.audience_hash,
                recipients=now.basis.recipients,
            )
        )
    return standing(settings, campaign_id, current_file)


def refresh(settings: Settings, campaign_id: int, compiled: CompiledIssue) -> None:
    """Replace an awaiting campaign's issue with ``compiled`` (the file as it is now).

    Approvals given before no longer match its content, so they are void.
    """
    with transaction(settings.database) as session:
        moved = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == AWAITING)
            .values(
                compiled=compiled.to_dict(),
                content_hash=overlap.fingerprint(compiled),
                subject=compiled.subject,
                status_reason="",
            )
        ).rowcount
        if not moved:
            _campaign(session, campaign_id)
            raise StateError(msg("approval.not_awaiting_refresh", campaign_id=campaign_id))


def start(settings: Settings, campaign_id: int, current_file: str | None = None) -> None:
    """Hand an approved campaign on to start now; StateError saying what is missing."""
    now = standing(settings, campaign_id, current_file)
    _refuse_unless_complete(now)
    with transaction(settings.database) as session:
        row = _campaign(session, campaign_id)
        send_at = outbox.aware(row.send_at)
        if send_at is not None and send_at > utcnow():
            raise StateError(msg("approval.scheduled"))
        _release(session, campaign_id, min(send_at or utcnow(), utcnow()))


def _refuse_unless_complete(now: Standing) -> None:
    if now.status != AWAITING:
        raise StateError(
            msg("approval.not_awaiting", campaign_id=now.campaign_id, status=now.status)
        )
    if now.problem:
        raise StateError(recognise(now.problem))
    if not now.complete:
        raise StateError(msg("approval.incomplete", valid=now.valid, needed=now.needed))


def _release(session: Session, campaign_id: int, send_at: datetime) -> None:
    """awaiting → scheduled at ``send_at`` (``campaign.start_due`` starts it when due)."""
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == AWAITING)
        .values(status="scheduled", send_at=send_at, status_reason="")
    )


def release_due(settings: Settings, now: datetime | None = None) -> list[int]:
    """At their time, hand on awaiting campaigns whose approvals hold; mark the others.

    A campaign marked missed is not looked at again: it waits for a sender.
    """
    now = now or utcnow()
    with transaction(settings.database) as session:
        due = list(
            session.scalars(
                select(Campaign.id).where(
                    Campaign.status == AWAITING,
                    Campaign.send_at <= now,
                    Campaign.status_reason == "",
                )
            )
        )
    released = []
    for campaign_id in due:
        complete = standing(settings, campaign_id).complete
        with transaction(settings.database) as session:
            if complete:
                _release(session, campaign_id, now)
                released.append(campaign_id)
            else:
                session.execute(
                    update(Campaign)
                    .where(Campaign.id == campaign_id, Campaign.status == AWAITING)
                    .values(status_reason=MISSED)
                )
    return released


def stored(settings: Settings, campaign_id: int) -> tuple[CompiledIssue, dict[str, Any]]:
    """The campaign's compiled issue and its lists definition."""
    with transaction(settings.database) as session:
        row = _campaign(session, campaign_id)
        return CompiledIssue.from_dict(row.compiled), dict(row.lists)


def last_sent(settings: Settings, campaign_id: int) -> tuple[int, str, str] | None:
    """The newest other campaign that went out (no test): its id, subject and plain text."""
    with transaction(settings.database) as session:
        row = session.execute(
            select(Campaign.id, Campaign.subject, Campaign.compiled)
            .where(
                Campaign.is_test.is_(False),
                Campaign.started_at.is_not(None),
                Campaign.id != campaign_id,
            )
            .order_by(Campaign.started_at.desc(), Campaign.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return row.id, row.subject, str(row.compiled.get("text", ""))
