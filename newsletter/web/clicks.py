"""Counted links: the public redirect ``/c/…``, and the editors' click reports.

The redirect answers every link that is unknown, tampered with or of another campaign
with the same 404 page; a good one with a 302 to the URL recorded for that link, and
nothing else (the request carries no URL). Counting itself is
``newsletter.dispatch.clicks``; the chart on the dashboard is an SVG drawn here on the
server, with a table beside it that says the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter.dispatch import clicks
from newsletter.errors import NotFoundError
from newsletter.settings import Settings
from newsletter.web.auth import client_ip, editor_only
from newsletter.web.templating import page

NO_STORE = {"cache-control": "no-store"}
# The bar chart: one bar per link, its label above it.
CHART_WIDTH = 400  # user units; shown at most this many CSS pixels wide
BAR_HEIGHT = 18
ROW_HEIGHT = 44
LABEL_CHARACTERS = 48


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def counter_of(request: Request) -> clicks.ClickCounter:
    """The process's click counter, made on first use."""
    state = request.app.state
    counter = getattr(state, "click_counter", None)
    if counter is None:
        counter = state.click_counter = clicks.ClickCounter(settings_of(request))
    return counter


async def follow(request: Request) -> Response:
    """Count the click and go to the link's recorded URL; the one 404 for anything else."""
    params = request.path_params
    target = await run_in_threadpool(
        counter_of(request).follow,
        params["campaign_id"],
        params["number"],
        params["signature"],
        client_ip(request),
        request.headers.get("user-agent", ""),
        request.method == "HEAD",
    )
    if target is None:
        raise HTTPException(status_code=404)
    return RedirectResponse(target, status_code=302, headers=NO_STORE)


# Reports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar of the chart, in SVG user units."""

    label: str
    value: int
    y: int
    width: int


def chart_bars(report: clicks.CampaignClicks) -> list[Bar]:
    """The bars of the campaign's chart: reader clicks per link, scaled to the widest."""
    top = max((link.clicks for link in report.links), default=0) or 1
    bars = []
    for index, link in enumerate(report.links):
        label = f"{link.number}. {link.text or link.url}"
        if len(label) > LABEL_CHARACTERS:
            label = label[: LABEL_CHARACTERS - 1] + "…"
        width = round((CHART_WIDTH - 60) * link.clicks / top)
        bars.append(Bar(label, link.clicks, index * ROW_HEIGHT, width))
    return bars


def panel(settings: Settings, campaign_id: int) -> dict[str, object]:
    """What the dashboard shows of the campaign's clicks (nothing when it has no links)."""
    report = clicks.campaign_clicks(settings, campaign_id)
    return {
        "report": report,
        "bars": chart_bars(report),
        "chart": {"width": CHART_WIDTH, "height": ROW_HEIGHT * len(report.links) or ROW_HEIGHT},
        "bar_height": BAR_HEIGHT,
    }


def _csv_response(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', **NO_STORE},
    )


@editor_only
async def campaign_csv(request: Request) -> Response:
    """Download the campaign's clicks per link."""
    campaign_id = request.path_params["campaign_id"]
    try:
        report = await run_in_threadpool(clicks.campaign_clicks, settings_of(request), campaign_id)
    except NotFoundError:
        raise HTTPException(status_code=404) from None
    return _csv_response(clicks.campaign_csv(report), f"campaign-{campaign_id}-clicks.csv")


@editor_only
async def sponsors_page(request: Request) -> Response:
    """Per sponsor, its clicks in every issue that credited it."""
    report = await run_in_threadpool(clicks.sponsor_clicks, settings_of(request))
    counting = clicks.counting(settings_of(request))
    return page(request, "editor/sponsor_clicks.html", {"sponsors": report, "counting": counting})


@editor_only
async def sponsors_csv(request: Request) -> Response:
    """Download the per-sponsor report."""
    report = await run_in_threadpool(clicks.sponsor_clicks, settings_of(request))
    return _csv_response(clicks.sponsor_csv(report), "sponsor-clicks.csv")


routes = [
    Route("/c/{campaign_id:int}/{number:int}/{signature}", follow, methods=["GET", "HEAD"]),
    Route("/editor/campaigns/{campaign_id:int}/clicks.csv", campaign_csv, methods=["GET"]),
    Route("/editor/reports/sponsors", sponsors_page, methods=["GET"]),
    Route("/editor/reports/sponsors.csv", sponsors_csv, methods=["GET"]),
]
