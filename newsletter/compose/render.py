"""Compile an issue once into inlined HTML and plain text; personalise per recipient (no I/O).

The pipeline, run once per issue by ``compile_issue``::

    Markdown ─markdown-it─▶ HTML fragment ─nh3─▶ clean fragment (absolute URLs)
        ─Jinja2 templates─▶ MJML ─mjml-python─▶ HTML ─premailer─▶ inlined HTML
    clean fragment ─plaintext─▶ text ─Jinja2 text template─▶ plain-text part

Per-recipient values are placeholder markers (``newsletter.compose.slots``) that pass every
stage untouched; ``CompiledIssue.personalise`` fills them without re-running anything
above. Template sources, the sponsor selection and the settings' values come in as plain
values: reading files is ``newsletter.compose.issue``'s job.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jinja2
from markupsafe import Markup
from mjml import mjml2html

from newsletter.compose import markdown, plaintext
from newsletter.compose.slots import FillPlan, end_if, if_set, slot
from newsletter.compose.sponsors import SponsorGroup
from newsletter.compose.strings import format_date, strings_for
from newsletter.errors import IssueError

PLACEHOLDERS: tuple[str, ...] = (
    "name",
    "municipality",
    "email",
    "unsubscribe_url",
    "preferences_url",
    "view_url",
)
LAYOUT = "layout.mjml.j2"
TEXT_LAYOUT = "text.txt.j2"
DOCTYPE = "<!doctype html>"


@dataclass(frozen=True)
class CompiledIssue:
    """An issue rendered once: final HTML and text with placeholder markers still in them."""

    slug: str
    subject: str
    preheader: str
    lang: str
    html: str  # final inlined HTML with placeholders still in it
    text: str  # plain-text part with placeholders still in it
    date: str = ""  # ISO date from the front matter, '' when none
    source_sha256: str = ""  # of the issue file's text it was compiled from ('' when unknown)
    _html_plan: FillPlan = field(init=False, repr=False, compare=False)
    _text_plan: FillPlan = field(init=False, repr=False, compare=False)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "slug",
        "subject",
        "preheader",
        "lang",
        "html",
        "text",
        "date",
        "source_sha256",
    )

    def __post_init__(self) -> None:
        # Split once here so that personalise is a join of precomputed segments.
        object.__setattr__(self, "_html_plan", FillPlan.for_html(self.html))
        object.__setattr__(self, "_text_plan", FillPlan.for_text(self.text))

    def personalise(self, values: Mapping[str, str]) -> tuple[str, str]:
        """Return (html, text) with every placeholder filled.

        Values are raw (unescaped) strings, escaped here for their context (HTML text,
        attribute, URL); the text part gets them as they are. Missing keys fill with ''.
        """
        return self._html_plan.fill(values), self._text_plan.fill(values)

    def personalise_parts(
        self, values: Mapping[str, str]
    ) -> tuple[list[tuple[bool, str]], list[tuple[bool, str]]]:
        """``personalise`` as ``(is_literal, text)`` pieces (see ``FillPlan.fill_parts``)."""
        return self._html_plan.fill_parts(values), self._text_plan.fill_parts(values)

    @property
    def slot_names(self) -> frozenset[str]:
        """Names of every placeholder the HTML or text uses."""
        return self._html_plan.names | self._text_plan.names

    def to_dict(self) -> dict[str, str]:
        """Return the issue as JSON-safe strings (kept on the campaign row)."""
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> CompiledIssue:
        """Rebuild an issue stored by ``to_dict``; IssueError when a field is missing."""
        missing = [name for name in ("slug", "subject", "html", "text") if name not in data]
        if missing:
            raise IssueError(f"stored issue lacks the field {missing[0]!r}")
        return cls(
            **{name: str(data.get(name, "")) for name in cls.FIELDS if name != "lang"},
            lang=str(data.get("lang") or "lt"),
        )


@dataclass(frozen=True)
class TemplateSet:
    """The sources of one template set, by file name (e.g. ``layout.mjml.j2``)."""

    name: str
    sources: tuple[tuple[str, str], ...]
    folder: str = ""  # where the sources were read from, for error messages


@dataclass(frozen=True)
class Branding:
    """The values from settings that every email shows."""

    organisation: str
    postal_address: str
    base_url: str


@dataclass(frozen=True)
class IssueDocument:
    """An issue as read from its file: front-matter values and the Markdown body."""

    slug: str
    subject: str
    body: str
    preheader: str = ""
    lang: str = "lt"
    date: dt.date | None = None
    sponsors: tuple[SponsorGroup, ...] = ()
    source_sha256: str = ""  # of the file's text, carried to the compiled issue


def sample_values(base_url: str, lang: str = "lt") -> dict[str, str]:
    """Values of a made-up recipient (rendered files, previews); addresses on ``.example``.

    The links go to pages that accept no such token, except the view link: the archive.
    """
    base = base_url.rstrip("/")
    person = ("Jonas Jonaitis", "Vilniaus miesto savivaldybė", "jonas.jonaitis@savivaldybe.example")
    if lang != "lt":
        person = ("Jane Doe", "Vilnius City Municipality", "jane.doe@municipality.example")
    return {
        "name": person[0],
        "municipality": person[1],
        "email": person[2],
        "unsubscribe_url": f"{base}/u/pavyzdys",
        "preferences_url": f"{base}/p/pavyzdys",
        "view_url": f"{base}/archive",
    }


# Compiling -----------------------------------------------------------------------------


def compile_issue(
    document: IssueDocument, templates: TemplateSet, branding: Branding
) -> CompiledIssue:
    """Run the whole pipeline once and return the issue ready to personalise."""
    fragment = markdown.to_html(document.body, branding.base_url)
    context = _context(document, branding, fragment)
    environment = environment_for(templates)
    mjml = _render(environment, LAYOUT, context, templates)
    text = _render(environment, TEXT_LAYOUT, context, templates)
    html = with_main_landmark(inline_css(mjml_to_html(mjml, templates.folder or templates.name)))
    return CompiledIssue(
        slug=document.slug,
        subject=document.subject,
        preheader=document.preheader,
        lang=document.lang,
        html=html,
        text=_tidy_text(text),
        date=document.date.isoformat() if document.date else "",
        source_sha256=document.source_sha256,
    )


def _context(document: IssueDocument, branding: Branding, fragment: str) -> dict[str, Any]:
    """The values every template sees."""
    base_url = branding.base_url.rstrip("/")
    return {
        "issue": {
            "slug": document.slug,
            "subject": document.subject,
            "preheader": document.preheader,
            "lang": document.lang,
            "date": format_date(document.date, document.lang),
        },
        "content": Markup(fragment),  # already cleaned by nh3
        "content_text": markdown.to_text(fragment),
        "sponsor_groups": document.sponsors,
        "organisation": branding.organisation,
        "postal_address": branding.postal_address,
        "base_url": base_url,
        "t": strings_for(document.lang),
        "ph": {name: Markup(slot(name)) for name in PLACEHOLDERS},
        "if_set": lambda name: Markup(if_set(name)),
        "end_if": lambda name: Markup(end_if(name)),
    }


@functools.lru_cache(maxsize=16)
def environment_for(templates: TemplateSet) -> jinja2.Environment:
    """The Jinja2 environment of a template set, built once per distinct set of sources."""
    environment = jinja2.Environment(
        loader=jinja2.DictLoader(dict(templates.sources)),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("mjml.j2", "html.j2"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["absolute"] = _absolute_filter
    # For the text template: running text wrapped at 72 columns, underlined headings.
    environment.filters["wrap"] = plaintext.wrap_filter
    environment.filters["heading"] = plaintext.heading_filter
    return environment


@jinja2.pass_context
def _absolute_filter(context: jinja2.runtime.Context, url: str) -> str:
    """Jinja filter: ``url`` made absolute against the context's ``base_url``."""
    return markdown.absolute_url(context["base_url"], url)


