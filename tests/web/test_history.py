"""Revisions of issues on both databases: every save recorded, the diff, and restoring one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import html as lxml_html
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.models import IssueRevision
from newsletter.settings import Settings
from newsletter.web import create_app, issue_files
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD, log_in
from tests.web.issues import SLUG, issue_text, write_issue


@pytest.fixture
def writer(db_settings: Settings, tmp_path: Path) -> Iterator[tuple[TestClient, Settings, str]]:
    """A logged-in client on SQLite, then PostgreSQL, with one issue file on disk."""
    folder = tmp_path / "issues"
    folder.mkdir()
    settings = db_settings.replace(issues_dir=folder)
    with db.transaction(settings.database) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
    write_issue(folder)
    app = create_app(settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client, settings, log_in(client)


def save(client: TestClient, token: str, text: str, loaded: str) -> int:
    answer = client.post(
        f"/editor/issues/{SLUG}/edit", data={"csrf_token": token, "text": text, "loaded": loaded}
    )
    return answer.status_code


def stored(settings: Settings) -> list[tuple[str, str, str]]:
    with db.transaction(settings.database) as session:
        rows = session.execute(
            select(IssueRevision.author, IssueRevision.sha256, IssueRevision.text)
            .where(IssueRevision.slug == SLUG)
            .order_by(IssueRevision.id)
        )
        return [tuple(row) for row in rows]


def test_every_save_is_recorded_with_the_version_found_on_disk_first(
    writer: tuple[TestClient, Settings, str],
) -> None:
    client, settings, token = writer
    first, second = issue_text(heading="Pirma"), issue_text(heading="Antra")
    assert save(client, token, first, issue_files.digest(issue_text())) == 303
    assert save(client, token, second, issue_files.digest(first)) == 303
    assert stored(settings) == [
        ("", issue_files.digest(issue_text()), issue_text()),
        (EDITOR_EMAIL, issue_files.digest(first), first),
        (EDITOR_EMAIL, issue_files.digest(second), second),
    ]
    refused = save(client, token, "mano\n", issue_files.digest(first))
    assert refused == 409
    assert len(stored(settings)) == 3  # a refused save records nothing


def test_the_history_shows_an_escaped_diff_and_restores_a_revision(
    writer: tuple[TestClient, Settings, str],
) -> None:
    client, settings, token = writer
    changed = issue_text(paragraph="<script>alert(1)</script> naujas sakinys.")
    assert save(client, token, changed, issue_files.digest(issue_text())) == 303
    answer = client.get(f"/editor/issues/{SLUG}/history")
    assert "<script>alert(1)" not in answer.text
    page = lxml_html.fromstring(answer.text)
    added = [node.text_content() for node in page.xpath("//pre[@id='diff']/span[@class='add']")]
    removed = [node.text_content() for node in page.xpath("//pre[@id='diff']/span[@class='del']")]
    assert added == ["+<script>alert(1)</script> naujas sakinys."]
    assert removed == ["-Bibliotekose vyko mokymai."]
    authors = [cell.text_content() for cell in page.xpath("//tbody/tr/td[4]")]
    assert authors == [EDITOR_EMAIL, "pakeista faile"]
    oldest = page.xpath("//tbody/tr[2]/@data-revision")[0]
    form = page.xpath(f"//form[@id='restore-{oldest}']")[0]
    loaded = form.xpath("string(.//input[@name='loaded']/@value)")
    restored = client.post(form.get("action"), data={"csrf_token": token, "loaded": loaded})
    assert restored.status_code == 303
    path = settings.issues_dir / f"{SLUG}.md"
    assert path.read_text(encoding="utf-8") == issue_text()
    assert [row[2] for row in stored(settings)] == [issue_text(), changed, issue_text()]
    # The same restore from a page now out of date is refused, showing both versions.
    path.write_text(issue_text(heading="Diske"), encoding="utf-8")
    again = client.post(form.get("action"), data={"csrf_token": token, "loaded": loaded})
    assert again.status_code == 409
    assert path.read_text(encoding="utf-8") == issue_text(heading="Diske")


def test_a_revision_of_another_issue_cannot_be_restored_here(
    writer: tuple[TestClient, Settings, str],
) -> None:
    client, settings, token = writer
    other = write_issue(settings.issues_dir, slug="2026-03-kitas")
    client.post(
        "/editor/issues/2026-03-kitas/edit",
        data={
            "csrf_token": token,
            "text": issue_text(heading="Kitas"),
            "loaded": issue_files.digest(issue_text()),
        },
    )
    with db.transaction(settings.database) as session:
        foreign = session.scalar(
            select(IssueRevision.id).where(IssueRevision.slug == "2026-03-kitas").limit(1)
        )
    answer = client.post(
        f"/editor/issues/{SLUG}/history/{foreign}/restore",
        data={"csrf_token": token, "loaded": issue_files.digest(issue_text())},
    )
    assert answer.status_code == 404
    assert (settings.issues_dir / f"{SLUG}.md").read_text(encoding="utf-8") == issue_text()
    assert other.read_text(encoding="utf-8") == issue_text(heading="Kitas")
