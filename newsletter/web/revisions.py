"""Revisions of issue files: every save from the editor pages, kept in the database.

The file stays the source of truth; a revision is its history (who saved what, when) so
that two versions can be compared and an old one restored. A version written outside the
browser (an edit on disk, a ``git pull``) is recorded, without an author, when an editor
saves over it, so a restore can reach it too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from newsletter import db
from newsletter.models import IssueRevision
from newsletter.web.issue_files import digest


@dataclass(frozen=True)
class Revision:
    """One revision as the history page shows it."""

    id: int
    sha256: str
    author: str
    saved_at: datetime
    text: str


def record(url: str, slug: str, text: str, author: str, replaced: str | None = None) -> None:
    """Record a save of ``text`` by ``author``; first ``replaced`` (the text it overwrote)
    without an author, when that version is not the newest revision already."""
    with db.transaction(url) as session:
        newest = session.scalar(
            select(IssueRevision.sha256)
            .where(IssueRevision.slug == slug)
            .order_by(IssueRevision.id.desc())
            .limit(1)
        )
        if replaced is not None and newest != digest(replaced):
            session.add(IssueRevision(slug=slug, sha256=digest(replaced), text=replaced))
        session.add(IssueRevision(slug=slug, sha256=digest(text), text=text, author=author))


def history(url: str, slug: str) -> list[Revision]:
    """Every revision of ``slug``, newest first."""
    with db.transaction(url) as session:
        rows = session.scalars(
            select(IssueRevision)
            .where(IssueRevision.slug == slug)
            .order_by(IssueRevision.id.desc())
        )
        return [_revision(row) for row in rows]


def one(url: str, slug: str, revision_id: int) -> Revision | None:
    """The revision ``revision_id`` of ``slug``, or None (also for another issue's id)."""
    with db.transaction(url) as session:
        row = session.get(IssueRevision, revision_id)
        return _revision(row) if row is not None and row.slug == slug else None


def history_link(url: str, slug: str, sha256: str) -> str:
    """The history page showing what the newest revision with ``sha256`` changed; '' when
    no save in the browser had that text."""
    with db.transaction(url) as session:
        found = session.scalar(
            select(IssueRevision.id)
            .where(IssueRevision.slug == slug, IssueRevision.sha256 == sha256)
            .order_by(IssueRevision.id.desc())
            .limit(1)
        )
        if found is None:
            return ""
        before = session.scalar(
            select(IssueRevision.id)
            .where(IssueRevision.slug == slug, IssueRevision.id < found)
            .order_by(IssueRevision.id.desc())
            .limit(1)
        )
    return f"/editor/issues/{slug}/history?a={before or found}&b={found}"


def diff(old: str, new: str) -> list[tuple[str, str]]:
    """A unified diff as (kind, line) pairs; kind is ``add``, ``del``, ``hunk`` or ``same``.

    The lines are plain text: the page escapes them.
    """
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), "a", "b", lineterm="", n=3)
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    shown = []
    for line in lines:
        if line.startswith(("--- a", "+++ b")):
            continue
        shown.append((kinds.get(line[:1], "same"), line))
    return shown


def _revision(row: IssueRevision) -> Revision:
    return Revision(
        id=row.id, sha256=row.sha256, author=row.author, saved_at=row.saved_at, text=row.text
    )
