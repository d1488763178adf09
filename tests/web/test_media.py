"""The image library over HTTP: upload, serve, search, delete, and images in lint and email."""

from __future__ import annotations

import io
from collections.abc import Iterator

import lxml.html
import pytest
from PIL import Image
from starlette.testclient import TestClient

from newsletter.compose.issue import compile_file
from newsletter.compose.lint import lint_file
from newsletter.settings import Settings
from newsletter.web import media_store
from tests.web.helpers import compiled_issue, snapshot, store_campaign
from tests.web.issues import issue_text, write_issue
from tests.web.shared import logged_in_client, module_settings
from tests.web.test_images import jpeg_with_gps

XSS = '<img src=x onerror="alert(1)">'
BASE_URL = "https://naujienos.bibliotekos-pazangai.example"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, Settings]]:
    """One app and logged-in editor for the module: (client, CSRF token, settings)."""
    settings = module_settings(tmp_path_factory.mktemp("media"), BASE_URL)
    with logged_in_client(settings) as (client, token):
        yield client, token, settings


@pytest.fixture
def client(shared: tuple[TestClient, str, Settings]) -> TestClient:
    return shared[0]


@pytest.fixture
def logged_in(shared: tuple[TestClient, str, Settings]) -> str:
    return shared[1]


@pytest.fixture
def web_settings(shared: tuple[TestClient, str, Settings]) -> Settings:
    return shared[2]


def upload(
    client: TestClient,
    token: str,
    data: bytes,
    name: str = "nuotrauka.jpg",
    alt: str = "Skaitytojai bibliotekoje",
    content_type: str = "image/jpeg",
    json: bool = True,
):
    headers = {"accept": "application/json"} if json else {}
    return client.post(
        "/editor/media",
        data={"csrf_token": token, "alt": alt},
        files={"file": (name, data, content_type)},
        headers=headers,
    )


def assert_inert(html: str, alt: str | None) -> None:
    """No element of the email has an event handler; ``alt`` is an image's alt text."""
    root = lxml.html.document_fromstring(html)
    if alt is not None:
        assert alt in [img.get("alt") for img in root.iter("img")]
    handlers = [name for element in root.iter() for name in element.attrib if name.startswith("on")]
    assert handlers == []
    assert "<img src=x" not in html.replace("&lt;img src=x", "")


