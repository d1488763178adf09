"""Autosaved drafts: an editor's unsaved text of an issue, kept in the database.

A draft is not a save: the issue file is untouched and no revision is recorded. There is
one per editor and issue, replaced by each autosave; an explicit save removes it. The
edit page offers to restore a draft whose text differs from the file's, so a closed tab,
a crash or a lost connection loses at most the last few seconds of typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from newsletter import db
from newsletter.models import IssueDraft, utcnow


@dataclass(frozen=True)
class Draft:
    """An autosaved text, the sha256 of the file version it was edited from, and when."""

    text: str
    loaded: str
    saved_at: datetime


def keep(url: str, slug: str, editor: str, text: str, loaded: str) -> None:
    """Store ``text`` as the editor's draft of ``slug``, replacing the previous one."""
    with db.transaction(url) as session:
        row = session.scalar(
            select(IssueDraft).where(IssueDraft.slug == slug, IssueDraft.editor == editor)
        )
        if row is None:
            session.add(IssueDraft(slug=slug, editor=editor, text=text, loaded=loaded))
            return
        row.text, row.loaded, row.saved_at = text, loaded, utcnow()


def find(url: str, slug: str, editor: str) -> Draft | None:
    """The editor's draft of ``slug``, or None."""
    with db.transaction(url) as session:
        row = session.scalar(
            select(IssueDraft).where(IssueDraft.slug == slug, IssueDraft.editor == editor)
        )
        return None if row is None else Draft(row.text, row.loaded, row.saved_at)


def discard(url: str, slug: str, editor: str) -> None:
    """Remove the editor's draft of ``slug`` (after a save, or when they turn it down)."""
    with db.transaction(url) as session:
        session.execute(
            delete(IssueDraft).where(IssueDraft.slug == slug, IssueDraft.editor == editor)
        )
