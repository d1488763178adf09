"""The archive feed (parsed by feedparser), the archive pages' metadata, and the accessibility
statement linked from every public page's footer, in Lithuanian and English."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import feedparser
from lxml import html as lxml_html
from starlette.testclient import TestClient

from newsletter.audience import tokens
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.web.helpers import compiled_issue, store_campaign


def test_the_feed_lists_published_issues_with_absolute_links_and_nothing_personal(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    issue = replace(compiled_issue("Sausio numeris: naujienos"), preheader="Renginiai ir rėmėjai")
    published = store_campaign(web_settings.database, issue)
    store_campaign(web_settings.database, compiled_issue("Bandymas [TEST]"), is_test=True)
    store_campaign(web_settings.database, compiled_issue("Juodraštis niekam"), status="draft")
    answer = client.get("/archive/feed.xml")
    assert answer.headers["content-type"].startswith("application/rss+xml")
    feed = feedparser.parse(answer.text)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "rss20"
    assert feed.feed.link == f"{web_settings.base_url}/archive"
    [entry] = feed.entries
    assert entry.title == "Sausio numeris: naujienos"
    assert entry.link == f"{web_settings.base_url}/archive/{published}"
    assert entry.summary == "Renginiai ir rėmėjai"
    assert entry.published_parsed is not None
    assert "@" not in answer.text  # no address of anyone


def test_archive_pages_have_a_title_language_and_description(
    client: TestClient, web_settings: Settings
) -> None:
    issue = replace(
        compiled_issue("Vasario numeris: naujienos"), preheader="Kas naujo bibliotekose"
    )
    campaign_id = store_campaign(web_settings.database, issue)
    for path, description in (
        ("/archive", "Išsiųsti projekto „Bibliotekos pažangai“ naujienlaiškiai."),
        (f"/archive/{campaign_id}", "Kas naujo bibliotekose"),
    ):
        page = lxml_html.fromstring(client.get(path).text)
        assert page.get("lang") == "lt", path
        assert page.findtext(".//title"), path
        assert page.xpath("//meta[@name='description']/@content") == [description]
    archive = lxml_html.fromstring(client.get("/archive").text)
    assert archive.xpath("//link[@rel='alternate']/@href") == ["/archive/feed.xml"]


def test_every_public_page_links_the_accessibility_statement(
    client: TestClient, web_settings: Settings, people: dict[str, int]
) -> None:
    token = tokens.make_token(web_settings.key(), people["ona"], people["towns"])
    for path in ("/archive", "/subscribe", f"/u/{token}", f"/p/{token}", "/nera", "/editor/login"):
        for query, label in (
            ("?lang=lt", "Prieinamumo deklaracija"),
            ("?lang=en", "Accessibility statement"),
        ):
            page = lxml_html.fromstring(client.get(path + query).text)
            assert page.xpath("//footer//a/@href") == ["/accessibility"], path
            assert page.xpath("//footer//a")[0].text_content() == label, path + query
    lithuanian = lxml_html.fromstring(client.get("/accessibility?lang=lt").text)
    assert lithuanian.findtext(".//h1") == "Prieinamumo deklaracija"
    assert "Projektas „Bibliotekos pažangai“" in lithuanian.text_content()
    english = lxml_html.fromstring(client.get("/accessibility?lang=en").text)
    assert english.get("lang") == "en"
    assert english.findtext(".//h1") == "Accessibility statement"


def test_the_statement_text_comes_from_the_configured_file(
    web_settings: Settings, tmp_path: Path
) -> None:
    statement = tmp_path / "prieinamumas.md"
    statement.write_text(
        "# Mūsų prieinamumo deklaracija\n\nRašykite <script>x()</script>**info@lsa.example**.\n",
        encoding="utf-8",
    )
    app = create_app(web_settings.replace(accessibility_file=statement), watch=False)
    with TestClient(app) as client:
        page = client.get("/accessibility")
    assert "<h1>Mūsų prieinamumo deklaracija</h1>" in page.text
    assert "<strong>info@lsa.example</strong>" in page.text
    assert "<script>" not in page.text
