"""The lists page and importing a list file in the browser, through the app, on both databases.

Each test runs on SQLite and on PostgreSQL (``db_settings``): upload → dry run → confirm,
the same file twice, a list changed between the two screens, a double confirmation, and
files that must be refused with the database left exactly as it was.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from starlette.testclient import TestClient

from newsletter import db, users
from newsletter.audience.lists import COMMAND_LINE, import_file
from newsletter.audience.subscribers import unsubscribe
from newsletter.models import ListImport, MailingList, Membership, PendingUpload, Subscriber
from newsletter.settings import Settings
from newsletter.web import create_app
from newsletter.web.audience import uploads
from tests.audience import workbooks
from tests.web.conftest import EDITOR_EMAIL, EDITOR_PASSWORD, csrf_of, log_in
from tests.web.helpers import snapshot

CSV = (
    "El. paštas;Vardas, pavardė;Savivaldybė;Pareigos\n"
    "ona@savivaldybe.example;Ona Onaitė;Šiaulių m.;merė\n"
    "petras@savivaldybe.example;Petras Petraitis;Kauno r.;vedėjas\n"
    "ne-adresas;Kažkas;Kauno r.;\n"
).encode()
TOKEN_FIELD = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def site(db_settings: Settings) -> Iterator[tuple[TestClient, Settings, str]]:
    """A logged-in client on SQLite, then PostgreSQL, with a list of two members."""
    with db.transaction(db_settings.database) as session:
        users.create_user(session, EDITOR_EMAIL, EDITOR_PASSWORD)
        towns = MailingList(slug="savivaldybes", name="Savivaldybės")
        ona = Subscriber(email="ona@savivaldybe.example", name="Ona")
        jonas = Subscriber(email="jonas@savivaldybe.example", name="Jonas", status="bounced")
        session.add_all([towns, ona, jonas])
        session.flush()
        session.add_all(
            [
                Membership(subscriber_id=ona.id, list_id=towns.id),
                Membership(subscriber_id=jonas.id, list_id=towns.id),
            ]
        )
    app = create_app(db_settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client, db_settings, log_in(client)


def upload(
    client: TestClient,
    csrf: str,
    content: bytes,
    *,
    file_name: str = "savivaldybes.csv",
    sync: bool = False,
    lang: str = "lt",
    **fields: str,
):
    data = {"csrf_token": csrf, "list": "savivaldybes", **fields}
    if sync:
        data["sync"] = "1"
    return client.post(
        f"/editor/lists/upload?lang={lang}",
        data=data,
        files={"file": (file_name, content, "text/csv")},
    )


def file_error(answer) -> str:  # type: ignore[no-untyped-def]
    """The text of the message beside the file field (unescaped)."""
    error = re.search(
        r'<p class="alert field-error" id="file-error" role="alert">(.*?)</p>', answer.text
    )
    assert error, answer.text
    return html.unescape(error.group(1))


def confirm(client: TestClient, csrf: str, dry_run_html: str):
    token = TOKEN_FIELD.search(dry_run_html)
    assert token, "the dry run has no confirmation form"
    return client.post(
        "/editor/lists/upload/confirm", data={"csrf_token": csrf, "token": token.group(1)}
    )


def members(url: str) -> dict[str, str]:
    with db.transaction(url) as session:
        rows = session.execute(
            select(Subscriber.email, Membership.status).join(
                Membership, Membership.subscriber_id == Subscriber.id
            )
        )
        return dict(rows.all())


def count_cell(html: str, slug: str, column: str) -> str:
    row = re.search(rf'<tr data-list="{slug}">(.*?)</tr>', html, re.S)
    assert row, f"no row for {slug}"
    cell = re.search(rf'<td class="{column}"[^>]*>(\d+)</td>', row.group(1))
    assert cell, f"no {column} cell"
    return cell.group(1)


def test_lists_page_shows_counts_and_is_for_editors_only(db_settings: Settings) -> None:
    app = create_app(db_settings, watch=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        answer = client.get("/editor/lists")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/editor/login?next=")
        csrf = csrf_of(client.get("/editor/login").text)
        refused = client.post(
            "/editor/lists/upload",
            data={"csrf_token": csrf, "list": "x"},
            files={"file": ("a.csv", CSV, "text/csv")},
        )
        assert refused.status_code == 401


def test_upload_dry_run_then_confirm_imports_and_records_it(
    site: tuple[TestClient, Settings, str],
) -> None:
    client, settings, csrf = site
    page = client.get("/editor/lists")
    assert count_cell(page.text, "savivaldybes", "active") == "1"
    assert count_cell(page.text, "savivaldybes", "bounced") == "1"
    before = snapshot(settings.database)
    dry = upload(client, csrf, CSV)
    assert dry.status_code == 200, dry.text
    assert snapshot(settings.database) == {
        **before,
        "pending_uploads": snapshot(settings.database)["pending_uploads"],
    }
    assert re.search(r'class="added"><dt>[^<]+</dt><dd>1</dd>', dry.text)
    assert re.search(r'class="updated"><dt>[^<]+</dt><dd>1</dd>', dry.text)
    assert re.search(r'class="rejected"><dt>[^<]+</dt><dd>1</dd>', dry.text)
    assert "eilutė 4: " in dry.text
    done = confirm(client, csrf, dry.text)
    assert done.status_code == 303, done.text
    assert members(settings.database)["petras@savivaldybe.example"] == "active"
    page = client.get(done.headers["location"])
    assert count_cell(page.text, "savivaldybes", "active") == "2"
    assert "savivaldybes.csv" in page.text
    with db.transaction(settings.database) as session:
        record = session.scalars(select(ListImport)).one()
        assert (record.by, record.file_name) == (EDITOR_EMAIL, "savivaldybes.csv")
        assert record.counts["added"] == 1 and record.counts["rejected"] == 1
        assert len(record.sha256) == 64
        assert session.scalars(select(PendingUpload)).all() == []


def test_the_same_upload_twice_changes_nothing(site: tuple[TestClient, Settings, str]) -> None:
    client, settings, csrf = site
    assert confirm(client, csrf, upload(client, csrf, CSV).text).status_code == 303
    before = members(settings.database)
    dry = upload(client, csrf, CSV)
    assert re.search(r'class="added"><dt>[^<]+</dt><dd>0</dd>', dry.text)
    assert re.search(r'class="unchanged"><dt>[^<]+</dt><dd>2</dd>', dry.text)
    assert confirm(client, csrf, dry.text).status_code == 303
    assert members(settings.database) == before


def test_sync_shows_who_would_leave_and_removes_exactly_them(
    site: tuple[TestClient, Settings, str],
) -> None:
    client, settings, csrf = site
    only_petras = b"email,name\npetras@savivaldybe.example,Petras\n"
    dry = upload(client, csrf, only_petras, sync=True)
    leaving = re.search(r'<ul class="leaving">(.*?)</ul>', dry.text, re.S)
    assert leaving and re.findall(r"<li>(.*?)</li>", leaving.group(1)) == [
        "jonas@savivaldybe.example",
        "ona@savivaldybe.example",
    ]
    assert members(settings.database).keys() == {
        "ona@savivaldybe.example",
        "jonas@savivaldybe.example",
    }
    assert confirm(client, csrf, dry.text).status_code == 303
    assert members(settings.database) == {"petras@savivaldybe.example": "active"}


def test_a_list_changed_between_the_two_screens_is_refused_and_shown_again(
    site: tuple[TestClient, Settings, str],
) -> None:
    client, settings, csrf = site
    dry = upload(client, csrf, b"email\nnaujas@savivaldybe.example\n", sync=True)
    assert "ona@savivaldybe.example" in dry.text
    with db.transaction(settings.database) as session:
        ona = session.scalars(select(Subscriber).where(Subscriber.name == "Ona")).one()
        towns = session.scalars(select(MailingList)).one()
        unsubscribe(session, settings.key(), ona.id, towns.id, "telephone call")
    before = snapshot(settings.database)
    refused = confirm(client, csrf, dry.text)
    assert refused.status_code == 409
    assert "sąrašas pasikeitė" in refused.text
    assert snapshot(settings.database) == {
        **before,
        "pending_uploads": snapshot(settings.database)["pending_uploads"],
    }
    # The dry run shown again is the one that now holds: Ona is no longer leaving.
    leaving = re.search(r'<ul class="leaving">(.*?)</ul>', refused.text, re.S)
    assert leaving and "ona@" not in leaving.group(1)
    assert confirm(client, csrf, refused.text).status_code == 303
    assert members(settings.database) == {
        "ona@savivaldybe.example": "unsubscribed",
        "naujas@savivaldybe.example": "active",
    }


def test_a_second_confirmation_imports_nothing_more(site: tuple[TestClient, Settings, str]) -> None:
    client, settings, csrf = site
    dry = upload(client, csrf, CSV)
    assert confirm(client, csrf, dry.text).status_code == 303
    before = snapshot(settings.database)
    again = confirm(client, csrf, dry.text)
    assert again.status_code == 410
    assert snapshot(settings.database) == before


def test_a_new_list_is_created_on_confirmation(site: tuple[TestClient, Settings, str]) -> None:
    client, settings, csrf = site
    dry = upload(client, csrf, CSV, list="", new_slug="bibliotekos", new_name="Bibliotekos")
    assert dry.status_code == 200
    with db.transaction(settings.database) as session:
        assert session.scalar(select(MailingList).where(MailingList.slug == "bibliotekos")) is None
    assert confirm(client, csrf, dry.text).status_code == 303
    with db.transaction(settings.database) as session:
        assert (
            session.scalar(select(MailingList.name).where(MailingList.slug == "bibliotekos"))
            == "Bibliotekos"
        )


def xlsx_without_email() -> bytes:
    book = Workbook()
    book.active.append(["Vardas", "Savivaldybė"])
    book.active.append(["Ona", "Kauno r."])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("file_name", "content", "lithuanian", "english"),
    [
        (
            "sarasas.pdf",
            b"%PDF-1.4",
            "sarasas.pdf: nežinomas failo tipas „.pdf“; įkelkite .csv arba .xlsx failą",
            "sarasas.pdf: unknown file type '.pdf'; use .csv or .xlsx",
        ),
        (
            "sarasas.csv",
            "email\nona@x.example;Ona\n".encode("utf-16"),
            "sarasas.csv: failas yra UTF-16 koduotės (Excel „Unicode text“); "
            "išsaugokite jį kaip „CSV UTF-8“",
            "sarasas.csv: the file is UTF-16 (Excel 'Unicode text'); save it as 'CSV UTF-8'",
        ),
        (
            "sarasas.csv",
            "email;name\nona@x.example;Ona\npetras@x.example;Petras\xff\n".encode("latin-1")
            + "Žemaitė".encode(),
            "sarasas.csv, eilutė 3: netinkamas UTF-8 tekstas (baitas 0xff) faile, kuris kitur "
            "užkoduotas UTF-8",
            "sarasas.csv, line 3: invalid UTF-8 (byte 0xff) in a file that is otherwise UTF-8",
        ),
        (
            "sarasas.xlsx",
            xlsx_without_email(),
            "sarasas.xlsx: nėra el. pašto stulpelio (antraštės, pvz., „email“ arba „El. paštas“); "
            "pirmoje eilutėje: 'Vardas', 'Savivaldybė'",
            "sarasas.xlsx: no email column (a header such as 'email' or 'El. paštas'); "
            "the first row has 'Vardas', 'Savivaldybė'",
        ),
        (
            "sarasas.xlsx",
            b"not a zip",
            "sarasas.xlsx: failas nėra perskaitoma XLSX darbaknygė (",
            "sarasas.xlsx: not a readable XLSX workbook (",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_beside_the_field(
    site: tuple[TestClient, Settings, str],
    file_name: str,
    content: bytes,
    lithuanian: str,
    english: str,
) -> None:
    """In the page's language: Lithuanian by default, English with ?lang=en."""
    client, settings, csrf = site
    before = snapshot(settings.database)
    for lang, message in (("lt", lithuanian), ("en", english)):
        answer = upload(client, csrf, content, file_name=file_name, lang=lang)
        assert answer.status_code == 400
        assert file_error(answer).startswith(message), lang
        assert "Traceback" not in answer.text
    assert snapshot(settings.database) == before


