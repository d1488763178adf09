"""The sponsor registry edited over HTTP: saved as the CLI reads it, guarded, escaped."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db
from newsletter.cli.core import main
from newsletter.compose.sponsors import load_registry
from newsletter.models import IssueRevision
from newsletter.settings import Settings
from tests.conftest import ROOT
from tests.web.conftest import EDITOR_EMAIL
from tests.web.issues import write_issue
from tests.web.shared import logged_in_client, module_settings
from tests.web.test_media import assert_inert, png

XSS = '<img src=x onerror="alert(1)">'
BASE_URL = "https://naujienos.bibliotekos-pazangai.example"
LOADED = re.compile(r'name="loaded" value="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, Settings]]:
    """One app and logged-in editor for the module: (client, CSRF token, settings)."""
    settings = module_settings(tmp_path_factory.mktemp("sponsors"), BASE_URL)
    with logged_in_client(settings) as (client, token):
        yield client, token, settings


@pytest.fixture
def registry(shared: tuple[TestClient, str, Settings]) -> Settings:
    """The settings, their sponsors.yaml a fresh copy of the repository's."""
    settings = shared[2]
    shutil.copy(ROOT / "sponsors.yaml", settings.sponsors_file)
    for issue in settings.issues_dir.glob("*.md"):
        issue.unlink()
    return settings


@pytest.fixture
def editing(shared: tuple[TestClient, str, Settings], registry: Settings) -> tuple[TestClient, str]:
    """The logged-in client of the app on that registry, and its CSRF token."""
    return shared[0], shared[1]


def loaded_of(client: TestClient) -> str:
    found = LOADED.search(client.get("/editor/sponsors").text)
    assert found
    return found.group(1)


def add_sponsor(client: TestClient, token: str, loaded: str, **fields: str):
    data = {"csrf_token": token, "loaded": loaded, "original": "", **fields}
    files = {"logo": ("", b"", "application/octet-stream")}
    return client.post("/editor/sponsors/sponsor", data=data, files=files)


