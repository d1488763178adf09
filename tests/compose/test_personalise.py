"""Render once, personalise many: placeholders survive the pipeline and are filled safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.compose.issue import compile_file
from newsletter.compose.render import PLACEHOLDERS, CompiledIssue, sample_values
from newsletter.compose.slots import FillPlan, end_if, if_set, slot
from newsletter.settings import Settings
from tests.compose.conftest import ROOT, WriteIssue, links, parse

BASE = "https://naujienos.bibliotekos-pazangai.example"
SAMPLE = ROOT / "issues" / "2026-12-remejai-ir-partneriai.md"


def recipient(**changes: str) -> dict[str, str]:
    values = {
        "name": "Ona Žemaitė",
        "municipality": "Kauno rajono savivaldybė",
        "email": "ona@example.lt",
        "unsubscribe_url": f"{BASE}/u/AbC_123-x",
        "preferences_url": f"{BASE}/p/AbC_123-x",
        "view_url": f"{BASE}/v/7/AbC_123-x",
    }
    return values | changes


def test_every_placeholder_survives_compile_and_is_filled(settings: Settings) -> None:
    compiled = compile_file(SAMPLE, settings)
    assert compiled.slot_names == set(PLACEHOLDERS)
    html, text = compiled.personalise(recipient())
    for document in (html, text):
        assert "NLPH_" not in document and "NLIF_" not in document and "NLFI_" not in document
    root = parse(html)
    found = links(root)
    assert found["Atsisakyti prenumeratos"] == f"{BASE}/u/AbC_123-x"
    assert found["Keisti nustatymus"] == f"{BASE}/p/AbC_123-x"
    assert found["Žiūrėti naršyklėje"] == f"{BASE}/v/7/AbC_123-x"
    assert "Gavėjas: Ona Žemaitė, Kauno rajono savivaldybė" in root.text_content()
    assert "ona@example.lt" in root.text_content()
    assert f"Atsisakyti prenumeratos: {BASE}/u/AbC_123-x" in text
    assert "Gavėjas: Ona Žemaitė, Kauno rajono savivaldybė" in text


def test_each_recipient_gets_their_own_values(settings: Settings) -> None:
    compiled = compile_file(SAMPLE, settings)
    first, _ = compiled.personalise(recipient(name="Jonas", unsubscribe_url=f"{BASE}/u/one"))
    second, _ = compiled.personalise(recipient(name="Petras", unsubscribe_url=f"{BASE}/u/two"))
    assert links(parse(first))["Atsisakyti prenumeratos"] == f"{BASE}/u/one"
    assert links(parse(second))["Atsisakyti prenumeratos"] == f"{BASE}/u/two"
    assert "Jonas" in first and "Jonas" not in second


def test_markup_in_a_name_is_escaped_in_html_and_literal_in_text(settings: Settings) -> None:
    compiled = compile_file(SAMPLE, settings)
    html, text = compiled.personalise(recipient(name="<b>Jonas & Co</b>"))
    assert "&lt;b&gt;Jonas &amp; Co&lt;/b&gt;" in html
    assert "<b>Jonas" not in html
    root = parse(html)
    assert not [b for b in root.iter("b") if "Jonas" in b.text_content()]
    assert "Gavėjas: <b>Jonas & Co</b>, Kauno rajono savivaldybė" in root.text_content()
    assert "Gavėjas: <b>Jonas & Co</b>, Kauno rajono savivaldybė" in text


def test_placeholders_inside_body_links_urls_and_text_survive_the_pipeline(
    settings: Settings, write_issue: WriteIssue
) -> None:
    # Markers written where each stage encodes: a Markdown link URL (markdown-it), a raw
    # href (premailer/lxml), link text and the plain-text part.
    body = (
        f"Sveiki, {slot('name')}!\n\n"
        f"[Nuostatos {slot('name')}](https://example.lt/p?kas={slot('name')}&sav={slot('municipality')})\n\n"
        f'<a href="{slot("preferences_url")}">Mano nuostatos</a>\n'
    )
    compiled = compile_file(write_issue(body), settings)
    # Before personalising, every marker is still there, byte for byte.
    assert f"?kas={slot('name')}&amp;sav={slot('municipality')}" in compiled.html
    assert f'href="{slot("preferences_url")}"' in compiled.html
    assert f"Nuostatos {slot('name')}" in compiled.html
    assert f"https://example.lt/p?kas={slot('name')}&sav={slot('municipality')}" in compiled.text
    values = recipient(name="Ona Žemaitė & Co", preferences_url=f"{BASE}/p/tok en/ž")
    html, text = compiled.personalise(values)
    found = links(parse(html))
    assert found["Nuostatos Ona Žemaitė & Co"] == (
        "https://example.lt/p?kas=Ona%20%C5%BDemait%C4%97%20%26%20Co"
        "&sav=Kauno%20rajono%20savivaldyb%C4%97"
    )
    assert found["Mano nuostatos"] == f"{BASE}/p/tok%20en/%C5%BE"
    assert "Sveiki, Ona Žemaitė & Co!" in parse(html).text_content()
    assert "Sveiki, Ona Žemaitė & Co!" in text
    assert "https://example.lt/p?kas=Ona%20%C5%BDemait%C4%97%20%26%20Co&sav=" in text


def test_a_url_value_that_could_run_code_is_dropped(settings: Settings) -> None:
    compiled = compile_file(SAMPLE, settings)
    html, _text = compiled.personalise(recipient(unsubscribe_url="javascript:alert(1)"))
    assert "javascript:" not in html
    assert links(parse(html))["Atsisakyti prenumeratos"] == ""


def test_missing_values_fill_with_nothing_and_hide_their_region(settings: Settings) -> None:
    compiled = compile_file(SAMPLE, settings)
    html, text = compiled.personalise({"email": "anonimas@example.lt"})
    assert "Gavėjas" not in html and "Gavėjas" not in text
    assert "anonimas@example.lt" in html
    html, text = compiled.personalise(recipient(municipality=""))
    assert "Gavėjas: Ona Žemaitė\n" in text
    assert "Gavėjas: Ona Žemaitė," not in parse(html).text_content()


def test_fill_plan_regions_and_contexts() -> None:
    document = (
        f'<p title="{slot("name")}">{if_set("name")}Hi {slot("name")}{end_if("name")}</p>'
        f'<a href="{slot("view_url")}">v</a><a href="https://x.lt/?n={slot("name")}">n</a>'
    )
    plan = FillPlan.for_html(document)
    assert plan.fill({"name": 'A "B"', "view_url": "https://v.lt/a b"}) == (
        '<p title="A &quot;B&quot;">Hi A &quot;B&quot;</p>'
        '<a href="https://v.lt/a%20b">v</a><a href="https://x.lt/?n=A%20%22B%22">n</a>'
    )
    assert plan.fill({}) == '<p title=""></p><a href="">v</a><a href="https://x.lt/?n=">n</a>'


def test_from_dict_refuses_incomplete_data() -> None:
    with pytest.raises(Exception, match="lacks the field 'html'"):
        CompiledIssue.from_dict({"slug": "a", "subject": "b", "text": "c"})


def test_personalise_output_is_stable_across_a_stored_copy(
    settings: Settings, tmp_path: Path
) -> None:
    compiled = compile_file(SAMPLE, settings)
    stored = CompiledIssue.from_dict(dict(compiled.to_dict()))
    assert stored.personalise(recipient()) == compiled.personalise(recipient())
    assert compiled.personalise(sample_values(BASE)) != compiled.personalise(recipient())


def test_an_unclosed_region_in_the_body_never_hides_the_rest_of_the_email(
    settings: Settings, write_issue: WriteIssue
) -> None:
    path = write_issue(f"{if_set('name')}Sveiki!\n\nNaujienos apie bibliotekas.\n")
    html, text = compile_file(path, settings).personalise(recipient(name=""))
    assert links(parse(html))["Atsisakyti prenumeratos"] == f"{BASE}/u/AbC_123-x"
    assert f"Atsisakyti prenumeratos: {BASE}/u/AbC_123-x" in text
    assert "Naujienos apie bibliotekas." in text
    assert "NLIF_" not in html and "NLIF_" not in text


def test_fill_plan_ignores_region_markers_without_their_partner() -> None:
    plan = FillPlan.for_text(f"a {if_set('name')}b {end_if('email')}c {slot('name')}")
    assert plan.fill({}) == "a b c "
    assert plan.fill({"name": "N"}) == "a b c N"
    nested = f"{if_set('name')}x{if_set('name')}y{end_if('name')}z{end_if('name')}!"
    assert FillPlan.for_text(nested).fill({}) == "!"
    assert FillPlan.for_text(nested).fill({"name": "N"}) == "xyz!"