def test_a_file_over_the_limit_is_refused_beside_the_field(
    site: tuple[TestClient, Settings, str],
) -> None:
    client, settings, csrf = site
    before = snapshot(settings.database)
    big = b"email\n" + b"ona@savivaldybe.example\n" * (uploads.MAX_UPLOAD_BYTES // 24 + 10)
    answer = upload(client, csrf, big)
    assert answer.status_code == 400
    assert file_error(answer) == "Failas didesnis nei 20 MB."
    assert file_error(upload(client, csrf, big, lang="en")) == "The file is larger than 20 MB."
    assert snapshot(settings.database) == before


def xlsx_with_formula() -> bytes:
    book = Workbook()
    book.active.append(["El. paštas", "Vardas"])
    book.active.append(["ona@savivaldybe.example", "Ona"])
    book.active.append(["petras@savivaldybe.example", '=HYPERLINK("http://x.example","Petras")'])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_bad_files_are_refused_naming_the_reason_and_change_nothing(
    site: tuple[TestClient, Settings, str], tmp_path: Path
) -> None:
    """The cases the tests above leave out: a bomb, 60 MB, a formula in a CSV or XLSX cell."""
    client, settings, csrf = site
    bomb = workbooks.zip_bomb(tmp_path / "bomba.xlsx", gigabytes=1).read_bytes()
    formula = b"email;name\nona@savivaldybe.example;Ona\npetras@savivaldybe.example;=1+2\n"
    cases = [
        ("bomba.xlsx", bomb, "bomba.xlsx: išpakuota darbaknygė užimtų 1000 MB, daugiau nei "
         "leidžiami 500 MB;", "bomba.xlsx: the workbook unpacks to 1,000 MB"),
        ("didelis.csv", b"email\n" + b"x" * 60_000_000, "Failas didesnis nei 20 MB.",
         "The file is larger than 20 MB."),
        ("formule.csv", formula, "formule.csv, eilutė 3: stulpelyje „Vardas, pavardė“ yra "
         "formulė (=1+2); pakeiskite ją reikšme", "formule.csv, line 3: a formula in column "
         "name ('=1+2'); replace it with its value"),
        ("formule.xlsx", xlsx_with_formula(), "formule.xlsx, eilutė 3: stulpelyje „Vardas, "
         "pavardė“ yra formulė", "formule.xlsx, line 3: a formula in column name"),
    ]  # fmt: skip
    before = snapshot(settings.database)
    for file_name, content, lithuanian, english in cases:
        for lang, message in (("lt", lithuanian), ("en", english)):
            answer = upload(client, csrf, content, file_name=file_name, lang=lang)
            assert answer.status_code == 400, file_name
            assert file_error(answer).startswith(message), (file_name, lang)
            assert "Traceback" not in answer.text
    assert snapshot(settings.database) == before


def test_rejected_rows_and_a_missing_list_are_told_in_the_pages_language(
    site: tuple[TestClient, Settings, str],
) -> None:
    client, _settings, csrf = site
    long_role = ("x" * 101).encode()
    content = CSV + b"rasa@savivaldybe.example;Rasa;Kauno r.;" + long_role + b"\n"
    rejected = {}
    for lang in ("lt", "en"):
        dry = upload(client, csrf, content, lang=lang)
        assert dry.status_code == 200
        shown = re.search(r'<ul class="rejections">(.*?)</ul>', dry.text, re.S)
        assert shown, dry.text
        rejected[lang] = [html.unescape(r) for r in re.findall(r"<li>(.*?)</li>", shown.group(1))]
    assert rejected["lt"] == [
        "eilutė 4: neteisingas el. pašto adresas „ne-adresas“",
        "eilutė 5: stulpelio „Pareigos“ reikšmė ilgesnė nei 100 simbolių",
    ]
    assert rejected["en"][0].startswith("line 4: invalid email address 'ne-adresas': ")
    assert rejected["en"][1] == "line 5: role is longer than 100 characters"

    for lang, message in (
        ("lt", "Pasirinkite sąrašą arba įrašykite naujo sąrašo trumpą pavadinimą."),
        ("en", "Choose a list, or give the new list's short name."),
    ):
        answer = upload(client, csrf, CSV, list="", lang=lang)
        assert answer.status_code == 400
        error = re.search(r'id="list-error" role="alert">(.*?)</p>', answer.text)
        assert error and html.unescape(error.group(1)) == message
    for lang, message in (
        ("lt", "Trumpas pavadinimas „Ne Tinka“ netinka: leidžiamos tik mažosios lotyniškos "
         "raidės, skaitmenys ir „-“."),
        ("en", "The short name “Ne Tinka” must be lower-case letters, digits and '-'."),
    ):  # fmt: skip
        answer = upload(client, csrf, CSV, list="", new_slug="Ne Tinka", lang=lang)
        error = re.search(r'id="list-error" role="alert">(.*?)</p>', answer.text)
        assert error and html.unescape(error.group(1)) == message
    nobody = b"email\nne-adresas\n"
    for lang, message in (
        ("lt", "savivaldybes.csv: „Pašalinti narius, kurių faile nėra“ atsisakyta: nė vienos "
         "eilutės nepavyko importuoti, todėl būtų pašalinti visi nariai"),
        ("en", "savivaldybes.csv: “Remove members missing from the file” refused: no row could "
         "be imported, so every member would be removed"),
    ):  # fmt: skip
        assert file_error(upload(client, csrf, nobody, sync=True, lang=lang)) == message


def test_an_upload_without_the_csrf_token_is_refused(
    site: tuple[TestClient, Settings, str],
) -> None:
    client, settings, _csrf = site
    before = snapshot(settings.database)
    answer = upload(client, "wrong-token", CSV)
    assert answer.status_code == 403
    assert snapshot(settings.database) == before


def test_an_import_from_the_command_line_is_named_in_the_pages_language(
    site: tuple[TestClient, Settings, str], tmp_path: Path
) -> None:
    client, settings, _ = site
    listfile = tmp_path / "savivaldybes.csv"
    listfile.write_bytes(CSV)
    import_file(settings.database, settings.key(), listfile, "savivaldybes", by=COMMAND_LINE)
    assert "komandinė eilutė" in client.get("/editor/lists").text
    assert "command line" in client.get("/editor/lists?lang=en").text
