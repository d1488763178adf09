"""Messages by code: every code the audience or dispatch raises has a Lithuanian and an English text.

The registries are ``newsletter.audience.messages.MESSAGES`` and
``newsletter.dispatch.messages.MESSAGES`` (the English of the command line); the pages' texts are ``error.<code>`` in ``newsletter.web.i18n.CATALOGUE``. The
source is read too, so that a code used but never registered, or a page's own code
without a text, fails here rather than on a page.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from newsletter.audience import messages
from newsletter.audience.listfiles import open_list_file
from newsletter.audience.lists import check_slug
from newsletter.audience.people import FormError
from newsletter.dispatch import approval
from newsletter.dispatch import messages as dispatch_messages
from newsletter.errors import InputError, Message
from newsletter.models import CampaignApproval
from newsletter.web import i18n

PACKAGE = Path(__file__).resolve().parents[2] / "newsletter"
LITHUANIAN = set("ąčęėįšųūžĄČĘĖĮŠŲŪŽ")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def source(folder: str) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((PACKAGE / folder).glob("*.py")))


@pytest.mark.parametrize("code", sorted(messages.MESSAGES))
def test_every_registered_code_has_both_texts_with_its_parameters(code: str) -> None:
    texts = i18n.CATALOGUE.get(f"error.{code}")
    assert texts is not None, f"error.{code} is not in the catalogue"
    lithuanian, english = texts
    assert lithuanian.strip() and english.strip()
    assert lithuanian != english, "the Lithuanian text is the English one"
    given = placeholders(messages.MESSAGES[code])
    assert placeholders(lithuanian) <= given, lithuanian
    assert placeholders(english) <= given, english


def test_every_code_the_audience_raises_is_registered_and_every_registered_one_is_used() -> None:
    used = set(re.findall(r'\bmsg\(\s*"([a-z0-9_.]+)"', source("audience")))
    assert used, "no msg(...) found: the scan is broken"
    assert used - set(messages.MESSAGES) == set()
    assert set(messages.MESSAGES) - used == set(), "registered but never raised"


@pytest.mark.parametrize("code", sorted(dispatch_messages.MESSAGES))
def test_every_code_of_dispatch_has_both_texts_with_its_parameters(code: str) -> None:
    assert code not in messages.MESSAGES, "a code is registered twice"
    lithuanian, english = i18n.CATALOGUE[f"error.{code}"]
    assert lithuanian.strip() and english.strip() and lithuanian != english
    given = placeholders(dispatch_messages.MESSAGES[code])
    assert placeholders(lithuanian) <= given, lithuanian
    assert placeholders(english) <= given, english


def test_every_code_dispatch_raises_is_registered_and_every_registered_one_is_used() -> None:
    used = set(re.findall(r'\bmsg\(\s*"([a-z0-9_.]+)"', source("dispatch")))
    assert used, "no msg(...) found: the scan is broken"
    # A reason kept as English on a record is raised (and shown) through ``recognise``.
    basis = approval.Basis("content", "file edited since", "lists", 3)
    problem = approval.Standing(1, approval.AWAITING, "a@example.org", 1, basis, ()).problem
    recognised = dispatch_messages.recognise(problem)
    assert isinstance(recognised, Message) and str(recognised) == problem
    used.add(recognised.code)
    # Why an approval no longer holds, all three reasons at once, each read back.
    given = CampaignApproval(content_hash="old", audience_hash="old lists", recipients=2)
    reasons = approval._void(given, basis)
    assert len(reasons) == 3
    for reason in reasons:
        recognised = dispatch_messages.recognise(reason)
        assert isinstance(recognised, Message) and str(recognised) == reason
        used.add(recognised.code)
    assert recognised.params == {"then": "2", "now": "3"}
    assert i18n.explain(recognised, "lt") == "pasikeitė gavėjų skaičius: tada 2, dabar 3"
    assert used - set(dispatch_messages.MESSAGES) == set()
    assert set(dispatch_messages.MESSAGES) - used == set(), "registered but never raised"
    assert dispatch_messages.recognise("no such message") == "no such message"


def test_a_campaigns_status_is_named_in_the_pages_language() -> None:
    wrong = dispatch_messages.msg(
        "campaign.wrong_status", campaign_id=7, current="done", wanted="running or scheduled"
    )
    assert str(wrong) == "campaign 7 is done; this needs it running or scheduled"  # the CLI's
    assert i18n.explain(wrong, "lt") == (
        "Siuntimas Nr. 7 yra „baigtas“, todėl šio veiksmo atlikti negalima."
    )
    assert i18n.explain(wrong, "en") == "Campaign 7 is done; this needs it running or scheduled."


def test_the_pages_own_codes_have_both_texts() -> None:
    pages = source("web") + source("web/audience")
    used = set(re.findall(r'\bcoded\(\s*"([a-z0-9_.]+)"', pages))
    used |= set(re.findall(r'\bMessage\(\s*"([a-z0-9_.]+)"', pages))
    assert {"upload.too_large", "segment.choose", "export.status"} <= used
    for code in used:
        lithuanian, english = i18n.CATALOGUE[f"error.{code}"]
        assert lithuanian.strip() and english.strip() and lithuanian != english


def test_every_form_error_code_has_both_texts() -> None:
    for code in FormError.CODES:
        lithuanian, english = i18n.CATALOGUE[f"people.error.{code}"]
        assert lithuanian.strip() and english.strip() and lithuanian != english
    with pytest.raises(ValueError, match="unknown form error codes"):
        FormError({"email": "no-such-code"})


def test_a_message_is_explained_in_either_language_and_falls_back_to_its_english() -> None:
    taken = InputError(messages.msg("list.slug_taken", slug="x"))
    assert str(taken) == "slug: a list 'x' exists already"  # the command line's, unchanged
    assert i18n.explain(taken, "lt") == "Trumpas pavadinimas „x“ jau užimtas: toks sąrašas jau yra."
    assert i18n.explain(taken, "en") == "A list “x” exists already."
    formula = messages.msg("file.formula", column="municipality", text="=A1")
    assert i18n.explain(formula, "lt") == "stulpelyje „Savivaldybė“ yra formulė (=A1); " + (
        "pakeiskite ją reikšme"
    )
    nested = messages.msg("file.bad_utf8", detail=messages.msg("file.bad_byte", byte="ff"))
    assert str(nested) == "invalid UTF-8 (byte 0xff) in a file that is otherwise UTF-8"
    assert i18n.explain(nested, "lt").startswith("netinkamas UTF-8 tekstas (baitas 0xff)")
    unknown = Message("no.such.code", "as the command line says it")
    assert i18n.explain(unknown, "lt") == "as the command line says it"
    assert i18n.explain(InputError("plain English"), "lt") == "plain English"


def test_lithuanian_texts_are_written_with_their_letters() -> None:
    """A guard against texts typed without diacritics ("sarasas" for "sąrašas")."""
    codes = [key for key in i18n.CATALOGUE if key.startswith("error.")]
    with_letters = [key for key in codes if LITHUANIAN & set(i18n.CATALOGUE[key][0])]
    assert len(with_letters) >= len(codes) * 3 // 4
    for ascii_spelling in ("sarasas", "sarasa", "eilute ", "pasto", "stulpelis"):
        offenders = [key for key in codes if ascii_spelling in i18n.CATALOGUE[key][0].lower()]
        assert offenders == [], ascii_spelling


def test_the_command_line_english_is_what_it_was(tmp_path: Path) -> None:
    """A sample of the registered English, as the command line and its tests know it."""
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(b"%PDF")
    with pytest.raises(InputError) as refused:
        open_list_file(pdf)
    assert str(refused.value) == f"{pdf}: unknown file type '.pdf'; use .csv or .xlsx"
    assert refused.value.coded is not None and refused.value.coded.code == "file.type"
    with pytest.raises(InputError) as bad:
        check_slug("Ne Tinka")
    assert str(bad.value) == "slug: 'Ne Tinka' must be lower-case letters, digits and '-', up to 64"