def _render(
    environment: jinja2.Environment, name: str, context: dict[str, Any], templates: TemplateSet
) -> str:
    """Render one template, turning template mistakes into IssueError naming the file."""
    folder = templates.folder or templates.name
    try:
        return environment.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise IssueError(f"template {exc.name} is missing", path=folder) from None
    except jinja2.TemplateSyntaxError as exc:
        raise IssueError(
            f"template syntax: {exc.message}", path=f"{folder}/{exc.name}", line=exc.lineno
        ) from None
    except jinja2.UndefinedError as exc:
        raise IssueError(f"template {name}: {exc.message}", path=folder) from None


def mjml_to_html(mjml: str, folder: str = "") -> str:
    """Convert MJML to HTML; ``fonts={}`` so no Google Fonts ``<link>`` is emitted."""
    try:
        return mjml2html(mjml, disable_comments=True, fonts={})
    except ValueError as exc:  # mjml-python's only error for MJML it cannot parse
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IssueError(f"the templates produce invalid MJML: {message}", path=folder) from exc


# cssutils logs every property it does not know (mso-*, -webkit-*) as an error. premailer
# adds the handler it is given to cssutils' logger on every call, so it must be one
# object, or the handler list grows by one per compile.
_CSS_LOG_HANDLER = logging.NullHandler()