def test_a_sponsor_added_in_the_browser_is_in_the_next_render_from_the_cli(
    editing: tuple[TestClient, str],
    registry: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, token = editing
    answer = add_sponsor(
        client,
        token,
        loaded_of(client),
        name=f"Kauno biblioteka {XSS}",
        tier="main",
        url="https://www.kaunobiblioteka.lt",
    )
    assert answer.status_code == 303, answer.text
    sponsors = load_registry(registry.sponsors_file).sponsors
    assert (sponsors[-1].id, sponsors[-1].name) == (
        "kauno-biblioteka-img-src-x-onerror-alert-1",
        f"Kauno biblioteka {XSS}",
    )
    text = registry.sponsors_file.read_text(encoding="utf-8")
    assert text.startswith("# The programme's sponsors and partners")
    page = client.get("/editor/sponsors")
    assert XSS not in page.text and "Kauno biblioteka &lt;img" in page.text
    english = client.get("/editor/sponsors", params={"lang": "en"}).text
    assert "Sponsors and partners" in english and "Add a sponsor" in english
    client.get("/editor/sponsors", params={"lang": "lt"})

    issue = write_issue(registry.issues_dir)
    for name, value in (
        ("SPONSORS_FILE", registry.sponsors_file),
        ("TEMPLATES_DIR", registry.templates_dir),
        ("DATA_DIR", tmp_path / "var"),
        ("BASE_URL", registry.base_url),
    ):
        monkeypatch.setenv(f"NEWSLETTER_{name}", str(value))
    assert main(["render", str(issue), "--out", str(tmp_path / "out")]) == 0
    html = (tmp_path / "out" / f"{issue.stem}.html").read_text(encoding="utf-8")
    assert "https://www.kaunobiblioteka.lt" in html
    assert_inert(html, None)
    assert f"Kauno biblioteka {XSS}" not in html and "Kauno biblioteka &lt;img" in html
    capsys.readouterr()

    with db.transaction(registry.database) as session:
        saved = session.scalars(
            select(IssueRevision)
            .where(IssueRevision.slug == ":sponsors")
            .order_by(IssueRevision.id.desc())
            .limit(2)
        )
        newest, before = list(saved)
        assert (newest.text, newest.author) == (text, EDITOR_EMAIL)
        assert (before.author, "TEO LT, AB" in before.text) == ("", True)  # the text it replaced


def test_an_edit_on_disk_meanwhile_is_kept_and_the_form_comes_back_as_typed(
    editing: tuple[TestClient, str], registry: Settings
) -> None:
    client, token = editing
    loaded = loaded_of(client)
    theirs = registry.sponsors_file.read_text(encoding="utf-8").replace(
        "TEO LT, AB", "Telia Lietuva"
    )
    registry.sponsors_file.write_text(theirs, encoding="utf-8")
    answer = add_sponsor(
        client, token, loaded, name="Mano rėmėjas", tier="main", url="https://mano.lt"
    )
    assert answer.status_code == 409
    assert "rėmėjų failas pasikeitė" in answer.text
    assert 'value="Mano rėmėjas"' in answer.text and 'value="https://mano.lt"' in answer.text
    assert registry.sponsors_file.read_text(encoding="utf-8") == theirs
    moved = client.post(
        "/editor/sponsors/move",
        data={"csrf_token": token, "loaded": loaded, "kind": "tier", "id": "public", "step": "up"},
    )
    assert moved.status_code == 409
    assert registry.sponsors_file.read_text(encoding="utf-8") == theirs


def test_reorder_edit_and_delete(editing: tuple[TestClient, str], registry: Settings) -> None:
    client, token = editing

    def post(action: str, **fields: str) -> None:
        data = {"csrf_token": token, "loaded": loaded_of(client), **fields}
        answer = client.post(f"/editor/sponsors/{action}", data=data)
        assert answer.status_code == 303, answer.text

    post("move", kind="sponsor", id="tiketa", step="up")
    post("move", kind="sponsor", id="tiketa", step="up")  # already first of its tier
    post("move", kind="tier", id="campaign", step="up")
    post("delete", kind="sponsor", id="pigu")
    registry_now = load_registry(registry.sponsors_file)
    assert [tier.id for tier in registry_now.tiers][:2] == ["campaign", "main"]
    ids = [sponsor.id for sponsor in registry_now.sponsors]
    assert ids.index("tiketa") < ids.index("teo") and "pigu" not in ids
    post("tier", original="campaign", id="akcijos", size="normal")
    renamed = load_registry(registry.sponsors_file)
    assert "akcijos" in [tier.id for tier in renamed.tiers]
    assert {s.tier for s in renamed.sponsors if s.id == "swedbank"} == {"akcijos"}


def test_refusals_name_the_file_line_and_write_nothing_and_a_logo_needs_its_alt_text(
    editing: tuple[TestClient, str], registry: Settings
) -> None:
    client, token = editing
    before = registry.sponsors_file.read_bytes()
    answer = add_sponsor(
        client, token, loaded_of(client), name="Be adreso", tier="main", url="ftp://x"
    )
    assert answer.status_code == 400
    found = re.search(
        r'<span class="field-error" id="error-url" role="alert">([^<]+)</span>', answer.text
    )
    assert found, answer.text
    assert re.fullmatch(
        rf"{re.escape(str(registry.sponsors_file))}:\d+: sponsor 'be-adreso' url must start with https://",
        found.group(1).replace("&#39;", "'"),
    )
    tier_in_use = client.post(
        "/editor/sponsors/delete",
        data={"csrf_token": token, "loaded": loaded_of(client), "kind": "tier", "id": "main"},
    )
    assert tier_in_use.status_code == 400 and "has unknown tier" in tier_in_use.text
    no_csrf = client.post("/editor/sponsors/delete", data={"kind": "tier", "id": "main"})
    assert no_csrf.status_code == 403
    assert registry.sponsors_file.read_bytes() == before

    # A logo goes through the library, with its alt text and size.
    data = {"csrf_token": token, "loaded": loaded_of(client), "original": "teo"}
    data.update(name="TEO LT, AB", tier="main", url="https://www.teo.lt", alt="")
    logo = {"logo": ("teo.png", png((240, 80)), "image/png")}
    refused = client.post("/editor/sponsors/sponsor", data=data, files=logo)
    assert refused.status_code == 400 and 'id="error-alt"' in refused.text
    data["alt"] = "TEO logotipas"
    assert client.post("/editor/sponsors/sponsor", data=data, files=logo).status_code == 303
    teo = next(s for s in load_registry(registry.sponsors_file).sponsors if s.id == "teo")
    assert re.fullmatch(r"/media/[0-9a-f]{64}\.png", teo.logo)
    assert (teo.logo_width, teo.logo_height, teo.alt) == (240, 80, "TEO logotipas")
    assert client.get(teo.logo).headers["content-type"] == "image/png"
