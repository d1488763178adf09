"""Small helpers that put subscribers and lists into a real database for a test."""

from __future__ import annotations

from pathlib import Path
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


def snapshot(url: str, *, with_log: bool = False) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, for comparing a database before and after.

    ``list_imports`` is a log of every committed import, one that changed nothing too;
    it is left out unless ``with_log``.
    """
    from sqlalchemy import select

    from newsletter import db
    from newsletter.models import Base

    with db.engine_for(url).connect() as connection:
        return {
            table.name: sorted(
                (tuple(str(value) for value in row) for row in connection.execute(select(table))),
            )
            for table in Base.metadata.sorted_tables
            if with_log or table.name != "list_imports"
        }


def write_csv(
    path: Path, rows: int, *, start: int = 0, domain: str = "savivaldybe.example"
) -> Path:
    """Write a generated list file of ``rows`` people and return its path."""
    lines = ["email,name,municipality,role"]
    lines += [
        f"asmuo{n}@{domain},Asmuo Nr. {n},Savivaldybė {n % 60},meras"
        for n in range(start, start + rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sqlite_bytes(url: str) -> bytes:
    """Every byte of a SQLite database's files (main, WAL, shared memory), lower-cased.

    What an erasure must leave without the person's data in plain text: free pages and
    the WAL included (call ``forget_deleted_bytes`` first, as erasing does).
    """
    from sqlalchemy.engine import make_url

    database = Path(make_url(url).database or "")
    files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    return b"".join(p.read_bytes() for p in files).lower()
