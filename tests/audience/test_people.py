"""Finding a person (folded search, kept up to date by every write) and an editor's actions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter import db
from newsletter.audience import people
from newsletter.audience.lists import import_file
from newsletter.audience.subscribers import (
    email_hmac,
    erase_subscriber,
    export_subscriber,
    find_subscriber,
    unsubscribe,
)
from newsletter.models import MailingList, Subscriber, Suppression, fold

KEY = b"test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).parent / "fixtures"
ONA = "ona.zemaitiene@siauliai.example"
JONAS = "jonas.petraitis@kaunas.example"
EDITOR = "redaktore@bibliotekos-pazangai.example"


def emails(url: str, query: str, page: int = 1, per_page: int = 25) -> list[str]:
    with db.transaction(url) as session:
        return [p.email for p in people.search(session, query, page, per_page).people]


def test_fold_drops_case_and_every_lithuanian_diacritic() -> None:
    assert fold("ĄČĘĖĮŠŲŪŽ ąčęėįšųūž") == "aceeisuuz aceeisuuz"
    assert fold("Šiaulių m.") == "siauliu m."


def test_search_is_case_and_diacritics_insensitive_and_follows_every_write(
    database_url: str, tmp_path: Path
) -> None:
    import_file(database_url, KEY, FIXTURES / "utf8_comma.csv", "savivaldybes")
    assert emails(database_url, "siauliu") == [ONA]
    assert emails(database_url, "ŠIAULIŲ M") == [ONA]
    assert emails(database_url, "zemaitiene") == [ONA]
    assert emails(database_url, "kauno rajono") == [JONAS]  # the institution
    assert emails(database_url, "@kaunas.") == [JONAS]
    assert emails(database_url, "100%") == []  # LIKE wildcards are plain characters
    assert len(emails(database_url, "")) == 3
    # An import that renames someone, an edit and an erasure keep the column in step.
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(f"email,name\n{JONAS},Jonas Būdvytis\n", encoding="utf-8")
    import_file(database_url, KEY, renamed, "savivaldybes")
    assert emails(database_url, "budvytis") == [JONAS]
    assert emails(database_url, "jonas petraitis") == []  # the old name
    with db.transaction(database_url) as session:
        ona = find_subscriber(session, ONA)
        values = {"name": "Ona Kairienė", "municipality": "Joniškio r."}
        people.edit_profile(session, ona.id, values, "pakeitė pavardę", EDITOR)
    assert emails(database_url, "kairiene") == [ONA]
    assert emails(database_url, "siauliu") == []  # the municipality changed too
    with db.transaction(database_url) as session:
        erase_subscriber(session, KEY, ONA)
    assert emails(database_url, "kairiene") == []


def test_search_pages(database_url: str) -> None:
    import_file(database_url, KEY, FIXTURES / "utf8_comma.csv", "savivaldybes")
    with db.transaction(database_url) as session:
        first = people.search(session, ".example", 1, per_page=2)
        second = people.search(session, ".example", 2, per_page=2)
    assert ([p.email for p in first.people], first.has_more) == ([JONAS, ONA], True)
    assert ([p.email for p in second.people], second.has_more) == (
        ["ruta@druskininkai.example"],
        False,
    )


def test_edit_checks_each_field_as_an_import_does(database_url: str) -> None:
    import_file(database_url, KEY, FIXTURES / "utf8_comma.csv", "savivaldybes")
    with db.transaction(database_url) as session:
        ona = find_subscriber(session, ONA)
        with pytest.raises(people.FormError) as refused:
            bad = {"name": "=?UTF-8?Q?=0A?=Bcc: x@y.example", "role": "r" * 101}
            people.edit_profile(session, ona.id, {**bad, "county": "a\nb"}, "", EDITOR)
    assert refused.value.problems == {
        "name": "header",
        "role": "too_long",
        "county": "control",
        "reason": "required",
    }
    with db.transaction(database_url) as session:
        ona = find_subscriber(session, ONA)
        assert ona.name == "Ona Žemaitienė"
        same = {"name": ona.name, "municipality": ona.municipality, "role": ona.role}
        same["institution"] = ona.attributes["institution"]
        assert people.edit_profile(session, ona.id, same, "nieko", EDITOR) == []
        assert people.edit_profile(session, ona.id, {**same, "county": "Šiaulių"}, "r", EDITOR)
        events = export_subscriber(session, KEY, ONA)["consent_events"]
    assert events[-1]["detail"] == {
        "action": "edited",
        "fields": ["county"],
        "by": EDITOR,
        "reason": "r",
    }


def test_resubscribe_needs_a_consent_source_and_lifts_an_unsubscribe(database_url: str) -> None:
    import_file(database_url, KEY, FIXTURES / "utf8_comma.csv", "savivaldybes")
    with db.transaction(database_url) as session:
        ona = find_subscriber(session, ONA)
        towns = session.scalar(select(MailingList.id))
        unsubscribe(session, KEY, ona.id, None, people.SOURCE, detail={"reason": "skambino"})
        with pytest.raises(people.FormError) as refused:
            people.resubscribe(session, KEY, ona.id, towns, "  ", EDITOR)
        assert refused.value.problems == {"consent_source": "required"}
        consent = "2026-12-01 laiškas: prašo grąžinti"
        assert people.resubscribe(session, KEY, ona.id, towns, consent, EDITOR)
        assert not people.resubscribe(session, KEY, ona.id, towns, consent, EDITOR)
        record = export_subscriber(session, KEY, ONA)
    assert record["profile"]["status"] == "active" and record["suppression"] is None
    assert [(e["kind"], e["source"]) for e in record["consent_events"]][-2:] == [
        ("unsubscribe", "editor"),
        ("subscribe", consent),
    ]
    assert record["consent_events"][-2]["detail"]["reason"] == "skambino"


def test_a_bounced_address_is_reactivated_with_a_reason_before_it_can_return(
    database_url: str,
) -> None:
    import_file(database_url, KEY, FIXTURES / "utf8_comma.csv", "savivaldybes")
    with db.transaction(database_url) as session:
        ona = find_subscriber(session, ONA)
        towns = session.scalar(select(MailingList.id))
        ona.status, ona.bounce_count = "bounced", 3
        session.add(Suppression(email_hmac=email_hmac(KEY, ONA), reason="bounced"))
        session.flush()
        with pytest.raises(people.FormError, match="consent_source: bounced"):
            people.resubscribe(session, KEY, ona.id, towns, "telefonu", EDITOR)
        with pytest.raises(people.FormError, match="reason: required"):
            people.reactivate(session, KEY, ona.id, "", EDITOR)
        assert people.reactivate(session, KEY, ona.id, "dėžutė vėl veikia", EDITOR)
        assert not people.reactivate(session, KEY, ona.id, "dar kartą", EDITOR)
        record = export_subscriber(session, KEY, ONA)
    assert (record["profile"]["status"], record["profile"]["bounce_count"]) == ("active", 0)
    assert record["suppression"] is None
    assert record["consent_events"][-1]["detail"]["reason"] == "dėžutė vėl veikia"


def test_adding_by_hand_needs_consent_and_never_brings_back_an_erased_address(
    database_url: str,
) -> None:
    import_file(database_url, KEY, FIXTURES / "utf8_comma.csv", "savivaldybes")
    with db.transaction(database_url) as session:
        towns = session.scalar(select(MailingList.id))
        erase_subscriber(session, KEY, ONA)
    with db.transaction(database_url) as session:
        with pytest.raises(people.FormError) as refused:
            people.add_person(session, KEY, "ne adresas", {}, [], "", EDITOR)
        assert refused.value.problems == {
            "email": "invalid",
            "consent_source": "required",
            "lists": "required",
        }
        with pytest.raises(people.FormError) as erased:
            people.add_person(session, KEY, ONA.upper(), {}, [towns], "telefonu", EDITOR)
        assert erased.value.problems == {"email": "suppressed"}
        with pytest.raises(people.FormError) as held:
            people.add_person(session, KEY, JONAS, {}, [towns], "telefonu", EDITOR)
        assert held.value.problems == {"email": "exists"}
        assert held.value.existing_id == find_subscriber(session, JONAS).id
        values = {"name": "Rasa Šimkutė", "institution": "Joniškio biblioteka"}
        added = people.add_person(
            session, KEY, "Rasa@Joniskis.example", values, [towns], "renginio anketa", EDITOR
        )
    assert emails(database_url, "simkute") == ["rasa@joniskis.example"]
    with db.transaction(database_url) as session:
        assert session.get(Subscriber, added).attributes == {"institution": "Joniškio biblioteka"}
        events = export_subscriber(session, KEY, "rasa@joniskis.example")["consent_events"]
    assert [(e["kind"], e["source"], e["list"]) for e in events] == [
        ("subscribe", "renginio anketa", "savivaldybes")
    ]
