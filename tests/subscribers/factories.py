"""Small helpers that put subscribers and lists into a real database for a test."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from newsletter.models import MailingList, Membership, Subscriber


def add_list(session: Session, slug: str, name: str = "") -> MailingList:
    """Create a list and return it with its id."""
    mailing_list = MailingList(slug=slug, name=name or slug)
    session.add(mailing_list)
    session.flush()
    return mailing_list


def add_subscriber(
    session: Session,
    email: str,
    lists: dict[MailingList, str] | None = None,
    **fields: Any,
) -> Subscriber:
    """Create a subscriber with memberships ``{list: status}`` and return it with its id."""
    subscriber = Subscriber(email=email, **fields)
    session.add(subscriber)
    session.flush()
    for mailing_list, status in (lists or {}).items():
        session.add(Membership(subscriber_id=subscriber.id, list_id=mailing_list.id, status=status))
    session.flush()
    return subscriber
