"""The sponsor block as Chromium lays it out, at a desktop width and at a phone's.

Lines of a name are counted as the height of its text block over its line height; a grid
is even when every cell of a row has the left edge and width of the cell in the same
place in the first row. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from newsletter.compose.issue import compile_file
from newsletter.settings import Settings
from tests.compose.conftest import ROOT, WriteIssue
from tests.web.browser import browser  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
WIDTHS = (1024, 375)
LONG = "Lietuvos Respublikos švietimo, mokslo ir sporto ministerijos"
LOGO = "data:image/svg+xml," + quote(
    '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="100">'
    '<rect width="300" height="100" fill="#0b6158"/></svg>'
)
REGISTRY = f"""\
tiers:
  - id: main
    size: large
  - id: campaign
  - id: public
sponsors:
  - {{id: m1, name: "{LONG}", tier: main, url: "https://m1.example"}}
  - {{id: m2, name: Alfa, tier: main, url: "https://m2.example", logo: "{LOGO}", logo_width: 300, logo_height: 100}}
  - {{id: m3, name: Beta, tier: main, url: "https://m3.example"}}
  - {{id: c1, name: Gama, tier: campaign, url: "https://c1.example"}}
  - {{id: c2, name: Delta, tier: campaign, url: "https://c2.example", logo: "{LOGO}", logo_width: 300, logo_height: 100}}
  - {{id: c3, name: "Epsilonas ir partneriai", tier: campaign, url: "https://c3.example"}}
  - {{id: c4, name: Zeta, tier: campaign, url: "https://c4.example"}}
  - {{id: c5, name: Eta, tier: campaign, url: "https://c5.example"}}
  - {{id: p1, name: "{LONG}", tier: public, url: "https://p1.example"}}
  - {{id: p2, name: "Lietuvos Respublikos kultūros ministerija ir jos padaliniai", tier: public, url: "https://p2.example"}}
  - {{id: p3, name: Kauno technologijos universitetas, tier: public, url: "https://p3.example"}}
"""

# Each tier's cells: left edge, width, top, bottom, and the lines of a text link's name.
MEASURE = """() => {
  const tiers = {};
  for (const cell of document.querySelectorAll(".nl-sponsor")) {
    const row = cell.closest(".nl-sponsor-row");
    const tier = [...row.classList].find(name => name.startsWith("nl-tier-"));
    const box = cell.getBoundingClientRect();
    const link = cell.querySelector("a");
    const image = cell.querySelector("img");
    const text = image ? null : link.parentElement;
    const lines = text ? text.offsetHeight / parseFloat(getComputedStyle(text).lineHeight) : 0;
    const shape = image ? {
      width: image.getAttribute("width"), height: image.getAttribute("height"),
      shown: image.getBoundingClientRect().width / image.getBoundingClientRect().height,
    } : null;
    (tiers[tier] = tiers[tier] || []).push({
      name: link.textContent.trim(), left: box.left, width: box.width, top: box.top,
      bottom: box.bottom, lines: Math.round(lines), image: shape,
    });
  }
  return tiers;
}"""


def visual_rows(cells: list[dict]) -> list[list[dict]]:
    """Cells grouped into the rows a reader sees: a cell joins the row its middle lies in."""
    rows: list[list[dict]] = []
    for cell in sorted(cells, key=lambda c: (c["top"], c["left"])):
        middle = (cell["top"] + cell["bottom"]) / 2
        if rows and rows[-1][0]["top"] <= middle <= rows[-1][0]["bottom"]:
            rows[-1].append(cell)
        else:
            rows.append([cell])
    return [sorted(row, key=lambda c: c["left"]) for row in rows]


def measure(browser, html: str, width: int, shot: str) -> dict[str, list[dict]]:  # noqa: F811
    """Lay ``html`` out at ``width`` px (no network) and measure the sponsor cells."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.route("**/*", lambda route: route.abort())  # the email's links go nowhere
        page.set_content(html, wait_until="load")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{shot}-{width}.png"), full_page=True)
        return page.evaluate(MEASURE)
    finally:
        page.close()


def assert_even_grid(tier: str, cells: list[dict]) -> None:
    """Every row's cells start where the first row's cells start, and are as wide."""
    rows = visual_rows(cells)
    first = rows[0]
    for row in rows[1:]:
        assert len(row) <= len(first), (tier, row)
        for cell, above in zip(row, first, strict=False):
            assert abs(cell["left"] - above["left"]) < 1, (tier, cell["name"], above["name"])
            assert abs(cell["width"] - above["width"]) < 1, (tier, cell["name"], above["name"])


@pytest.mark.parametrize("width", WIDTHS)
def test_long_names_take_two_lines_and_every_row_lines_up(
    browser,  # noqa: F811
    settings: Settings,
    write_issue: WriteIssue,
    tmp_path: Path,
    width: int,
) -> None:
    assert len(LONG) == 60
    registry = tmp_path / "sponsors.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    front = "---\nsubject: Dėkojame rėmėjams ir partneriams\nsponsors: all\n---\n"
    compiled = compile_file(write_issue(front=front), settings.replace(sponsors_file=registry))
    tiers = measure(browser, compiled.html, width, "sponsors-long-names")
    assert sorted(tiers) == ["nl-tier-campaign", "nl-tier-main", "nl-tier-public"]
    for tier, cells in tiers.items():
        assert_even_grid(tier, cells)
        for cell in cells:
            if width >= 600 and cell["image"] is None:
                assert 1 <= cell["lines"] <= 2, (tier, cell["name"], cell["lines"])
            if cell["image"] is not None:
                shape = cell["image"]
                assert abs(int(shape["width"]) / int(shape["height"]) - 3.0) < 0.05, shape
                assert abs(shape["shown"] - 3.0) < 0.05, (tier, shape)
    campaign = visual_rows(tiers["nl-tier-campaign"])
    assert [len(row) for row in campaign] == ([4, 1] if width >= 600 else [2, 2, 1])


@pytest.mark.parametrize("width", WIDTHS)
def test_the_december_issue_credits_everyone_in_even_rows(
    browser,  # noqa: F811
    settings: Settings,
    width: int,
) -> None:
    compiled = compile_file(ROOT / "issues" / "2026-12-remejai-ir-partneriai.md", settings)
    tiers = measure(browser, compiled.html, width, "sponsors-december")
    for tier, cells in tiers.items():
        assert_even_grid(tier, cells)
        if width >= 600:
            long_names = [c for c in cells if len(c["name"]) <= 60]
            assert all(c["lines"] <= 2 for c in long_names), [
                (c["name"], c["lines"]) for c in long_names
            ]
    public = visual_rows(tiers["nl-tier-public"])
    assert [len(row) for row in public] == ([2] * 5 if width >= 600 else [1] * 10)
