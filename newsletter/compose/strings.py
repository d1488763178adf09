"""The words the email templates use, in Lithuanian and English, and date formatting."""

from __future__ import annotations

import datetime as dt

LANGUAGES = ("lt", "en")

STRINGS: dict[str, dict[str, str]] = {
    "lt": {
        "view_in_browser": "Žiūrėti naršyklėje",
        "view_hint": "Laiškas rodomas netvarkingai?",
        "sponsors_heading": "Dėkojame rėmėjams ir partneriams",
        "recipient": "Gavėjas",
        "why": "Šį laišką gavote, nes adresas {email} įtrauktas į šio naujienlaiškio gavėjų sąrašą.",
        "unsubscribe": "Atsisakyti prenumeratos",
        "preferences": "Keisti nustatymus",
        "address": "Adresas",
        "links": "Nuorodos",
        "tier_main": "Pagrindiniai rėmėjai",
        "tier_campaign": "Konkursų ir akcijų rėmėjai",
        "tier_information": "Informaciniai rėmėjai",
        "tier_public": "Viešojo sektoriaus partneriai",
    },
    "en": {
        "view_in_browser": "View in your browser",
        "view_hint": "Trouble reading this email?",
        "sponsors_heading": "Thank you to our sponsors and partners",
        "recipient": "Recipient",
        "why": "You receive this email because {email} is on this newsletter's mailing list.",
        "unsubscribe": "Unsubscribe",
        "preferences": "Change preferences",
        "address": "Address",
        "links": "Links",
        "tier_main": "Main sponsors",
        "tier_campaign": "Contest and campaign sponsors",
        "tier_information": "Information sponsors",
        "tier_public": "Public-sector partners",
    },
}

# Lithuanian dates name the month in the genitive: "2026 m. gruodžio 1 d."
_LT_MONTHS = (
    "sausio",
    "vasario",
    "kovo",
    "balandžio",
    "gegužės",
    "birželio",
    "liepos",
    "rugpjūčio",
    "rugsėjo",
    "spalio",
    "lapkričio",
    "gruodžio",
)
_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def strings_for(lang: str) -> dict[str, str]:
    """Return the template words of ``lang`` (English for a language without its own)."""
    return STRINGS.get(lang, STRINGS["en"])


def format_date(value: dt.date | None, lang: str) -> str:
    """Return ``value`` written out the way readers of ``lang`` expect; '' for no date."""
    if value is None:
        return ""
    if lang == "lt":
        return f"{value.year} m. {_LT_MONTHS[value.month - 1]} {value.day} d."
    return f"{value.day} {_EN_MONTHS[value.month - 1]} {value.year}"
