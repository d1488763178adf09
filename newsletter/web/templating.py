"""Server-rendered pages: the Jinja2 environment and the one helper every view renders with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from newsletter.dispatch.messages import recognise
from newsletter.web import i18n
from newsletter.web.csrf import csrf_token
from newsletter.web.permissions import allows

TEMPLATES_DIR = Path(__file__).parent / "templates"


def make_templates() -> Jinja2Templates:
    """Return the page templates, autoescaped, with undefined names as errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # standing.problem | recognised: a reason kept as English, as its message (to explain)
    env.filters["recognised"] = recognise
    return Jinja2Templates(env=env)


def page(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render the page template ``name`` in the request's language."""
    lang = i18n.choose_language(request)
    values: dict[str, Any] = {
        "lang": lang,
        "t": i18n.translator(lang),
        # explain(error or message): its text in the page's language (i18n.explain)
        "explain": lambda item: i18n.explain(item, lang),
        "csrf_token": lambda: csrf_token(request),
        "editor": request.scope.get("editor_email"),
        # can("send"): the editor's roles grant that permission (web/permissions.py)
        "can": lambda permission: allows(request.scope.get("editor_roles", ()), permission),
        "path": request.url.path,
    }
    values.update(context or {})
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(
        request, name, values, status_code=status_code, headers=headers
    )
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(
            i18n.COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="lax"
        )
    return response
