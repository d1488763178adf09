"""The web app: editors' preview and campaign dashboard, and the public subscriber pages.

Starlette with server-rendered Jinja2 pages. ``create_app(settings)`` builds it; the
``newsletter web`` command serves it with uvicorn. May import dispatch, compose,
audience, delivery and the root modules; never the command line.
"""

from newsletter.web.app import create_app

__all__ = ["create_app"]
