"""A campaign records the sha256 of the issue text it sent; its dashboard links to it."""

from __future__ import annotations

from starlette.testclient import TestClient

from newsletter.compose.issue import compile_file
from newsletter.settings import Settings
from newsletter.web import issue_files
from tests.web.helpers import store_campaign
from tests.web.issues import SLUG, issue_text, write_issue


def test_the_dashboard_links_to_the_revision_that_was_sent(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    path = write_issue(web_settings.issues_dir)
    sent = issue_text(paragraph="Išsiųsta versija.")
    fields = {"csrf_token": logged_in, "loaded": issue_files.digest(issue_text()), "text": sent}
    assert client.post(f"/editor/issues/{SLUG}/edit", data=fields).status_code == 303
    compiled = compile_file(path, web_settings)
    assert compiled.source_sha256 == issue_files.digest(sent)
    assert compiled.to_dict()["source_sha256"] == issue_files.digest(sent)
    campaign_id = store_campaign(web_settings.database, compiled)
    later = issue_text(paragraph="Vėliau pakeista.")
    fields = {"csrf_token": logged_in, "loaded": issue_files.digest(sent), "text": later}
    client.post(f"/editor/issues/{SLUG}/edit", data=fields)

    dashboard = client.get(f"/editor/campaigns/{campaign_id}").text
    assert issue_files.digest(sent)[:12] in dashboard
    link = dashboard.split('id="revision"')[1].split('href="')[1].split('"')[0]
    history = client.get(link.replace("&amp;", "&")).text
    assert "+Išsiųsta versija." in history and "-Bibliotekose vyko mokymai." in history

    # A version never saved in the browser is named, without a link.
    path.write_text(issue_text(paragraph="Tik diske."), encoding="utf-8")
    campaign_id = store_campaign(web_settings.database, compile_file(path, web_settings))
    dashboard = client.get(f"/editor/campaigns/{campaign_id}").text
    assert issue_files.digest(issue_text(paragraph="Tik diske."))[:12] in dashboard
    assert "istorijoje jos nėra" in dashboard
