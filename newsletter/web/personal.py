"""Placeholder values for showing an email in the browser: a subscriber's, or nobody's.

``CompiledIssue.personalise`` escapes whatever it is given, so these are raw strings.
"""

from __future__ import annotations

from newsletter.audience import tokens
from newsletter.models import Subscriber
from newsletter.settings import Settings

# Campaign number used in view links of previews, which belong to no campaign yet.
PREVIEW_CAMPAIGN = 0


def for_subscriber(
    settings: Settings, subscriber: Subscriber, campaign_id: int, list_id: int | None = None
) -> dict[str, str]:
    """The values a subscriber's own copy of campaign ``campaign_id`` carries."""
    token = tokens.make_token(settings.key(), subscriber.id, list_id)
    return {
        "name": subscriber.name,
        "municipality": subscriber.municipality,
        "email": subscriber.email,
        "unsubscribe_url": tokens.unsubscribe_url(settings, token),
        "preferences_url": tokens.preferences_url(settings, token),
        "view_url": tokens.view_url(settings, campaign_id, token),
    }


def neutral(settings: Settings) -> dict[str, str]:
    """Values for anyone without a valid token: nothing personal, links to the archive."""
    archive = f"{settings.base_url.rstrip('/')}/archive"
    return {
        "name": "",
        "municipality": "",
        "email": "",
        "unsubscribe_url": archive,
        "preferences_url": archive,
        "view_url": archive,
    }