def png(size: tuple[int, int] = (60, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, "PNG")
    return out.getvalue()


def test_an_uploaded_jpeg_is_served_without_exif_with_immutable_headers(
    client: TestClient, logged_in: str
) -> None:
    answer = upload(client, logged_in, jpeg_with_gps((2000, 1000)), alt="Skaitykla [2026]")
    assert answer.status_code == 200, answer.text
    sent = answer.json()
    assert sent["url"] == f"/media/{sent['sha256']}.jpg"
    assert sent["markdown"] == f"![Skaitykla \\[2026\\]]({sent['url']})"
    assert (sent["width"], sent["height"]) == (1200, 600)

    recipient = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    refused = recipient.post("/editor/media", files={"file": ("a.png", png(), "image/png")})
    assert refused.status_code == 403  # uploads need an editor and the CSRF token
    assert recipient.get("/editor/media").status_code == 303  # to the login page
    served = recipient.get(sent["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["etag"] == f'"{sent["sha256"]}"'
    assert dict(Image.open(io.BytesIO(served.content)).getexif()) == {}
    again = recipient.get(sent["url"], headers={"if-none-match": served.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    for unknown in (
        f"/media/{sent['sha256']}.png",  # another type under the same hash
        f"/media/{'0' * 64}.jpg",
        "/media/../sponsors.yaml",
        f"/media/{sent['sha256'].upper()}.jpg",
    ):
        assert recipient.get(unknown).status_code == 404, unknown


def test_refusals_give_one_line_reasons_and_keep_nothing(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    before = snapshot(web_settings.database)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    gif = io.BytesIO()
    Image.new("P", (8, 8)).save(gif, "GIF")
    cases = [
        (svg, "logo.svg", "image/svg+xml", "SVG ir HTML failai nepriimami"),
        (b"<html><script>alert(1)</script></html>", "foto.jpg", "image/jpeg", "SVG ir HTML"),
        (gif.getvalue(), "foto.png", "image/png", "Failas yra GIF paveikslėlis, bet pavadintas"),
    ]
    for data, name, content_type, words in cases:
        answer = upload(client, logged_in, data, name=name, content_type=content_type)
        assert answer.status_code == 400
        assert answer.json()["field"] == "file"
        assert words in answer.json()["error"]
        assert "\n" not in answer.json()["error"]
    no_alt = upload(client, logged_in, png(), name="a.png", alt="  ", content_type="image/png")
    assert no_alt.json() == {"field": "alt", "error": no_alt.json()["error"]}
    page = upload(client, logged_in, svg, name="logo.svg", content_type="image/svg+xml", json=False)
    assert page.status_code == 400
    assert 'id="error-file"' in page.text and "SVG ir HTML failai nepriimami" in page.text
    assert 'name="alt" value="Skaitytojai bibliotekoje"' in page.text  # kept as typed
    assert snapshot(web_settings.database) == before


def test_the_library_lists_searches_escapes_and_deletes(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    first = upload(
        client,
        logged_in,
        png(),
        name=f"{XSS}.png",
        alt=f"Logotipas {XSS}",
        content_type="image/png",
    )
    second = upload(
        client,
        logged_in,
        png((30, 30)),
        name="vaikai.png",
        alt="Vaikai skaito",
        content_type="image/png",
    )
    page = client.get("/editor/media")
    assert first.json()["sha256"] in page.text and second.json()["sha256"] in page.text
    english = client.get("/editor/media", params={"lang": "en"}).text
    assert "Image library" in english and "Search by alt text or file name" in english
    client.get("/editor/media", params={"lang": "lt"})
    assert XSS not in page.text
    assert "Logotipas &lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page.text
    found = client.get("/editor/media", params={"q": "VAIKAI"})
    assert found.text.count('class="media-item"') == 1 and second.json()["sha256"] in found.text
    assert client.get("/editor/media", params={"q": "s%k"}).text.count('class="media-item"') == 0
    twice = upload(
        client, logged_in, png((30, 30)), name="b.png", alt="Antras", content_type="image/png"
    )
    assert twice.json()["url"] == second.json()["url"]  # the same bytes: one row
    assert twice.json()["markdown"].startswith("![Antras]")
    assert media_store.library(web_settings.database, "antras") == []  # the first alt stays
    sha = first.json()["sha256"]
    gone = client.post(f"/editor/media/{sha}/delete", data={"csrf_token": logged_in})
    assert gone.status_code == 303
    assert client.get(f"/media/{sha}.png").status_code == 404
    again = client.post(f"/editor/media/{sha}/delete", data={"csrf_token": logged_in})
    assert again.status_code == 404


def test_delete_is_refused_while_a_sent_campaign_uses_the_image(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    sent = upload(client, logged_in, png((61, 41)), name="a.png", content_type="image/png").json()
    image = f'<img src="{web_settings.base_url}{sent["url"]}" alt="x">'
    store_campaign(
        web_settings.database, compiled_issue(subject="Kovo naujienos", extra_html=image)
    )
    draft = compiled_issue(subject="Juodraštis", extra_html=image)
    store_campaign(web_settings.database, draft, status="draft")
    answer = client.post(f"/editor/media/{sent['sha256']}/delete", data={"csrf_token": logged_in})
    assert answer.status_code == 409
    assert "Neištrinta: paveikslėlį naudoja išsiųstas siuntimas (Kovo naujienos)" in answer.text
    assert "Juodraštis" not in answer.text
    assert client.get(sent["url"]).status_code == 200


def test_the_email_links_library_images_under_the_base_url_and_lint_knows_their_size(
    client: TestClient, logged_in: str, web_settings: Settings
) -> None:
    import os

    noise = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG")
    big = upload(client, logged_in, out.getvalue(), name="big.png", content_type="image/png").json()
    assert media_store.one(web_settings.database, big["sha256"]).size > 200 * 1024
    body = f"\n![Alt {XSS}]({big['url']})\n"
    path = write_issue(web_settings.issues_dir, issue_text() + body)
    compiled = compile_file(path, web_settings)
    assert f'src="{web_settings.base_url}{big["url"]}"' in compiled.html
    assert_inert(compiled.html, f"Alt {XSS}")
    url = f"{web_settings.base_url}{big['url']}"
    sizes = media_store.image_sizes(web_settings, compiled.html)
    assert list(sizes) == [url]
    findings = lint_file(path, web_settings, compiled, image_sizes=sizes)
    warned = [f for f in findings if "KB; keep images under 200 KB" in f.message]
    assert [(f.severity, f.line) for f in warned] == [
        ("warning", len(issue_text().splitlines()) + 2)
    ]
    assert not [f for f in lint_file(path, web_settings, compiled) if "200 KB" in f.message]
