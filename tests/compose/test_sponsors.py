"""Sponsor credit blocks: the registry, the selection and what the email shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.compose.issue import compile_file
from newsletter.compose.sponsors import load_registry, parse_registry
from newsletter.errors import IssueError
from newsletter.settings import Settings
from tests.compose.conftest import ROOT, WriteIssue, parse

BASE = "https://naujienos.bibliotekos-pazangai.example"
SEED_TIERS = {
    "main": ["TEO LT, AB", "UAB „Tiketa“"],
    "campaign": [
        "pigu.lt",
        "„Swedbank“",
        "„Nordea“",
        "cv.lt",
        "„Omnitel“",
        "„Tyto Alba“",
        "„IMP Baltic“",
        "„Nextmedia LT“",
    ],
}

LOGO_REGISTRY = """\
tiers:
  - id: main
    size: large
    default: true
  - id: campaign
sponsors:
  - id: alfa
    name: Alfa
    tier: main
    url: https://alfa.example
    logo: static/sponsors/alfa.png
    logo_width: 600
    logo_height: 150
    alt: Alfa logotipas
  - id: beta
    name: Beta
    tier: main
    url: https://beta.example
  - id: gama
    name: Gama
    tier: campaign
    url: https://gama.example
    logo: https://cdn.example/gama.png
    logo_width: 80
    logo_height: 80
  - id: delta
    name: Delta
    tier: campaign
    url: https://delta.example
