"""The archive as an RSS 2.0 feed: published issues, absolute links, nothing about anyone.

An item is what the archive page shows of an issue (subject, date, preheader, link to
its page under ``NEWSLETTER_BASE_URL``); no recipient, list or count is in it.
"""

from __future__ import annotations

from email.utils import format_datetime
from xml.sax.saxutils import escape

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter import db
from newsletter.dispatch.outbox import aware
from newsletter.models import Campaign
from newsletter.settings import Settings
from newsletter.web import i18n
from newsletter.web.public import is_public

ITEMS = 50
MEDIA_TYPE = "application/rss+xml; charset=utf-8"


def _items(settings: Settings) -> list[dict[str, str]]:
    """The newest published issues as feed items."""
    base = settings.base_url.rstrip("/")
    with db.transaction(settings.database) as session:
        rows = session.execute(
            select(Campaign.id, Campaign.subject, Campaign.started_at, Campaign.compiled)
            .where(is_public())
            .order_by(Campaign.started_at.desc(), Campaign.id.desc())
            .limit(ITEMS)
        ).all()
    return [
        {
            "title": row.subject,
            "link": f"{base}/archive/{row.id}",
            "description": str((row.compiled or {}).get("preheader", "")),
            "date": format_datetime(aware(row.started_at) or row.started_at),
        }
        for row in rows
    ]


def render_feed(settings: Settings, items: list[dict[str, str]], lang: str) -> str:
    """The RSS 2.0 document of ``items``."""
    base = settings.base_url.rstrip("/")
    entries = "".join(
        "<item>"
        f"<title>{escape(item['title'])}</title>"
        f"<link>{escape(item['link'])}</link>"
        f'<guid isPermaLink="true">{escape(item["link"])}</guid>'
        f"<pubDate>{item['date']}</pubDate>"
        f"<description>{escape(item['description'])}</description>"
        "</item>"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title>{escape(settings.organisation)}</title>"
        f"<link>{escape(base)}/archive</link>"
        f'<atom:link href="{escape(base)}/archive/feed.xml" rel="self" type="application/rss+xml"/>'
        f"<description>{escape(i18n.translate('archive.description', lang))}</description>"
        f"<language>{lang}</language>"
        f"{entries}</channel></rss>\n"
    )


async def feed(request: Request) -> Response:
    """``/archive/feed.xml``."""
    settings: Settings = request.app.state.settings
    items = await run_in_threadpool(_items, settings)
    lang = i18n.choose_language(request)
    return Response(render_feed(settings, items, lang), media_type=MEDIA_TYPE)


routes = [Route("/archive/feed.xml", feed, methods=["GET"])]
