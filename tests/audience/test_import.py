"""Importing list files: counts, merging, suppression, sync, dry runs and all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import db
from newsletter.audience.lists import ImportReport, import_file, list_summaries
from newsletter.audience.subscribers import (
    erase_subscriber,
    find_subscriber,
    record_bounce,
    unsubscribe,
)
from newsletter.delivery.message import MessageFactory, Recipient
from newsletter.models import ConsentEvent, MailingList, Membership, Subscriber
from newsletter.settings import Settings
from tests.audience.factories import snapshot, write_csv
from tests.delivery.conftest import compiled_issue

KEY = b"test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).parent / "fixtures"


def _import(url: str, path: Path, slug: str = "savivaldybes", **options: object) -> ImportReport:
    return import_file(url, KEY, path, slug, **options)  # type: ignore[arg-type]


def _counts(report: ImportReport) -> tuple[int, int, int, int, int]:
    return report.added, report.updated, report.unchanged, report.suppressed, report.rejected_count


def _people(url: str) -> dict[str, Subscriber]:
    with db.transaction(url) as session:
        return {s.email: s for s in session.scalars(select(Subscriber))}


def _members(url: str, slug: str = "savivaldybes") -> dict[str, str]:
    with db.transaction(url) as session:
        rows = session.execute(
            select(Subscriber.email, Membership.status)
            .join(Membership, Membership.subscriber_id == Subscriber.id)
            .join(MailingList, MailingList.id == Membership.list_id)
            .where(MailingList.slug == slug)
        )
        return {email: status for email, status in rows}


@pytest.mark.parametrize(
    "name", ["utf8_comma.csv", "utf8_bom_semicolon.csv", "cp1257_semicolon.csv"]
)
def test_each_encoding_imports_the_same_people(database_url: str, name: str) -> None:
    report = _import(database_url, FIXTURES / name, name="Savivaldybės")
    assert _counts(report) == (3, 0, 0, 0, 0)
    assert report.list_created
    people = _people(database_url)
    assert people["ona.zemaitiene@siauliai.example"].name == "Ona Žemaitienė"
    assert people["ruta@druskininkai.example"].role == "kultūros skyriaus vedėja"
    assert set(_members(database_url).values()) == {"active"}
    with db.transaction(database_url) as session:
        events = session.scalars(select(ConsentEvent)).all()
        assert {(e.kind, e.source) for e in events} == {("import", name)}
        assert len(events) == 3 and len(events[0].detail["sha256"]) == 64


def test_reimporting_the_same_file_changes_nothing(database_url: str) -> None:
    path = FIXTURES / "invalid_and_duplicates.csv"
    first = _import(database_url, path)
    before = snapshot(database_url)
    again = _import(database_url, path)
    assert _counts(again) == (0, 0, 2, 0, 5) and not again.changed
    assert (again.duplicates, first.duplicates) == (2, 2)
    assert snapshot(database_url) == before


def test_invalid_rows_are_rejected_by_line_and_duplicates_merged(database_url: str) -> None:
    report = _import(database_url, FIXTURES / "invalid_and_duplicates.csv")
    assert _counts(report) == (2, 0, 0, 0, 5)
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (3, "invalid email address 'ne-adresas'"),
        (4, "the email address is empty"),
        (5, "invalid email address 'jurgis@vilnius'"),
        (9, "invalid email address 'jūratė@vilnius.example'"),
        (10, "5 values but the header has 4 columns"),
    ]
    people = _people(database_url)
    assert set(people) == {"ona@vilnius.example", "petras@xn--alininkai-mfb53g.example"}
    # Later non-blank values win; blanks never erase.
    ona = people["ona@vilnius.example"]
    assert (ona.name, ona.role) == ("Ona Kazlauskienė", "vicemerė")
    petras = people["petras@xn--alininkai-mfb53g.example"]
    assert (petras.name, petras.municipality) == ("Petras Jankauskas", "Šalčininkų r.")


def test_header_injection_is_rejected_per_row(database_url: str) -> None:
    report = _import(database_url, FIXTURES / "header_injection.csv")
    assert _counts(report) == (2, 0, 0, 0, 5)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, "control character (such as a line break) in name"),
        (5, "control character (such as a line break) in name"),
        (6, "control character (such as a line break) in name"),
        (7, "control character (such as a line break) in name"),
        (8, "control character (such as a line break) in role"),
    ]
    assert set(_people(database_url)) == {"geras@utena.example", "antras@utena.example"}


def test_encoded_line_breaks_are_rejected_as_the_message_builder_would(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "encoded.csv"
    path.write_text(
        "email,name\n"
        "q@utena.example,=?utf-8?q?a=0d=0aBcc:_x@evil.example?=\n"
        "b@utena.example,=?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?=\n"
        "=?utf-8?q?a=0a?=@utena.example,Adresas Užkoduotas\n"
        "geras@utena.example,=?utf-8?q?Jonas?=\n",  # decodes to plain text: harmless
        encoding="utf-8",
    )
    report = _import(database_url, path)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "name cannot go into a mail header: it contains the control character U+000D"),
        (3, "name cannot go into a mail header: it contains the control character U+000D"),
        (4, "email cannot go into a mail header: it contains the control character U+000A"),
    ]
    people = _people(database_url)
    assert set(people) == {"geras@utena.example"}
    factory = MessageFactory(compiled_issue(), settings, campaign_id=1, list_id_header="x")
    person = people["geras@utena.example"]
    _, raw = factory.build(Recipient(email=person.email, name=person.name))
    assert b"\r\nTo: =?utf-8?b?" in raw  # what was imported can be sent


def test_xlsx_import_with_attributes(database_url: str) -> None:
    report = _import(database_url, FIXTURES / "savivaldybes.xlsx")
    assert _counts(report) == (4, 0, 0, 0, 2)
    assert [r.line for r in report.rejected] == [9, 10]
    people = _people(database_url)
    assert people["jonas.petraitis@kaunas.example"].attributes == {"county": "Kauno"}
    assert people["pranas@birstonas.example"].attributes == {}


def test_changed_values_update_and_blanks_keep(database_url: str, tmp_path: Path) -> None:
    _import(database_url, FIXTURES / "utf8_comma.csv")
    changed = tmp_path / "changed.csv"
    changed.write_text(
        "email,name,municipality,role,institution,county\n"
        "JONAS.PETRAITIS@kaunas.example,Jonas Petraitis,Kauno r.,vicemeras,,Kauno\n"
        "ona.zemaitiene@siauliai.example,,,,,\n"
        'ruta@druskininkai.example,"Čiurlionytė, Rūta",Druskininkų,kultūros skyriaus vedėja,,\n',
        encoding="utf-8",
    )
    assert _counts(_import(database_url, changed)) == (0, 1, 2, 0, 0)
    jonas = _people(database_url)["jonas.petraitis@kaunas.example"]
    assert jonas.role == "vicemeras"
    assert jonas.attributes == {"institution": "Kauno rajono savivaldybė", "county": "Kauno"}
    assert _people(database_url)["ona.zemaitiene@siauliai.example"].name == "Ona Žemaitienė"


def test_existing_subscriber_is_added_to_another_list(database_url: str) -> None:
    _import(database_url, FIXTURES / "utf8_comma.csv", slug="savivaldybes")
    report = _import(database_url, FIXTURES / "cp1257_semicolon.csv", slug="partneriai")
    assert _counts(report) == (3, 0, 0, 0, 0)
    assert len(_people(database_url)) == 3
    assert set(_members(database_url, "partneriai").values()) == {"active"}


def test_unsubscribed_people_stay_unsubscribed_whatever_is_imported(database_url: str) -> None:
    path = FIXTURES / "utf8_comma.csv"
    _import(database_url, path)
    people = _people(database_url)
    with db.transaction(database_url) as session:
        towns = session.scalar(select(MailingList.id))
        unsubscribe(session, KEY, people["jonas.petraitis@kaunas.example"].id, towns, "web")
        unsubscribe(session, KEY, people["ona.zemaitiene@siauliai.example"].id, None, "web")
        record_bounce(session, KEY, people["ruta@druskininkai.example"].id, 1, "550 no such user")
    for options in ({}, {"sync": True}):
        report = _import(database_url, path, **options)
        assert _counts(report) == (0, 0, 0, 3, 0)
    assert set(_members(database_url).values()) == {"unsubscribed", "active"}
    assert _members(database_url)["jonas.petraitis@kaunas.example"] == "unsubscribed"
    # Another list: the per-list refusal does not apply, the global ones do.
    report = _import(database_url, path, slug="bibliotekos")
    assert _counts(report) == (1, 0, 0, 2, 0)
    assert _members(database_url, "bibliotekos") == {"jonas.petraitis@kaunas.example": "active"}


def test_erased_address_is_suppressed_in_any_letter_case(database_url: str, tmp_path: Path) -> None:
    _import(database_url, FIXTURES / "utf8_comma.csv")
    with db.transaction(database_url) as session:
        erase_subscriber(session, KEY, "ona.zemaitiene@siauliai.example")
    shouted = tmp_path / "shouted.csv"
    shouted.write_text("email,name\nONA.ZEMAITIENE@Siauliai.EXAMPLE,Ona Ž.\n", encoding="utf-8")
    for slug in ("savivaldybes", "kitas-sarasas"):
        assert _counts(_import(database_url, shouted, slug=slug)) == (0, 0, 0, 1, 0)
    with db.transaction(database_url) as session:
        assert find_subscriber(session, "ona.zemaitiene@siauliai.example") is None


def test_erased_address_stays_suppressed_in_any_spelling(database_url: str, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text("email,name\nmeras@šalčininkai.example,Meras\n", encoding="utf-8")
    _import(database_url, first)
    with db.transaction(database_url) as session:
        erase_subscriber(session, KEY, "MERAS@xn--alininkai-mfb53g.example")
    spellings = tmp_path / "spellings.csv"
    spellings.write_text(
        "email,name\n"
        "Meras@ŠALČININKAI.example,Meras\n"  # Unicode domain, capitals
        "\u00a0meras@xn--alininkai-mfb53g.EXAMPLE ,Meras\n"  # punycode, spaces around
        "meras@ｓｈａｌｃｈｉｎｉｎｋａｉ.example,Kitas\n"  # full-width: another domain
        "mеras@xn--alininkai-mfb53g.example,Meras\n",  # Cyrillic 'е' in the local part
        encoding="utf-8",
    )
    report = _import(database_url, spellings)
    assert (report.suppressed, report.duplicates, report.added) == (1, 1, 1)
    assert [r.line for r in report.rejected] == [5]
    assert set(_people(database_url)) == {"meras@shalchininkai.example"}


def test_sync_removes_members_missing_from_the_file(database_url: str, tmp_path: Path) -> None:
    _import(database_url, write_csv(tmp_path / "all.csv", 5))
    with db.transaction(database_url) as session:
        person = find_subscriber(session, "asmuo4@savivaldybe.example")
        unsubscribe(session, KEY, person.id, session.scalar(select(MailingList.id)), "web")
    fewer = write_csv(tmp_path / "fewer.csv", 2)
    without_sync = _import(database_url, fewer)
    assert (without_sync.removed, len(_members(database_url))) == (0, 5)
    dry = _import(database_url, fewer, sync=True, dry_run=True)
    assert dry.removed == 2 and len(_members(database_url)) == 5
    report = _import(database_url, fewer, sync=True)
    assert (report.removed, report.unchanged) == (2, 2)
    assert _members(database_url) == {
        "asmuo0@savivaldybe.example": "active",
        "asmuo1@savivaldybe.example": "active",
        "asmuo4@savivaldybe.example": "unsubscribed",
    }
    with db.transaction(database_url) as session:
        kinds = session.scalars(select(ConsentEvent.kind).where(ConsentEvent.kind == "admin"))
        assert len(kinds.all()) == 2
    assert len(_people(database_url)) == 5  # people stay; only their membership went


def test_dry_run_reports_exactly_and_changes_nothing(database_url: str) -> None:
    before = snapshot(database_url)
    report = _import(database_url, FIXTURES / "utf8_comma.csv", dry_run=True)
    assert _counts(report) == (3, 0, 0, 0, 0) and report.list_created and report.dry_run
    assert snapshot(database_url) == before


def test_large_file_is_staged_in_batches(database_url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "big.csv", 5000)
    stages: list[str] = []
    report = _import(database_url, path, progress=lambda stage, done, total: stages.append(stage))
    assert _counts(report) == (5000, 0, 0, 0, 0)
    assert stages.count("reading") == 3
    assert _counts(_import(database_url, path)) == (0, 0, 5000, 0, 0)
    with db.transaction(database_url) as session:
        (summary,) = list_summaries(session)
        assert (summary.slug, summary.active, summary.unsubscribed) == ("savivaldybes", 5000, 0)


@pytest.mark.parametrize("stage", ["reading", "subscribers", "memberships", "sync"])
def test_a_failure_at_any_stage_leaves_everything_as_it_was(
    database_url: str, tmp_path: Path, stage: str
) -> None:
    _import(database_url, write_csv(tmp_path / "old.csv", 300, start=4000))
    before = snapshot(database_url)
    seen: list[str] = []

    def interrupt(current: str, done: int, total: int) -> None:
        seen.append(current)
        # Fail the second time the stage is reached (after the first batch when reading).
        if current == stage and seen.count(stage) == (2 if stage == "reading" else 1):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _import(database_url, write_csv(tmp_path / "new.csv", 4300), sync=True, progress=interrupt)
    assert snapshot(database_url) == before
    # The connection is clean afterwards: the next import works normally.
    report = _import(database_url, tmp_path / "new.csv", sync=True)
    assert _counts(report) == (4000, 0, 300, 0, 0)


def test_sync_keeps_members_whose_row_was_rejected(database_url: str, tmp_path: Path) -> None:
    _import(database_url, FIXTURES / "utf8_comma.csv")
    damaged = tmp_path / "damaged.csv"
    damaged.write_text(
        "email,name\n"
        'jonas.petraitis@kaunas.example,"Jonas\nPetraitis"\n'
        "ruta@druskininkai.example,Rūta\n",
        encoding="utf-8",
    )
    report = _import(database_url, damaged, sync=True)
    assert (report.removed, report.rejected_count, report.updated) == (1, 1, 1)
    assert set(_members(database_url)) == {
        "jonas.petraitis@kaunas.example",
        "ruta@druskininkai.example",
    }
    assert _people(database_url)["jonas.petraitis@kaunas.example"].name == "Jonas Petraitis"


def test_sync_with_no_importable_row_is_refused(database_url: str, tmp_path: Path) -> None:
    from newsletter.errors import InputError

    _import(database_url, FIXTURES / "utf8_comma.csv")
    before = snapshot(database_url)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("email;name\nne adresas;Jonas\n", encoding="utf-8")
    with pytest.raises(InputError, match="refusing --sync: no row could be imported"):
        _import(database_url, wrong, sync=True)
    assert snapshot(database_url) == before
    assert _counts(_import(database_url, wrong)) == (0, 0, 0, 0, 1)


def test_a_write_by_another_connection_during_the_import_does_not_break_it(
    database_url: str, tmp_path: Path
) -> None:
    """On SQLite the import touches the real tables first with a write, so a commit by
    another connection while the file is read cannot invalidate its snapshot."""
    from newsletter.audience.subscribers import email_hmac
    from newsletter.models import Suppression

    path = write_csv(tmp_path / "list.csv", 10)

    def write_meanwhile(stage: str, done: int, total: int) -> None:
        if stage == "reading":
            with db.transaction(database_url) as other:
                other.add(
                    Suppression(
                        email_hmac=email_hmac(KEY, "asmuo3@savivaldybe.example"), reason="complaint"
                    )
                )

    report = _import(database_url, path, progress=write_meanwhile)
    assert (report.added, report.suppressed) == (9, 1)


def test_a_committed_import_is_recorded_and_a_dry_run_is_not(database_url: str) -> None:
    from newsletter.audience.lists import last_imports
    from newsletter.models import ListImport

    path = FIXTURES / "utf8_comma.csv"
    _import(database_url, path, dry_run=True, by="redaktore@example.lt")
    with db.transaction(database_url) as session:
        assert session.scalars(select(ListImport)).all() == []
    first = _import(database_url, path, by="redaktore@example.lt")
    _import(database_url, path, by="command line")
    with db.transaction(database_url) as session:
        latest = last_imports(session)["savivaldybes"]
        assert session.scalar(select(func.count()).select_from(ListImport)) == 2
    assert (latest.by, latest.file_name, latest.sha256) == ("command line", path.name, first.sha256)
    assert latest.counts == {**first.counts(), "added": 0, "unchanged": first.added}
