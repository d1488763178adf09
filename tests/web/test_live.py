"""The editor page's endpoints for unsaved text: the live preview and autosaved drafts."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from newsletter.settings import Settings
from newsletter.web import drafts, issue_files
from tests.web.conftest import EDITOR_EMAIL
from tests.web.issues import SLUG, issue_text, write_issue

LIVE = f"/editor/issues/{SLUG}/live"
DRAFT = f"/editor/issues/{SLUG}/draft"


@pytest.fixture
def issue(web_settings: Settings):
    return write_issue(web_settings.issues_dir)


def live(client: TestClient, token: str, text: str, **params: str):
    return client.post(LIVE, json={"text": text}, headers={"X-CSRF-Token": token}, params=params)


def test_unsaved_text_is_rendered_in_memory_and_nothing_is_written(
    client: TestClient, logged_in: str, issue, web_settings: Settings
) -> None:
    before = sorted(web_settings.issues_dir.iterdir())
    answer = live(client, logged_in, issue_text(paragraph="Dar neišsaugota <b>pastraipa</b>."))
    assert answer.status_code == 200
    data = answer.json()
    assert data["error"] == "" and data["has_render"] is True
    assert "Dar neišsaugota" in data["text"]
    assert data["size_bytes"] == len(data["source"].encode("utf-8"))
    assert data["size_limit"] == 102 * 1024
    frame = client.get(data["frame_url"])
    assert "Dar neišsaugota" in frame.text
    assert "script-src" not in frame.headers["content-security-policy"]
    assert "sandbox" in frame.headers["content-security-policy"]
    assert issue.read_text(encoding="utf-8") == issue_text()
    assert sorted(web_settings.issues_dir.iterdir()) == before

    # Lint findings come with their lines; a newer render replaces the older in the frame.
    newer = live(client, logged_in, issue_text(paragraph="TK: parašyti")).json()
    markers = [f for f in newer["findings"] if "TK" in f["message"]]
    assert markers and markers[0]["line"] == 10 and markers[0]["severity"] == "error"
    assert newer["frame_url"] != data["frame_url"]
    assert "TK: parašyti" in client.get(data["frame_url"]).text


def test_a_parse_error_is_one_line_naming_the_line(
    client: TestClient, logged_in: str, issue
) -> None:
    data = live(client, logged_in, "---\nsubject: [neuždaryta\n---\nTekstas\n").json()
    assert data["has_render"] is False
    assert data["error_line"] == 2
    assert f"{SLUG}.md:2:" in data["error"] and "\n" not in data["error"]


def test_refused_without_a_token_a_login_or_a_proper_body(
    client: TestClient, editor: str, issue
) -> None:
    from tests.web.conftest import csrf_of, log_in

    token = csrf_of(client.get("/editor/login").text)  # a session, but no editor in it
    assert live(client, token, issue_text()).status_code == 401
    answer = client.post(DRAFT, json={"text": "x", "loaded": "y"}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 401
    assert client.get(f"/editor/issues/{SLUG}/live-frame?n=1").status_code == 303

    logged_in = log_in(client)
    answer = client.post(LIVE, json={"text": issue_text()})
    assert answer.status_code == 403
    answer = client.post(LIVE, json={"text": issue_text()}, headers={"X-CSRF-Token": "wrong"})
    assert answer.status_code == 403
    answer = client.post(DRAFT, json={"text": "x", "loaded": "y"})
    assert answer.status_code == 403

    headers = {"X-CSRF-Token": logged_in, "content-type": "application/json"}
    assert client.post(LIVE, content=b"not json", headers=headers).status_code == 400
    assert client.post(LIVE, json={"text": 5}, headers=headers).status_code == 400
    lone = b'{"text": "\\ud800"}'
    assert client.post(LIVE, content=lone, headers=headers).status_code == 400
    too_long = "x" * (issue_files.TEXT_MAX_BYTES + 1)
    assert client.post(LIVE, json={"text": too_long}, headers=headers).status_code == 413
    answer = client.post("/editor/issues/..%2Fetc/live", json={"text": "x"}, headers=headers)
    assert answer.status_code == 404


def test_autosave_keeps_one_draft_per_editor_and_a_save_removes_it(
    client: TestClient, logged_in: str, issue, web_settings: Settings
) -> None:
    headers = {"X-CSRF-Token": logged_in}
    loaded = issue_files.digest(issue_text())
    for paragraph in ("Pirmas juodraštis.", "Antras juodraštis."):
        body = {"text": issue_text(paragraph=paragraph), "loaded": loaded}
        assert client.post(DRAFT, json=body, headers=headers).status_code == 200
    draft = drafts.find(web_settings.database, SLUG, EDITOR_EMAIL)
    assert draft is not None and "Antras juodraštis." in draft.text and draft.loaded == loaded
    assert issue.read_text(encoding="utf-8") == issue_text()
    page = client.get(f"/editor/issues/{SLUG}/edit").text
    assert 'id="draft-offer"' in page and "Pirmas" not in page
    restored = client.get(f"/editor/issues/{SLUG}/edit?draft=restore").text
    assert "Antras juodraštis." in restored and 'data-restored="1"' in restored
    fields = {"csrf_token": logged_in, "loaded": loaded, "text": draft.text}
    assert client.post(f"/editor/issues/{SLUG}/edit", data=fields).status_code == 303
    assert drafts.find(web_settings.database, SLUG, EDITOR_EMAIL) is None
    assert 'id="draft-offer"' not in client.get(f"/editor/issues/{SLUG}/edit").text

    # A draft can be turned down.
    body = {"text": issue_text(paragraph="Nereikalingas."), "loaded": "0" * 64}
    client.post(DRAFT, json=body, headers={"X-CSRF-Token": logged_in})
    answer = client.post(f"{DRAFT}/discard", data={"csrf_token": logged_in})
    assert answer.status_code == 303
    assert drafts.find(web_settings.database, SLUG, EDITOR_EMAIL) is None


def test_a_conflict_shows_the_diff_and_a_merged_text_prefilled_with_mine(
    client: TestClient, logged_in: str, issue
) -> None:
    loaded = issue_files.digest(issue_text())
    issue.write_text(issue_text(paragraph="Diske."), encoding="utf-8")
    mine = issue_text(paragraph="Mano <script>alert(1)</script>.")
    fields = {"csrf_token": logged_in, "loaded": loaded, "text": mine}
    answer = client.post(f"/editor/issues/{SLUG}/edit", data=fields)
    assert answer.status_code == 409
    assert '<span class="del">-Diske.</span>' in answer.text
    assert '<span class="add">+Mano &lt;script&gt;alert(1)&lt;/script&gt;.</span>' in answer.text
    assert 'id="merged">' + mine.replace("<", "&lt;").replace(">", "&gt;") in answer.text
    assert "<script>alert" not in answer.text