# A <style> that holds only @media rules has nothing to inline; premailer would parse and
# re-serialise it with cssutils, 60% of its time on the sample issues (cProfile).
_MEDIA_ONLY_STYLE = re.compile(r"<style([^>]*)>(?=\s*(?:/\*(?:(?!\*/).)*\*/\s*)*@media)", re.DOTALL)


def inline_css(html: str) -> str:
    """Inline the CSS of ``<style>`` blocks; keep ``@media`` rules; never use the network.

    Style blocks of only ``@media`` rules are marked ``data-premailer="ignore"`` and kept
    as written. ``allow_network=False`` makes premailer ignore ``<link rel=stylesheet>`` instead of
    fetching it; ``strip_important=False`` keeps the ``!important`` that MJML's responsive
    rules and the dark-mode rules need to beat inline styles. URLs are already absolute
    (``markdown.sanitise`` and the templates' ``absolute`` filter), because
    premailer's own rewriting would prefix the base URL to a URL placeholder.
    """
    from premailer import Premailer  # 110 ms to import; workers that only personalise skip it

    inliner = Premailer(
        _MEDIA_ONLY_STYLE.sub(r'<style\1 data-premailer="ignore">', html),
        base_url=None,
        allow_network=False,
        allow_loading_external_files=False,
        strip_important=False,
        keep_style_tags=False,
        # MJML already wrote width/height attributes for Outlook; premailer would replace
        # an image's width="110" with the "100%" of its CSS, stretching it in Outlook.
        disable_basic_attributes=["width", "height"],
        disable_validation=True,
        cssutils_logging_handler=_CSS_LOG_HANDLER,
        cssutils_logging_level=logging.CRITICAL,
    )
    result = inliner.transform()
    if not result.lstrip().lower().startswith("<!doctype"):
        result = f"{DOCTYPE}\n{result}"
    return result


# RFC 3676 4.3: "-- " (with the space) alone on a line opens the signature; mail clients
# grey it out or leave it out of replies. Every other line loses its trailing spaces.
SIGNATURE_SEPARATOR = "-- "


_BODY = re.compile(r"(<body\b[^>]*>)(.*)(</body>)", re.DOTALL | re.IGNORECASE)
MAIN_OPEN = '<div role="main">'


def with_main_landmark(html: str) -> str:
    """Wrap everything in the body in a ``main`` landmark.

    Opened on its own (a desktop mail client, the view-in-browser page) the email is a
    document, and a document's content belongs in a landmark (axe: landmark-one-main,
    region). A ``div`` with the role, not ``<main>``, because mail clients keep the
    element they know; MJML's ``role="article"`` wrapper stays inside it.
    """
    if MAIN_OPEN in html:
        return html
    return _BODY.sub(lambda m: f"{m.group(1)}{MAIN_OPEN}{m.group(2)}</div>{m.group(3)}", html, 1)


def _tidy_text(text: str) -> str:
    """Trim trailing spaces (the signature separator keeps its one) and runs of blank lines."""
    lines = [line if line == SIGNATURE_SEPARATOR else line.rstrip() for line in text.splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy).strip() + "\n"