"""


def credits(html: str) -> list[tuple[str, str, str]]:
    """(link, logo alt or link text, 'logo'|'text') of every sponsor cell, in order."""
    root = parse(html)
    found = []
    for cell in root.find_class("nl-sponsor"):
        anchor = next(cell.iter("a"))
        image = next(anchor.iter("img"), None)
        if image is not None:
            found.append((anchor.get("href"), image.get("alt"), "logo"))
        else:
            found.append((anchor.get("href"), anchor.text_content().strip(), "text"))
    return found


def test_registry_holds_the_seed_tiers(settings: Settings) -> None:
    registry = load_registry(settings.sponsors_file)
    assert [tier.id for tier in registry.tiers] == ["main", "campaign", "information", "public"]
    for tier, names in SEED_TIERS.items():
        assert [s.name for s in registry.sponsors if s.tier == tier] == names
    assert len([s for s in registry.sponsors if s.tier == "public"]) == 10
    assert registry.default_selection() == ("main",)
    assert all(s.url.startswith("https://") for s in registry.sponsors)


def test_every_selected_sponsor_appears_with_a_link_in_registry_order(
    settings: Settings, write_issue: WriteIssue
) -> None:
    front = "---\nsubject: Dėkojame rėmėjams ir partneriams\nsponsors: [main, campaign]\n---\n"
    compiled = compile_file(write_issue(front=front), settings)
    registry = load_registry(settings.sponsors_file)
    expected = [
        (s.url, s.name, "text") for s in registry.sponsors if s.tier in ("main", "campaign")
    ]
    assert credits(compiled.html) == expected
    root = parse(compiled.html)
    assert "Dėkojame rėmėjams ir partneriams" in root.text_content()
    assert all(f"- {s.name} <{s.url}>" in compiled.text for s in registry.sponsors[:10])


def test_default_credits_only_the_main_sponsors(
    settings: Settings, write_issue: WriteIssue
) -> None:
    compiled = compile_file(write_issue(), settings)
    assert [name for _url, name, _kind in credits(compiled.html)] == SEED_TIERS["main"]


def test_a_single_sponsor_id_and_no_credit_block(
    settings: Settings, write_issue: WriteIssue
) -> None:
    front = "---\nsubject: Konkurso laimėtojai paskelbti\nsponsors: [swedbank]\n---\n"
    compiled = compile_file(write_issue(front=front), settings)
    assert credits(compiled.html) == [("https://www.swedbank.lt", "„Swedbank“", "text")]
    front = "---\nsubject: Konkurso laimėtojai paskelbti\nsponsors: []\n---\n"
    compiled = compile_file(write_issue(front=front), settings)
    assert credits(compiled.html) == []
    assert "Dėkojame rėmėjams" not in compiled.html


def test_logos_have_alt_text_links_and_larger_main_size(
    settings: Settings, write_issue: WriteIssue, tmp_path: Path
) -> None:
    registry = tmp_path / "sponsors.yaml"
    registry.write_text(LOGO_REGISTRY, encoding="utf-8")
    settings = settings.replace(sponsors_file=registry)
    front = "---\nsubject: Dėkojame rėmėjams ir partneriams\nsponsors: all\n---\n"
    compiled = compile_file(write_issue(front=front), settings)
    assert credits(compiled.html) == [
        ("https://alfa.example", "Alfa logotipas", "logo"),
        ("https://beta.example", "Beta", "text"),
        ("https://gama.example", "Gama", "logo"),  # alt defaults to the name
        ("https://delta.example", "Delta", "text"),
    ]
    images = {img.get("alt"): img for img in parse(compiled.html).iter("img")}
    assert images["Alfa logotipas"].get("src") == f"{BASE}/static/sponsors/alfa.png"
    assert images["Gama"].get("src") == "https://cdn.example/gama.png"
    assert int(images["Alfa logotipas"].get("width")) > int(images["Gama"].get("width"))
    # Their own shape, scaled down into the cell but never enlarged.
    size = {alt: (int(img.get("width")), int(img.get("height"))) for alt, img in images.items()}
    assert size["Alfa logotipas"] == (200, 50)
    assert size["Gama"] == (60, 60)
    assert "height:auto" in images["Gama"].get("style").replace(" ", "")


def test_grid_is_four_per_row_on_desktop_and_two_on_phones(settings: Settings) -> None:
    compiled = compile_file(ROOT / "issues" / "2026-12-remejai-ir-partneriai.md", settings)
    root = parse(compiled.html)
    # Each row of the campaign tier: two groups (50% each, stacking on phones), each
    # holding two columns that stay side by side.
    rows = [
        section
        for section in root.find_class("mj-column-per-50")
        if len(section.find_class("nl-sponsor")) == 2
    ]
    assert rows, "sponsor cells come in groups of two"
    styles = " ".join(style.text or "" for style in root.iter("style")).replace(" ", "")
    assert ".mj-column-per-50{width:50%!important" in styles
    assert "@mediaonlyscreenand(min-width:480px)" in styles


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tiers: [{id: main}]\nsponsors: [{id: a, name: A, tier: nope, url: https://a.lt}]\n",
         "sponsors.yaml:2: sponsor 'a' has unknown tier 'nope'"),
        ("tiers: [{id: main}]\nsponsors:\n  - {id: a, name: A, tier: main}\n",
         "sponsors.yaml:3: sponsor 'a' needs a 'url'"),
        ("tiers: [{id: main}]\nsponsors:\n  - {id: a, name: A, tier: main, url: x, colour: red}\n",
         "sponsors.yaml:3: unknown sponsor key 'colour'"),
        ("tiers: [{id: main}, {id: main}]\n", "sponsors.yaml: id 'main' is used twice"),
        ("tiers: [\n", "sponsors.yaml:2: invalid YAML"),
        ("tiers: [{id: main}]\nsponsors:\n  - {id: a, name: 2026-02-30, tier: main}\n",
         "sponsors.yaml:3: invalid value: day is out of range for month"),
        ("tiers: [{id: main}]\nsponsors:\n  - {id: a, name: A, tier: main, url: https://a.lt, logo: a.png}\n",
         "sponsors.yaml:3: sponsor 'a' needs 'logo_width' and 'logo_height' with its logo"),
        ("tiers: [{id: main}]\nsponsors:\n  - {id: a, name: A, tier: main, url: https://a.lt, logo: a.png,"
         " logo_width: 0, logo_height: 20}\n",
         "sponsors.yaml:3: sponsor 'a' needs 'logo_width' and 'logo_height' with its logo"),
        ("tiers: [{id: main}]\nsponsors:\n  - {id: a, name: A, tier: main, url: https://a.lt, logo_width: 9}\n",
         "sponsors.yaml:3: sponsor 'a' has a logo size but no 'logo'"),
    ],
)  # fmt: skip
def test_registry_mistakes_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(IssueError) as caught:
        parse_registry(text.encode(), "sponsors.yaml")
    assert str(caught.value).startswith(message)
