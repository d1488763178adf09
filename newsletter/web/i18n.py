"""The interface's languages: Lithuanian by default, English on request.

The language is chosen, in order, by ``?lang=lt|en`` (remembered in a ``lang`` cookie), the
``lang`` cookie, then the first of ``lt``/``en`` in the browser's ``Accept-Language``.
The catalogue is a plain dictionary: a few dozen short strings do not need gettext.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import HTTPConnection

LANGUAGES = ("lt", "en")
DEFAULT = "lt"
COOKIE = "lang"

CATALOGUE: dict[str, tuple[str, str]] = {
    # key: (Lithuanian, English)
    "site.title": ("Naujienlaiškis", "Newsletter"),
    "lang.switch": ("English", "Lietuviškai"),
    "nav.issues": ("Numeriai", "Issues"),
    "nav.campaigns": ("Siuntimai", "Campaigns"),
    "nav.archive": ("Archyvas", "Archive"),
    "nav.subscribe": ("Prenumeruoti", "Subscribe"),
    "nav.logout": ("Atsijungti", "Log out"),
    "login.title": ("Redaktoriaus prisijungimas", "Editor login"),
    "login.email": ("El. paštas", "Email"),
    "login.password": ("Slaptažodis", "Password"),
    "login.submit": ("Prisijungti", "Log in"),
    "login.failed": ("Neteisingas el. paštas arba slaptažodis.", "Wrong email or password."),
    "login.throttled": (
        "Per daug nesėkmingų bandymų iš šio kompiuterio ar tinklo. Pabandykite po 15 minučių "
        "arba paprašykite administratoriaus atrakinti paskyrą.",
        "Too many failed attempts from this computer or network. Try again in 15 minutes, "
        "or ask an administrator to unlock the account.",
    ),
    "login.slowed": (
        "Šiuo adresu neseniai daug kartų nesėkmingai bandyta prisijungti, todėl bandymai "
        "sulėtinti. Pabandykite dar kartą po {seconds} s.",
        "There were many failed logins for this address lately, so logins are slowed "
        "down. Try again in {seconds} s.",
    ),
    "csrf.title": ("Užklausa atmesta", "Request refused"),
    "csrf.body": (
        "Formos saugos žetonas trūksta arba neteisingas. Atnaujinkite puslapį ir bandykite dar kartą.",
        "The form's security token is missing or wrong. Reload the page and try again.",
    ),
    "notfound.title": ("Puslapis nerastas", "Page not found"),
    "dbdown.title": ("Duomenų bazė laikinai nepasiekiama", "The database is unavailable"),
    "dbdown.body": (
        "Nieko neprarasta. Pabandykite dar kartą po minutės; jei nepavyks, praneškite administratoriui.",
        "Nothing was lost. Try again in a minute; if it still fails, tell the administrator.",
    ),
    "issues.title": ("Numeriai", "Issues"),
    "issues.subject": ("Tema", "Subject"),
    "issues.date": ("Data", "Date"),
    "issues.file": ("Failas", "File"),
    "issues.lint": ("Patikra", "Checks"),
    "issues.ok": ("tvarkinga", "clean"),
    "issues.findings": ("pastabų", "findings"),
    "issues.error": ("klaida", "error"),
    "issues.none": ("Aplanke nėra numerių.", "There are no issues in the folder."),
    "preview.desktop": ("Kompiuteris", "Desktop"),
    "preview.phone": ("Telefonas", "Phone"),
    "preview.text": ("Tekstas", "Plain text"),
    "preview.source": ("HTML kodas", "HTML source"),
    "preview.lint": ("Patikros pastabos", "Lint findings"),
    "preview.lint_none": ("Pastabų nėra.", "No findings."),
    "preview.line": ("eilutė", "line"),
    "preview.size": ("Dydis", "Size"),
    "preview.size_note": (
        "Gmail apkarpo laiškus, kurių HTML didesnis nei 102 KB.",
        "Gmail clips messages whose HTML is larger than 102 KB.",
    ),
    "preview.as": ("Peržiūrėti kaip", "Preview as"),
    "preview.sample": ("Pavyzdinis gavėjas", "Sample recipient"),
    "preview.error": ("Numerio nepavyko sukompiliuoti", "The issue could not be compiled"),
    "preview.kept": (
        "Rodoma paskutinė pavykusi versija.",
        "The last good version is shown.",
    ),
    "preview.live": ("Tiesioginis atnaujinimas", "Live reload"),
    "preview.test_send": ("Bandomasis laiškas", "Test send"),
    "preview.start": ("Pradėti siuntimą", "Start a campaign"),
    # Writing issues in the browser (newsletter/web/writing.py)
    "write.new": ("Naujas numeris", "New issue"),
    "write.edit": ("Redaguoti", "Edit"),
    "write.subject": ("Tema", "Subject"),
    "write.subject_hint": (
        "{low}–{high} simbolių: ilgesnę pašto programos nukerpa.",
        "{low}–{high} characters: inboxes cut a longer one.",
    ),
    "write.preheader": (
        "Įžanginis tekstas (rodomas po tema)",
        "Preheader (shown after the subject)",
    ),
    "write.date": ("Data", "Date"),
    "write.lang": ("Kalba", "Language"),
    "write.sponsors": ("Rėmėjų grupės", "Sponsor tiers"),
    "write.no_tiers": ("Rėmėjų sąraše grupių nėra.", "The sponsor registry has no tiers."),
    "write.body": ("Tekstas (Markdown)", "Text (Markdown)"),
    "write.create": ("Sukurti numerį", "Create the issue"),
    "write.save": ("Išsaugoti", "Save"),
    "write.saved": ("Išsaugota.", "Saved."),
    "write.draft": (
        "Išsaugota kaip juodraštis: numerio nepavyko sukompiliuoti, todėl jo negalima siųsti, "
        "kol klaida neištaisyta.",
        "Saved as a draft: the issue does not compile, so it cannot be sent until the error "
        "is fixed.",
    ),
    "write.compile_error": ("Klaida", "Error"),
    "write.conflict": (
        "Numeris pasikeitė, kol jį redagavote",
        "The issue changed while you edited it",
    ),
    "write.conflict_body": (
        "Kažkas kitas (kitas redaktorius arba pakeitimas faile) jį išsaugojo. Niekas neperrašyta. "
        "Pasirinkite versiją arba sujunkite jas dešinėje ir išsaugokite.",
        "Someone else (another editor, or a change to the file) saved it. Nothing was "
        "overwritten. Take one version, or merge them on the right, and save.",
    ),
    "write.theirs": ("Dabartinė versija", "The current version"),
    "write.yours": ("Jūsų versija", "Your version"),
    "write.take_theirs": ("Imti dabartinę versiją", "Take the current version"),
    "write.save_yours": ("Išsaugoti savo versiją", "Save your version"),
    "write.subject_length": (
        "Tema turi būti {low}–{high} simbolių (dabar {n}).",
        "The subject must be {low}–{high} characters (now {n}).",
    ),
    "write.control": ("Pašalinkite valdymo simbolius.", "Remove the control characters."),
    "write.date_error": ("Įveskite datą, pvz., 2026-12-01.", "Enter a date such as 2026-12-01."),
    "write.lang_error": ("Pasirinkite lt arba en.", "Choose lt or en."),
    "write.sponsors_error": ("Nežinoma rėmėjų grupė.", "Unknown sponsor tier."),
    "write.body_error": ("Parašykite numerio tekstą.", "Write the text of the issue."),
    "write.too_long": (
        "Tekstas per ilgas: daugiausia {limit} KB.",
        "The text is too long: at most {limit} KB.",
    ),
    "history.title": ("Versijų istorija", "History"),
    "history.older": ("Senesnė", "Older"),
    "history.newer": ("Naujesnė", "Newer"),
    "history.when": ("Kada", "When"),
    "history.who": ("Kas", "Who"),
    "history.on_disk": ("pakeista faile", "changed on disk"),
    "history.current": ("dabartinė", "current"),
    "history.restore": ("Atkurti", "Restore"),
    "history.compare": ("Palyginti", "Compare"),
    "history.diff": ("Skirtumai", "Differences"),
    "history.same": ("Versijos vienodos.", "The versions are the same."),
    "history.none": (
        "Naršyklėje šis numeris dar nebuvo išsaugotas.",
        "This issue has not been saved in the browser yet.",
    ),
    "test.title": ("Bandomasis laiškas", "Test send"),
    "test.address": ("Kam siųsti", "Send to"),
    "test.submit": ("Siųsti bandomąjį laišką", "Send a test copy"),
    "test.result": ("Bandomasis laiškas", "Test copy to"),
    "campaign.new": ("Naujas siuntimas", "New campaign"),
    "campaign.lists": ("Sąrašai", "Lists"),
    "campaign.no_lists": ("Sąrašų dar nėra.", "There are no lists yet."),
    "campaign.segment": (
        "Atranka (viena eilutė: raktas=reikšmė)",
        "Segment (one key=value per line)",
    ),
    "campaign.send_at": ("Siųsti vėliau (tuščia: dabar)", "Send later (empty: now)"),
    "campaign.check": ("Tęsti", "Continue"),
    "campaign.confirm": ("Patvirtinkite siuntimą", "Confirm the campaign"),
    "campaign.when": ("Kada", "When"),
    "campaign.now": ("dabar", "now"),
    "campaign.recipients": ("Gavėjų", "Recipients"),
    "campaign.start": ("Pradėti siuntimą", "Start sending"),
    "campaign.back": ("Keisti", "Change"),
    "campaign.overlap": (
        "{already} iš {total} gavėjų šį numerį jau gavo arba netrukus gaus",
        "{already} of these {total} recipients already got this issue or are about to",
    ),
    "campaign.earlier": ("Siuntimas", "Campaign"),
    "campaign.again_note": (
        "Jei siųsite visiems dar kartą, jie gaus antrą šio numerio kopiją.",
        "If you send to everyone again, they will get a second copy of this issue.",
    ),
    "campaign.only_new": ("Siųsti tik naujiems", "Send only to the new ones"),
    "campaign.again": ("Siųsti visiems dar kartą", "Send to everyone again"),
    "campaign.overlap_changed": (
        "Kol tvirtinote, kitas siuntimas šį numerį jau išsiuntė kai kuriems iš šių gavėjų. "
        "Pasirinkite dar kartą.",
        "While you were confirming, another campaign sent this issue to some of these "
        "recipients. Choose again.",
    ),
    "campaign.status": ("Būsena", "Status"),
    "campaign.created": ("Sukurta", "Created"),
    "campaign.test": ("bandomasis", "test"),
    "campaign.none": ("Siuntimų dar nebuvo.", "No campaigns yet."),
    "campaign.pause": ("Pristabdyti", "Pause"),
    "campaign.resume": ("Tęsti", "Resume"),
    "campaign.cancel": ("Atšaukti", "Cancel"),
    "campaign.cancel_confirm": (
        "Atšaukti siuntimą? Dar neišsiųsti laiškai nebus išsiųsti.",
        "Cancel the campaign? Messages not yet sent will not be sent.",
    ),
    "campaign.report": ("Ataskaita (CSV)", "Report (CSV)"),
    "status.draft": ("juodraštis", "draft"),
    "status.scheduled": ("suplanuotas", "scheduled"),
    "status.running": ("siunčiama", "sending"),
    "status.paused": ("pristabdytas", "paused"),
    "status.cancelled": ("atšauktas", "cancelled"),
    "status.done": ("baigtas", "done"),
    "count.queued": ("Eilėje", "Queued"),
    "count.sending": ("Siunčiama", "Sending"),
    "count.sent": ("Išsiųsta", "Sent"),
    "count.failed": ("Nepavyko", "Failed"),
    "count.uncertain": ("Neaišku", "Uncertain"),
    "count.suppressed": ("Praleista", "Suppressed"),
    "count.cancelled": ("Atšaukta", "Cancelled"),
    "count.bounced_later": ("Grįžo vėliau", "Bounced later"),
    "count.rate": ("Greitis, laiškų/s", "Rate, messages/s"),
    "unsub.title": ("Atsisakyti prenumeratos", "Unsubscribe"),
    "unsub.question": (
        "Ar tikrai nebenorite gauti šių laiškų?",
        "Do you really want to stop receiving these emails?",
    ),
    "unsub.button": ("Atsisakyti prenumeratos", "Unsubscribe"),
    "unsub.done": (
        "Prenumeratos atsisakyta. Daugiau šių laiškų nebegausite.",
        "You are unsubscribed. You will not receive these emails any more.",
    ),
    "unsub.preferences": ("Keisti nustatymus", "Change preferences"),
    "token.invalid_title": ("Nuoroda negalioja", "This link is not valid"),
    "token.invalid": (
        "Ši nuoroda negalioja arba buvo pakeista. Naudokite nuorodą iš naujausio laiško.",
        "This link is not valid or has been altered. Use the link from a recent email.",
    ),
    "prefs.title": ("Prenumeratos nustatymai", "Subscription preferences"),
    "prefs.lists": ("Gauti šiuos sąrašus:", "Receive these lists:"),
    "prefs.save": ("Išsaugoti", "Save"),
    "prefs.all": ("Atsisakyti visų", "Leave all lists"),
    "prefs.saved": ("Nustatymai išsaugoti.", "Preferences saved."),
    "prefs.none": ("Jūs negaunate jokių sąrašų.", "You are not on any list."),
    "archive.title": ("Archyvas", "Archive"),
    "archive.empty": ("Išsiųstų numerių dar nėra.", "No issues have been sent yet."),
    "view.title": ("Naujienlaiškis naršyklėje", "Newsletter in the browser"),
    "subscribe.title": ("Prenumeruoti naujienlaiškį", "Subscribe to the newsletter"),
    "subscribe.email": ("El. paštas", "Email"),
    "subscribe.name": ("Vardas ir pavardė", "Name"),
    "subscribe.lists": ("Sąrašai", "Lists"),
    "subscribe.consent": (
        "Sutinku gauti naujienlaiškį. Prenumeratos galiu atsisakyti bet kada.",
        "I agree to receive the newsletter. I can unsubscribe at any time.",
    ),
    "subscribe.submit": ("Prenumeruoti", "Subscribe"),
    "subscribe.sent": (
        "Išsiuntėme laišką su patvirtinimo nuoroda. Prenumerata įsigalios, kai ją paspausite.",
        "We sent an email with a confirmation link. The subscription starts when you follow it.",
    ),
    "subscribe.invalid": ("Patikrinkite el. pašto adresą.", "Check the email address."),
    "subscribe.no_lists": ("Pasirinkite bent vieną sąrašą.", "Choose at least one list."),
    "subscribe.bad_name": (
        "Vardas turi būti vienos eilutės, be valdymo ženklų, iki 200 simbolių.",
        "The name must be one line without control characters, at most 200 characters.",
    ),
    "subscribe.no_consent": ("Reikia jūsų sutikimo.", "Your consent is needed."),
    "subscribe.throttled": (
        "Per daug prašymų iš šio tinklo. Pabandykite po 10 minučių.",
        "Too many requests from this network. Try again in 10 minutes.",
    ),
    "confirm.button": ("Patvirtinti prenumeratą", "Confirm the subscription"),
    "confirm.title": ("Prenumerata patvirtinta", "Subscription confirmed"),
    "confirm.done": (
        "Ačiū! Jūsų prenumerata patvirtinta.",
        "Thank you! Your subscription is confirmed.",
    ),
    "confirm.mail_subject": ("Patvirtinkite prenumeratą", "Confirm your subscription"),
    "confirm.mail_body": (
        "Sveiki,\n\nnorėdami gauti naujienlaiškį „{lists}“, patvirtinkite prenumeratą:\n\n{url}\n\n"
        "Jei prenumeratos neprašėte, šį laišką tiesiog ištrinkite.\n",
        "Hello,\n\nto receive the newsletter “{lists}”, confirm your subscription:\n\n{url}\n\n"
        "If you did not ask for it, just delete this email.\n",
    ),
    # Lists and imports (web/audience)
    "nav.lists": ("Sąrašai", "Lists"),
    "lists.title": ("Sąrašai", "Lists"),
    "lists.list": ("Sąrašas", "List"),
    "lists.active": ("Gauna", "Active"),
    "lists.unsubscribed": ("Atsisakė", "Unsubscribed"),
    "lists.bounced": ("Grįžta laiškai", "Bounced"),
    "lists.pending": ("Nepatvirtino", "Pending"),
    "lists.last_import": ("Paskutinis importas", "Last import"),
    "lists.never": ("dar neimportuota", "never imported"),
    "lists.none": (
        "Sąrašų dar nėra: įkelkite pirmąjį failą.",
        "No lists yet: upload the first file.",
    ),
    "lists.imported": ("Importuota į sąrašą", "Imported into the list"),
    "lists.gone": (
        "Šis įkėlimas jau importuotas arba nebegalioja (laikomas 30 min.). Įkelkite failą dar kartą.",
        "This upload was already imported or has expired (it is kept for 30 min). Upload the file again.",
    ),
    "upload.title": ("Įkelti sąrašo failą", "Upload a list file"),
    "upload.file": ("CSV arba XLSX failas", "CSV or XLSX file"),
    "upload.help": (
        "Iki {mb} MB. Stulpeliai: el. paštas (būtinas), vardas, savivaldybė, pareigos, "
        "institucija, skyrius, apskritis, kalba. Pirmiausia parodysime, kas pasikeistų.",
        "Up to {mb} MB. Columns: email (required), name, municipality, role, institution, "
        "department, county, language. First you see what would change.",
    ),
    "upload.into": ("Į sąrašą", "Into the list"),
    "upload.new_list": ("— naujas sąrašas —", "— a new list —"),
    "upload.new_slug": (
        "Naujo sąrašo trumpas pavadinimas (a-z, 0-9, -)",
        "New list's short name (a-z, 0-9, -)",
    ),
    "upload.new_name": ("Naujo sąrašo pavadinimas", "New list's name"),
    "upload.sync": (
        "Pašalinti narius, kurių faile nėra",
        "Remove members missing from the file",
    ),
    "upload.check": ("Peržiūrėti pakeitimus", "Check the changes"),
    "dryrun.title": ("Ką importas pakeistų", "What the import would change"),
    "dryrun.new_list": ("naujas sąrašas", "new list"),
    "dryrun.rows": ("eilučių", "rows"),
    "dryrun.suppressed_note": (
        "Atsisakiusieji, grąžinti ir ištrinti adresai niekada nepridedami iš naujo.",
        "Addresses that unsubscribed, bounced or were erased are never added back.",
    ),
    "dryrun.ignored": (
        "Neatpažinti stulpeliai (neimportuojami):",
        "Unknown columns (not imported):",
    ),
    "dryrun.stopped": (
        "Skaitymas sustojo {line} eilutėje po 1000 tuščių eilučių iš eilės.",
        "Reading stopped at line {line} after 1,000 empty rows in a row.",
    ),
    "dryrun.rejected": ("Atmestos eilutės", "Rejected rows"),
    "dryrun.leaving": ("Bus pašalinti iš sąrašo", "Would leave the list"),
    "dryrun.nobody_leaves": ("Niekas nebus pašalintas.", "Nobody would leave."),
    "dryrun.confirm": ("Importuoti", "Import"),
    "dryrun.cancel": ("Atšaukti", "Cancel"),
    "dryrun.changed": (
        "Kol tvirtinote, sąrašas pasikeitė, todėl niekas neimportuota. Štai ką importas pakeistų dabar.",
        "The list changed while you were confirming, so nothing was imported. This is what the "
        "import would change now.",
    ),
    "report.added": ("Pridėta", "Added"),
    "report.updated": ("Atnaujinta", "Updated"),
    "report.unchanged": ("Nepakito", "Unchanged"),
    "report.suppressed": ("Neleidžiama pridėti", "Suppressed"),
    "report.duplicates": ("Pasikartojančios", "Duplicates"),
    "report.rejected": ("Atmesta", "Rejected"),
    "report.removed": ("Pašalinta", "Removed"),
    "footer.text": (
        "Projektas „Bibliotekos pažangai“",
        "The “Bibliotekos pažangai” programme",
    ),
}


def choose_language(connection: HTTPConnection) -> str:
    """Return ``lt`` or ``en`` for this request (query, then cookie, then Accept-Language)."""
    asked = connection.query_params.get("lang", "")
    if asked in LANGUAGES:
        return asked
    remembered = connection.cookies.get(COOKIE, "")
    if remembered in LANGUAGES:
        return remembered
    return from_accept_language(connection.headers.get("accept-language", ""))


def from_accept_language(header: str) -> str:
    """Return the supported language the browser prefers most, or the default."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES and quality > 0:
            ranked.append((-quality, position, base))
    return min(ranked)[2] if ranked else DEFAULT


def translate(key: str, lang: str) -> str:
    """Return the text for ``key`` in ``lang``; the key itself when it is missing."""
    texts = CATALOGUE.get(key)
    if texts is None:
        return key
    return texts[LANGUAGES.index(lang)] if lang in LANGUAGES else texts[0]


def translator(lang: str) -> Callable[[str], str]:
    """Return a one-argument ``t(key)`` bound to ``lang``, for the templates."""
    return lambda key: translate(key, lang)
