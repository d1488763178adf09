"""Writing issues over HTTP: the new-issue form, the edit page, saves and their conflicts."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
from lxml import html as lxml_html
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db
from newsletter.compose.issue import read_issue
from newsletter.models import IssueRevision
from newsletter.settings import Settings
from newsletter.web import issue_files
from tests.web.conftest import EDITOR_EMAIL, log_in
from tests.web.issues import SLUG, issue_text, write_issue

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def new_fields(token: str, **changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "csrf_token": token,
        "subject": "Žiemos šventės bibliotekose ir skaityklose",
        "preheader": "Kas vyko gruodį",
        "date": "2026-12-01",
        "lang": "lt",
        "sponsor": ["main", "public"],
        "body": "# Gruodis\r\n\r\nSveiki, NLPH_name_NLPH!\r\n",
    }
    fields.update(changes)
    return fields


def field_errors(html: str) -> dict[str, str]:
    page = lxml_html.fromstring(html)
    return {
        node.get("id").removeprefix("error-"): node.text_content().strip()
        for node in page.xpath("//*[@class='field-error']")
    }


def loaded_of(html: str) -> str:
    found = re.search(r'name="loaded" value="([0-9a-f]{64})"', html)
    assert found, "the edit page has no loaded version"
    return found.group(1)


def textarea_of(html: str, name: str = "text", form_id: str | None = None) -> str:
    page = lxml_html.fromstring(html)
    scope = f"//form[@id='{form_id}']" if form_id else ""
    return page.xpath(f"{scope}//textarea[@name='{name}']")[0].text_content()


def test_a_new_issue_becomes_a_file_named_after_date_and_subject(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    answer = client.post("/editor/issues/new", data=new_fields(logged_in))
    slug = "2026-12-01-ziemos-sventes-bibliotekose-ir-skaityklose"
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/editor/issues/{slug}/edit"
    path = web_settings.issues_dir / f"{slug}.md"
    source = read_issue(path)
    assert source.front["subject"] == "Žiemos šventės bibliotekose ir skaityklose"
    assert source.front["sponsors"] == ["main", "public"]
    assert source.body == "# Gruodis\n\nSveiki, NLPH_name_NLPH!\n"
    assert b"\r" not in path.read_bytes()
    again = client.post("/editor/issues/new", data=new_fields(logged_in))
    assert again.headers["location"] == f"/editor/issues/{slug}-2/edit"
    assert client.get(f"/editor/issues/{slug}/render").json()["error"] == ""
    with db.transaction(web_settings.database) as session:
        recorded = session.execute(select(IssueRevision.slug, IssueRevision.author)).all()
    assert sorted(recorded) == [(slug, EDITOR_EMAIL), (f"{slug}-2", EDITOR_EMAIL)]


def test_the_new_issue_form_offers_the_registry_tiers_default_checked(
    client: TestClient, logged_in: str
) -> None:
    page = lxml_html.fromstring(client.get("/editor/issues/new").text)
    boxes = {
        box.get("value"): box.get("checked") is not None
        for box in page.xpath("//input[@name='sponsor']")
    }
    assert boxes == {"main": True, "campaign": False, "information": False, "public": False}


def test_bad_fields_are_named_beside_them_and_nothing_is_written(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    answer = client.post(
        "/editor/issues/new",
        data=new_fields(
            logged_in, subject="Trumpa", date="2026-13-01", lang="de", sponsor=["nera"], body=" "
        ),
    )
    assert answer.status_code == 400
    assert field_errors(answer.text) == {
        "subject": "Tema turi būti 10–78 simbolių (dabar 6).",
        "date": "Įveskite datą, pvz., 2026-12-01.",
        "lang": "Pasirinkite lt arba en.",
        "sponsors": "Nežinoma rėmėjų grupė.",
        "body": "Parašykite numerio tekstą.",
    }
    assert list(web_settings.issues_dir.iterdir()) == []
    long = client.post("/editor/issues/new?lang=en", data=new_fields(logged_in, subject="x" * 79))
    assert field_errors(long.text) == {"subject": "The subject must be 10–78 characters (now 79)."}
    assert 'value="' + "x" * 79 + '"' in long.text  # what was typed is kept


def test_an_xss_payload_in_the_subject_and_body_is_escaped_on_the_editor_pages(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    answer = client.post(
        "/editor/issues/new",
        data=new_fields(logged_in, subject=f"Tema {XSS}", body=f"Tekstas {XSS}\n"),
    )
    edit = client.get(answer.headers["location"])
    assert edit.status_code == 200
    assert "<script>alert" not in edit.text
    assert "onerror=alert" not in edit.text.replace("onerror=alert(1)&gt;", "")
    assert f"Tekstas {XSS}" in textarea_of(edit.text)
    preview_list = client.get("/editor/")
    assert "<script>alert" not in preview_list.text


def test_writing_pages_are_for_editors_only_and_need_the_csrf_token(
    client: TestClient, editor: str, web_settings: Settings
) -> None:
    write_issue(web_settings.issues_dir)
    assert client.get("/editor/issues/new").status_code == 303  # to the login page
    refused = client.post("/editor/issues/new", data=new_fields("wrong"))
    assert refused.status_code in (401, 403)
    log_in(client)
    assert client.post("/editor/issues/new", data=new_fields("wrong")).status_code == 403
    text = issue_text(heading="Pakeista")
    digest = hashlib.sha256(issue_text().encode()).hexdigest()
    missing = client.post(f"/editor/issues/{SLUG}/edit", data={"text": text, "loaded": digest})
    assert missing.status_code == 403
    assert list(web_settings.issues_dir.iterdir()) == [web_settings.issues_dir / f"{SLUG}.md"]
    assert read_issue(web_settings.issues_dir / f"{SLUG}.md").body.startswith("# Vasario")


@pytest.fixture
def issue(web_settings: Settings) -> Path:
    return write_issue(web_settings.issues_dir)


def test_save_replaces_the_file_and_the_page_shows_the_new_text(
    client: TestClient, logged_in: str, issue: Path
) -> None:
    edit = client.get(f"/editor/issues/{SLUG}/edit")
    assert textarea_of(edit.text) == issue_text()
    assert loaded_of(edit.text) == hashlib.sha256(issue.read_bytes()).hexdigest()
    new_text = issue_text(heading="Kovo naujienos").replace("\n", "\r\n")
    answer = client.post(
        f"/editor/issues/{SLUG}/edit",
        data={"csrf_token": logged_in, "text": new_text, "loaded": loaded_of(edit.text)},
    )
    assert answer.status_code == 303
    assert issue.read_text(encoding="utf-8") == issue_text(heading="Kovo naujienos")
    after = client.get(answer.headers["location"])
    assert lxml_html.fromstring(after.text).xpath("string(//*[@id='saved'])") == "Išsaugota."
    assert textarea_of(after.text) == issue_text(heading="Kovo naujienos")
    assert "Kovo naujienos" in client.get(f"/editor/issues/{SLUG}/render").json()["text"]


def test_a_save_over_a_changed_file_shows_both_versions_and_writes_nothing(
    client: TestClient, logged_in: str, issue: Path
) -> None:
    loaded = loaded_of(client.get(f"/editor/issues/{SLUG}/edit").text)
    theirs = issue_text(heading="Pakeista diske")
    issue.write_text(theirs, encoding="utf-8")
    mine = issue_text(heading="Mano pakeitimas")
    answer = client.post(
        f"/editor/issues/{SLUG}/edit",
        data={"csrf_token": logged_in, "text": mine, "loaded": loaded},
    )
    assert answer.status_code == 409
    assert issue.read_text(encoding="utf-8") == theirs
    assert textarea_of(answer.text, form_id="theirs") == theirs
    assert textarea_of(answer.text, form_id="yours") == mine
    # Saving "yours" from the conflict page is against the version now on disk.
    current = re.search(r'name="loaded" value="([0-9a-f]{64})"', answer.text).group(1)
    assert current == hashlib.sha256(theirs.encode()).hexdigest()
    saved = client.post(
        f"/editor/issues/{SLUG}/edit",
        data={"csrf_token": logged_in, "text": mine, "loaded": current},
    )
    assert saved.status_code == 303
    assert issue.read_text(encoding="utf-8") == mine


def test_a_text_that_does_not_compile_is_saved_as_a_draft_and_cannot_be_sent(
    client: TestClient, logged_in: str, issue: Path
) -> None:
    loaded = loaded_of(client.get(f"/editor/issues/{SLUG}/edit").text)
    broken = "---\nsubject: [neuždaryta\n---\nTekstas\n"
    answer = client.post(
        f"/editor/issues/{SLUG}/edit",
        data={"csrf_token": logged_in, "text": broken, "loaded": loaded},
    )
    assert answer.status_code == 303
    assert issue.read_text(encoding="utf-8") == broken
    edit = lxml_html.fromstring(client.get(answer.headers["location"]).text)
    shown = edit.xpath("string(//*[@id='compile-error'])")
    assert "Išsaugota kaip juodraštis" in shown
    assert f"{issue}:2" in shown
    assert edit.xpath("string(//textarea[@name='text'])") == broken
    for form_page in ("campaign", "test"):
        refused = lxml_html.fromstring(client.get(f"/editor/issues/{SLUG}/{form_page}").text)
        assert refused.xpath("string(//*[@role='alert'])").startswith(
            "Numerio nepavyksta sukompiliuoti: "
        )
    confirm = client.post(
        f"/editor/issues/{SLUG}/campaign",
        data={"csrf_token": logged_in, "list": "visi", "send_at": ""},
    )
    assert confirm.status_code == 400
    assert "Numerio nepavyksta sukompiliuoti" in confirm.text
    english = client.post(
        f"/editor/issues/{SLUG}/campaign?lang=en",
        data={"csrf_token": logged_in, "list": "visi", "send_at": ""},
    )
    assert "the issue does not compile" in english.text


def test_an_issue_outside_the_folder_cannot_be_opened_or_saved(
    client: TestClient, logged_in: str, web_settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text(issue_text(), encoding="utf-8")
    (web_settings.issues_dir / "nuoroda.md").symlink_to(outside)
    assert client.get("/editor/issues/nuoroda/edit").status_code == 404
    answer = client.post(
        "/editor/issues/nuoroda/edit",
        data={
            "csrf_token": logged_in,
            "text": "pakeista\n",
            "loaded": hashlib.sha256(issue_text().encode()).hexdigest(),
        },
    )
    assert answer.status_code == 404
    assert outside.read_text(encoding="utf-8") == issue_text()
    assert client.get("/editor/issues/..%2Fx/edit").status_code == 404


def test_a_save_of_the_same_size_at_the_same_time_is_still_a_new_preview(
    client: TestClient, logged_in: str, issue: Path
) -> None:
    before = issue.stat()
    assert "Vasario naujienos" in client.get(f"/editor/issues/{SLUG}/render").json()["text"]
    same_size = issue_text(heading="Vasario naujienoS")
    issue_files.save(issue, same_size, issue_files.digest(issue_text()))
    os.utime(issue, ns=(before.st_atime_ns, before.st_mtime_ns))  # within one clock tick
    assert issue.stat().st_size == before.st_size
    assert "Vasario naujienoS" in client.get(f"/editor/issues/{SLUG}/render").json()["text"]


def test_a_file_removed_meanwhile_shows_the_conflict_and_the_text_can_still_be_saved(
    client: TestClient, logged_in: str, issue: Path
) -> None:
    loaded = loaded_of(client.get(f"/editor/issues/{SLUG}/edit").text)
    issue.unlink()
    mine = issue_text(heading="Mano pakeitimas")
    answer = client.post(
        f"/editor/issues/{SLUG}/edit",
        data={"csrf_token": logged_in, "text": mine, "loaded": loaded},
    )
    assert answer.status_code == 409
    assert textarea_of(answer.text, form_id="yours") == mine
    assert not issue.exists()
    saved = client.post(
        f"/editor/issues/{SLUG}/edit",
        data={"csrf_token": logged_in, "text": mine, "loaded": issue_files.digest("")},
    )
    assert saved.status_code == 303
    assert issue.read_text(encoding="utf-8") == mine
