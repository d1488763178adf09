"""Editor pages over HTTP: the issues list, the preview's data, frame and event stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lxml import html as lxml_html
from starlette.testclient import TestClient

from newsletter.settings import Settings
from newsletter.web import create_app
from newsletter.web.preview import PreviewHub
from tests.web.issues import SLUG, issue_text, write_issue


@pytest.fixture
def issue(web_settings: Settings) -> Path:
    return write_issue(web_settings.issues_dir)


def test_issues_list_shows_subject_date_and_lint_status(
    client: TestClient, logged_in: str, web_settings: Settings, issue: Path
) -> None:
    write_issue(web_settings.issues_dir, "---\nsubject: [\n---\nx\n", slug="2026-03-sugadintas")
    write_issue(
        web_settings.issues_dir,
        issue_text(paragraph="[spauskite čia](http://example.org/)"),
        slug="2026-01-pastabos",
    )
    page = lxml_html.fromstring(client.get("/editor/").text)
    rows = [
        [cell.text_content().strip() for cell in row.xpath("td")]
        for row in page.xpath("//tbody/tr")
    ]
    assert [row[2] for row in rows] == [
        "2026-03-sugadintas.md",
        "2026-02-naujienos.md",
        "2026-01-pastabos.md",
    ]
    assert rows[0][3] == "klaida"
    assert rows[1][:2] == ["2026-02-01", "Bibliotekos pažangai – vasario naujienos"]
    assert rows[1][3] == "tvarkinga"
    assert rows[2][3].endswith("pastabų")


def test_render_data_has_text_source_findings_and_size(
    client: TestClient, logged_in: str, issue: Path
) -> None:
    data = client.get(f"/editor/issues/{SLUG}/render").json()
    assert data["error"] == ""
    assert data["has_render"] is True
    assert "Sveiki, Jonas Jonaitis!" in data["text"]
    assert data["source"].lower().startswith("<!doctype html>")
    assert data["size_bytes"] == len(data["source"].encode())
    assert data["size_limit"] == 102 * 1024
    assert data["findings"] == []


def test_lint_findings_come_with_their_lines(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    write_issue(web_settings.issues_dir, issue_text(paragraph="![](https://example.org/a.png)"))
    findings = client.get(f"/editor/issues/{SLUG}/render").json()["findings"]
    assert {k: findings[0][k] for k in ("severity", "line")} == {"severity": "error", "line": 10}
    assert "alt" in findings[0]["message"]


def test_a_compile_error_keeps_the_last_good_render(
    client: TestClient, logged_in: str, web_settings: Settings, issue: Path
) -> None:
    first = client.get(f"/editor/issues/{SLUG}/render").json()
    issue.write_text("---\nsubject: Tema\nunknown_key: 1\n---\nTekstas\n", encoding="utf-8")
    broken = client.get(f"/editor/issues/{SLUG}/render").json()
    assert broken["error"].startswith(f"{issue}:3: unknown front-matter key 'unknown_key'")
    assert broken["version"] > first["version"]
    assert broken["render_version"] == first["render_version"]
    assert broken["text"] == first["text"]
    frame = client.get(f"/editor/issues/{SLUG}/frame")
    assert "Bibliotekose vyko mokymai." in frame.text


def test_frame_is_served_under_a_csp_without_scripts(
    client: TestClient, logged_in: str, issue: Path
) -> None:
    frame = client.get(f"/editor/issues/{SLUG}/frame")
    policy = frame.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert "sandbox" in policy and "allow-scripts" not in policy
    assert '<base target="_blank">' in frame.text
    page = client.get(f"/editor/issues/{SLUG}")
    iframe = lxml_html.fromstring(page.text).get_element_by_id("frame")
    assert "allow-scripts" not in iframe.get("sandbox")
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_preview_as_a_subscriber_fills_their_values(
    client: TestClient, logged_in: str, issue: Path, people: dict[str, int]
) -> None:
    data = client.get(f"/editor/issues/{SLUG}/render?as={people['rasa']}").json()
    assert "Sveiki, Rasa Rasaitė!" in data["text"]
    unknown = client.get(f"/editor/issues/{SLUG}/render?as=999999").json()
    assert "Sveiki, Jonas Jonaitis!" in unknown["text"]


@pytest.mark.parametrize("slug", ["nera", "..%2F..%2Fetc%2Fpasswd", ".hidden", "a b"])
def test_unknown_or_unsafe_issue_names_are_404(
    client: TestClient, logged_in: str, issue: Path, slug: str
) -> None:
    assert client.get(f"/editor/issues/{slug}").status_code == 404
    assert client.get(f"/editor/issues/{slug}/render").status_code == 404


def test_links_out_of_the_issues_folder_are_neither_listed_nor_compiled(
    client: TestClient,
    logged_in: str,
    web_settings: Settings,
    issue: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outside = tmp_path / "kitur.md"
    outside.write_text(issue_text(paragraph="SLAPTAS-TEKSTAS"), encoding="utf-8")
    link = web_settings.issues_dir / "2026-04-isorinis.md"
    link.symlink_to(outside)
    (web_settings.issues_dir / "2026-03-nuoroda.md").symlink_to(issue)  # stays inside
    listing = client.get("/editor/")
    assert "2026-03-nuoroda.md" in listing.text and "2026-04-isorinis" not in listing.text
    assert f"not listed: {link}: is a link that leads outside" in caplog.text
    for page in ("", "/render", "/frame"):
        answer = client.get(f"/editor/issues/2026-04-isorinis{page}")
        assert answer.status_code == 404 and "SLAPTAS" not in answer.text, page
    form = {"address": "redaktore@bibliotekos-pazangai.example", "csrf_token": logged_in}
    assert client.post("/editor/issues/2026-04-isorinis/test", data=form).status_code == 404
    assert "SLAPTAS" not in client.get("/editor/issues/2026-03-nuoroda/render").text


def test_event_stream_sends_the_current_version_first(
    web_settings: Settings, client: TestClient, logged_in: str, issue: Path
) -> None:
    with client.stream("GET", f"/editor/issues/{SLUG}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data:"):
                break
        client.app.state.hub.close()  # ends the stream as a shutdown does
    assert lines[-2:] == ["event: render", 'data: {"version": 1, "error": false}']


def test_hub_notifies_listeners_of_a_changed_issue(web_settings: Settings, issue: Path) -> None:
    asyncio.run(_notify_listeners(web_settings, issue))


async def _notify_listeners(web_settings: Settings, issue: Path) -> None:
    hub = PreviewHub(web_settings, watch=False)
    first = (await hub.state(SLUG)).version
    queue = hub.listen(SLUG)
    await hub.notify_changed()
    assert queue.empty()  # nothing changed on disk
    issue.write_text(issue_text(heading="Kita antraštė"), encoding="utf-8")
    await hub.notify_changed()
    changed = queue.get_nowait()
    assert changed is not None
    assert changed.version == first + 1
    assert "Kita antraštė" in changed.compiled.text
    hub.close()
    assert queue.get_nowait() is None


def test_app_without_watching_still_shows_fresh_files(
    web_settings: Settings, issue: Path, editor: str
) -> None:
    from tests.web.conftest import log_in

    app = create_app(web_settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as plain:
        log_in(plain)
        assert "Vasario naujienos" in plain.get(f"/editor/issues/{SLUG}/render").json()["text"]
        issue.write_text(issue_text(heading="Atnaujinta"), encoding="utf-8")
        assert "Atnaujinta" in plain.get(f"/editor/issues/{SLUG}/render").json()["text"]
