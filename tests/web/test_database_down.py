"""When the database does not answer, every page is a 503 in the visitor's language, logged once."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from newsletter.audience import tokens
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.support.smtp import free_port


@pytest.fixture
def down(web_settings: Settings) -> TestClient:
    """A client of an app whose PostgreSQL refuses connections (nothing listens on the port)."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/newsletter"
    app = create_app(web_settings.replace(database_url=url), watch=False)
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def test_a_page_needing_the_database_is_a_503_without_a_traceback(
    down: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="newsletter.web.app"):
        answer = down.get("/archive")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "30"
    assert "Duomenų bazė laikinai nepasiekiama" in answer.text
    for leak in ("Traceback", "OperationalError", "psycopg", "127.0.0.1"):
        assert leak not in answer.text
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 1
    assert logged[0].startswith("GET /archive: the database is unavailable (connection failed")
    assert "check that the database server is running" in logged[0]
    english = down.get("/archive?lang=en")
    assert english.status_code == 503 and "The database is unavailable" in english.text


def test_the_log_line_of_a_token_page_hides_the_token(
    down: TestClient, web_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    token = tokens.make_token(web_settings.key(), 1, 1)
    with caplog.at_level(logging.ERROR, logger="newsletter.web.app"):
        answer = down.get(f"/p/{token}")
    assert answer.status_code == 503
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "GET /p/[token]: the database is unavailable" in logged
    assert token not in logged
