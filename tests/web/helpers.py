"""Small helpers of the web tests: database snapshots and stored campaigns."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from newsletter import db
from newsletter.compose.render import CompiledIssue
from newsletter.compose.slots import slot
from newsletter.models import Base, Campaign, utcnow


def snapshot(url: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, to compare a database before and after a request."""
    with db.engine_for(url).connect() as connection:
        return {
            table.name: sorted(
                tuple(str(v) for v in row) for row in connection.execute(select(table))
            )
            for table in Base.metadata.sorted_tables
            if table.name not in ("login_attempts",)
        }


def compiled_issue(
    subject: str = "Bibliotekos pažangai: naujienos", extra_html: str = ""
) -> CompiledIssue:
    """A compiled issue with every placeholder in it, as Compose stores it on a campaign."""
    html = (
        '<!doctype html><html lang="lt"><head><title>t</title></head><body>'
        f"<p>Sveiki, <span id='name'>{slot('name')}</span> ({slot('municipality')})</p>"
        f"<p id='email'>{slot('email')}</p>{extra_html}"
        f"<a id='unsubscribe' href='{slot('unsubscribe_url')}'>Atsisakyti</a>"
        f"<a id='preferences' href='{slot('preferences_url')}'>Nustatymai</a>"
        f"<a id='view' href='{slot('view_url')}'>Naršyklėje</a></body></html>"
    )
    text = f"Sveiki, {slot('name')}\nAtsisakyti: {slot('unsubscribe_url')}\n"
    return CompiledIssue(
        slug="2026-01-naujienos", subject=subject, preheader="", lang="lt", html=html, text=text
    )


def store_campaign(
    url: str,
    compiled: CompiledIssue,
    *,
    status: str = "done",
    started: datetime | None = None,
    is_test: bool = False,
) -> int:
    """Put a campaign row with the compiled issue into the database; return its id."""
    with db.transaction(url) as session:
        row = Campaign(
            issue_slug=compiled.slug,
            subject=compiled.subject,
            compiled=compiled.to_dict(),
            status=status,
            is_test=is_test,
            started_at=started if started is not None else utcnow() - timedelta(days=1),
        )
        session.add(row)
        session.flush()
        return row.id
