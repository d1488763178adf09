"""The accessibility statement, which the EU Web Accessibility Directive asks public bodies to publish.

Its text is Markdown: the file ``NEWSLETTER_ACCESSIBILITY_FILE`` names (the same for
both languages), or the built-in Lithuanian and English texts in ``content/``. It is
rendered and cleaned like an issue's body, and linked from every page's footer.
"""

from __future__ import annotations

import logging
from pathlib import Path

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.compose import markdown
from newsletter.settings import Settings
from newsletter.web import i18n
from newsletter.web.templating import page

log = logging.getLogger(__name__)

CONTENT_DIR = Path(__file__).parent / "content"
PATH = "/accessibility"


def statement_text(settings: Settings, lang: str) -> str:
    """The statement's Markdown: the configured file, else the built-in text in ``lang``."""
    configured = settings.accessibility_file
    if str(configured) not in ("", "."):
        try:
            return configured.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.warning(
                "NEWSLETTER_ACCESSIBILITY_FILE %s: %s; the built-in text is shown", configured, exc
            )
    return (CONTENT_DIR / f"accessibility.{lang}.md").read_text(encoding="utf-8")


async def accessibility(request: Request) -> Response:
    """The statement page."""
    settings: Settings = request.app.state.settings
    lang = i18n.choose_language(request)
    text = statement_text(settings, lang).replace("{organisation}", settings.organisation)
    body = Markup(markdown.to_html(text, settings.base_url))  # cleaned by nh3
    return page(request, "public/accessibility.html", {"body": body})


routes = [Route(PATH, accessibility, methods=["GET"])]
