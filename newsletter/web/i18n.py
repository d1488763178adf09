"""The interface's languages: Lithuanian by default, English on request.

The language is chosen, in order, by ``?lang=lt|en`` (remembered in a ``lang`` cookie), the
``lang`` cookie, then the first of ``lt``/``en`` in the browser's ``Accept-Language``.
The catalogue is a plain dictionary: a few dozen short strings do not need gettext.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import HTTPConnection

from newsletter.errors import Message, NewsletterError

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
    "nav.menu": ("Meniu", "Menu"),
    "nav.label": ("Redaktorių meniu", "Editors' menu"),
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
    # The Markdown editor: toolbar, live preview, autosave, merging a conflict.
    "editor.toolbar": ("Teksto formatavimas", "Formatting"),
    "editor.heading2": ("Antraštė", "Heading"),
    "editor.heading3": ("Paantraštė", "Subheading"),
    "editor.bold": ("Paryškinti (Ctrl+B)", "Bold (Ctrl+B)"),
    "editor.italic": ("Kursyvas (Ctrl+I)", "Italic (Ctrl+I)"),
    "editor.link": ("Nuoroda (Ctrl+K)", "Link (Ctrl+K)"),
    "editor.image": ("Paveikslėlis", "Image"),
    "editor.bullets": ("Sąrašas su ženkleliais", "Bulleted list"),
    "editor.numbers": ("Numeruotas sąrašas", "Numbered list"),
    "editor.table": ("Lentelė", "Table"),
    "editor.undo": ("Atšaukti (Ctrl+Z)", "Undo (Ctrl+Z)"),
    "editor.redo": ("Grąžinti (Ctrl+Shift+Z)", "Redo (Ctrl+Shift+Z)"),
    "editor.text_label": ("Numerio tekstas (Markdown)", "The issue's text (Markdown)"),
    "editor.link_text": ("nuorodos tekstas", "link text"),
    "editor.image_alt": ("paveikslėlio aprašymas", "image description"),
    "editor.table_head": ("Stulpelis", "Column"),
    "editor.unsaved": (
        "Peržiūra rodo neišsaugotą tekstą.",
        "The preview shows the unsaved text.",
    ),
    "editor.autosaved": ("Juodraštis išsaugotas automatiškai", "Draft autosaved"),
    "editor.autosave_failed": (
        "Juodraščio automatiškai išsaugoti nepavyko; išsaugokite rankiniu būdu.",
        "The draft could not be autosaved; save by hand.",
    ),
    "write.draft_found": (
        "Turite automatiškai išsaugotą neišsaugotų pakeitimų juodraštį ({when} UTC).",
        "You have an autosaved draft with unsaved changes ({when} UTC).",
    ),
    "write.draft_restore": ("Atkurti juodraštį", "Restore the draft"),
    "write.draft_discard": ("Atmesti juodraštį", "Discard the draft"),
    "write.draft_restored": (
        "Juodraštis atkurtas. Jis dar neišsaugotas.",
        "The draft is restored. It is not saved yet.",
    ),
    "write.diff": ("Skirtumai: dabartinė → jūsų", "Differences: current → yours"),
    "write.merged": ("Sujungta versija (ją išsaugosite)", "Merged version (this is saved)"),
    "write.take_mine": ("Imti mano versiją", "Take my version"),
    "write.take_current": ("Imti dabartinę", "Take the current one"),
    "write.save_merged": ("Išsaugoti sujungtą versiją", "Save the merged version"),
    "campaign.revision": (
        "Išsiųsta numerio versija (sha256)",
        "Version of the issue sent (sha256)",
    ),
    "campaign.revision_unknown": (
        "naršyklėje taip neišsaugota, istorijoje jos nėra",
        "not saved so in the browser, so not in the history",
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
    "campaign.segment": ("Atranka", "Segment"),
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
    "lists.by_command_line": ("komandinė eilutė", "command line"),
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
    # People (web/audience/people.py)
    "nav.people": ("Žmonės", "People"),
    "people.title": ("Žmonės", "People"),
    "people.search_label": (
        "Ieškoti pagal adresą, vardą, savivaldybę ar įstaigą",
        "Search by address, name, municipality or institution",
    ),
    "people.search": ("Ieškoti", "Search"),
    "people.search_help": (
        "Raidžių dydis ir lietuviškos raidės nesvarbu: „siauliu“ randa „Šiaulių“.",
        "Letter case and diacritics do not matter: “siauliu” finds “Šiaulių”.",
    ),
    "people.none": ("Nieko nerasta.", "Nobody found."),
    "people.prev": ("← Ankstesni", "← Previous"),
    "people.next": ("Kiti →", "Next →"),
    "people.page": ("Puslapis", "Page"),
    "people.add": ("Pridėti žmogų", "Add a person"),
    "people.status": ("Būsena", "Status"),
    "people.erased": (
        "Asmens duomenys ištrinti. Liko tik užšifruotas adreso atspaudas, kad jam niekada "
        "nebūtų siunčiama.",
        "The person's data was erased. Only a keyed fingerprint of the address remains, so "
        "that it is never mailed.",
    ),
    "people.not_compacted": (
        "Duomenų bazė buvo užimta ir nesuglaudinta: ištrinkite dar kartą, kai niekas nesiunčiama.",
        "The database was busy and could not be compacted: erase again when nothing is sending.",
    ),
    "people.field.email": ("El. paštas", "Email"),
    "people.field.name": ("Vardas, pavardė", "Name"),
    "people.field.municipality": ("Savivaldybė", "Municipality"),
    "people.field.role": ("Pareigos", "Role"),
    "people.field.institution": ("Įstaiga", "Institution"),
    "people.field.department": ("Skyrius", "Department"),
    "people.field.county": ("Apskritis", "County"),
    "people.field.language": ("Kalba (lt, en)", "Language (lt, en)"),
    "people.state.active": ("gauna", "active"),
    "people.state.unsubscribed": ("atsisakė", "unsubscribed"),
    "people.state.bounced": ("laiškai grįžta", "bounced"),
    "people.state.pending": ("nepatvirtino", "pending"),
    "people.state.queued": ("eilėje", "queued"),
    "people.state.sending": ("siunčiamas", "sending"),
    "people.state.sent": ("išsiųstas", "sent"),
    "people.state.failed": ("atmestas", "refused"),
    "people.state.uncertain": ("neaišku, ar pristatytas", "uncertain"),
    "people.state.cancelled": ("atšauktas", "cancelled"),
    "people.state.suppressed": ("nesiųstas", "not sent"),
    "people.kind.import": ("importuota", "imported"),
    "people.kind.subscribe": ("užsiprenumeravo", "subscribed"),
    "people.kind.confirm": ("patvirtino", "confirmed"),
    "people.kind.unsubscribe": ("atsisakė", "unsubscribed"),
    "people.kind.preferences": ("pakeitė nustatymus", "changed preferences"),
    "people.kind.bounce": ("laiškas grįžo", "bounced"),
    "people.kind.admin": ("redaktoriaus veiksmas", "editor's action"),
    "people.profile": ("Duomenys", "Profile"),
    "people.since": ("Nuo", "Since"),
    "people.bounce_count": ("Grįžusių laiškų", "Bounces"),
    "people.suppressed": ("Adresui nesiunčiama:", "The address is suppressed:"),
    "people.memberships": ("Sąrašai", "Lists"),
    "people.no_lists": ("Nėra jokiame sąraše.", "On no list."),
    "people.list": ("Sąrašas", "List"),
    "people.changed": ("Pakeista", "Changed"),
    "people.consent": ("Sutikimų istorija", "Consent history"),
    "people.no_events": ("Įrašų nėra.", "No records."),
    "people.time": ("Laikas", "Time"),
    "people.kind": ("Įvykis", "Event"),
    "people.source": ("Šaltinis", "Source"),
    "people.detail": ("Išsamiau", "Detail"),
    "people.sent": ("Išsiųsti laiškai", "Messages sent"),
    "people.no_sent": ("Laiškų dar nesiųsta.", "No messages yet."),
    "people.campaign": ("Siuntimas", "Campaign"),
    "people.outcome": ("Rezultatas", "Outcome"),
    "people.bounces": ("Grįžę laiškai", "Bounces"),
    "people.no_bounces": ("Laiškai negrįžo.", "No bounces."),
    "people.actions": ("Veiksmai", "Actions"),
    "people.reason": ("Priežastis (bus įrašyta)", "Reason (it is recorded)"),
    "people.unsubscribe_title": ("Išbraukti iš sąrašo", "Unsubscribe"),
    "people.unsubscribe_from": ("Iš sąrašo", "From the list"),
    "people.all_lists": ("— iš visų sąrašų —", "— from every list —"),
    "people.unsubscribe_button": ("Išbraukti", "Unsubscribe"),
    "people.edit_title": ("Taisyti duomenis", "Edit the profile"),
    "people.edit_help": (
        "Adreso keisti negalima: naują adresą pridėkite kaip naują žmogų.",
        "The address cannot be changed: add a new address as a new person.",
    ),
    "people.save": ("Išsaugoti", "Save"),
    "people.resubscribe_title": ("Grąžinti į sąrašą", "Resubscribe"),
    "people.consent_source": ("Sutikimo šaltinis", "Consent source"),
    "people.consent_help": (
        "Kaip žmogus sutiko, pvz.: „2026-12-01 skambutis, prašė grąžinti“. Bus įrašyta.",
        "How the person agreed, e.g. “phone call on 2026-12-01, asked to be added back”. "
        "It is recorded.",
    ),
    "people.resubscribe_button": ("Grąžinti", "Resubscribe"),
    "people.reactivate_title": ("Vėl siųsti grįžusiu adresu", "Reactivate a bounced address"),
    "people.reactivate_help": (
        "Laiškai šiuo adresu grįždavo. Jei pašto dėžutė vėl veikia, nurodykite priežastį.",
        "Mail to this address bounced. If the mailbox works again, give the reason.",
    ),
    "people.reactivate_button": ("Vėl siųsti", "Reactivate"),
    "people.export_title": ("Duomenų išrašas", "Export"),
    "people.export_help": (
        "Viskas, ką saugome apie šį žmogų (JSON), pvz., atsakant į prašymą pagal BDAR.",
        "Everything held about this person (JSON), e.g. to answer a GDPR access request.",
    ),
    "people.export_button": ("Atsisiųsti", "Download"),
    "people.erase_title": ("Ištrinti visus duomenis", "Erase all data"),
    "people.erase_help": (
        "Negrįžtama. Liks tik užšifruotas adreso atspaudas, kad jam niekada nebūtų siunčiama. "
        "Patvirtinkite įrašydami adresą.",
        "This cannot be undone. Only a keyed fingerprint of the address stays, so that it is "
        "never mailed. Type the address to confirm.",
    ),
    "people.confirm_email": ("Žmogaus el. pašto adresas", "The person's email address"),
    "people.erase_button": ("Ištrinti visam laikui", "Erase for good"),
    "people.done.unsubscribed": ("Išbraukta.", "Unsubscribed."),
    "people.done.edited": ("Duomenys išsaugoti.", "The profile was saved."),
    "people.done.resubscribed": ("Grąžinta į sąrašą.", "Resubscribed."),
    "people.done.reactivated": ("Adresas vėl gauna laiškus.", "The address is active again."),
    "people.done.added": ("Žmogus pridėtas.", "The person was added."),
    "people.error.required": ("Būtina užpildyti.", "Required."),
    "people.error.too_long": ("Per ilgas tekstas.", "Too long."),
    "people.error.control": (
        "Turi būti viena eilutė be valdymo simbolių.",
        "Must be one line without control characters.",
    ),
    "people.error.header": (
        "Šios reikšmės negalima įrašyti į laiško antraštę.",
        "This value cannot go into a mail header.",
    ),
    "people.error.invalid": ("Neteisingas el. pašto adresas.", "Not a valid email address."),
    "people.error.suppressed": (
        "Šiam adresui siųsti negalima (atsisakė, laiškai grįžta arba duomenys ištrinti). "
        "Grąžinti gali tik pats žmogus, patvirtinęs kvietimą.",
        "This address may not be mailed (it unsubscribed, bounced or was erased). Only the "
        "person can come back, by confirming an invitation.",
    ),
    "people.error.exists": ("Šis adresas jau yra.", "This address is held already."),
    "people.error.bounced": (
        "Laiškai šiuo adresu grįžta: pirmiausia vėl įjunkite siuntimą.",
        "Mail to this address bounces: reactivate it first.",
    ),
    "people.error.mismatch": (
        "Įrašytas adresas nesutampa su šio žmogaus adresu.",
        "The address typed is not this person's.",
    ),
    "people.error.recently_invited": (
        "Kvietimas šiuo adresu ką tik išsiųstas; bandykite po 10 minučių.",
        "An invitation went to this address moments ago; try again in 10 minutes.",
    ),
    "people.error.not_sent": (
        "Pašto serveris kvietimo nepriėmė; bandykite vėliau.",
        "The mail server did not take the invitation; try again later.",
    ),
    "people.new_title": ("Pridėti žmogų", "Add a person"),
    "people.mode_add": (
        "Pridėti dabar: žmogus sutiko (nurodykite, kaip)",
        "Add now: the person agreed (say how)",
    ),
    "people.mode_invite": (
        "Išsiųsti kvietimą: žmogus pats patvirtins laiške",
        "Send an invitation: the person confirms it by email",
    ),
    "people.invited": (
        "Kvietimas išsiųstas. Žmogus atsiras sąraše, kai patvirtins.",
        "The invitation was sent. The person appears on the list once they confirm.",
    ),
    "people.existing": ("Atverti jo puslapį", "Open their page"),
    "people.add_button": ("Pridėti", "Add"),
    # Segments, list management and export
    "segment.help": (
        "Pasirinkite reikšmes (Ctrl arba ilgai paspaudus – kelias). Gaus tie, kurių kiekvienas "
        "pasirinktas laukas turi vieną iš pasirinktų reikšmių; nieko nepasirinkus – visi.",
        "Choose values (Ctrl or a long press for several). It goes to people whose every chosen "
        "field has one of the chosen values; nothing chosen: everyone.",
    ),
    "segment.field.municipality": ("Savivaldybė", "Municipality"),
    "segment.field.county": ("Apskritis", "County"),
    "segment.field.role": ("Pareigos", "Role"),
    "segment.field.institution": ("Įstaiga", "Institution"),
    "segment.field.department": ("Padalinys", "Department"),
    "segment.field.language": ("Kalba", "Language"),
    "segment.count": ("Gavėjų", "Recipients"),
    "segment.count_button": ("Skaičiuoti", "Count"),
    "segment.saved_ones": ("Išsaugota atranka", "Saved segment"),
    "segment.use": ("Naudoti", "Use"),
    "segment.name": ("Išsaugoti atranką pavadinimu", "Save the segment as"),
    "segment.save": ("Išsaugoti atranką", "Save the segment"),
    "segment.saved": ("Atranka išsaugota.", "The segment was saved."),
    "segment.none": ("Išsaugotų atrankų nėra.", "No saved segments."),
    "segment.delete": ("Ištrinti", "Delete"),
    "segments.title": ("Išsaugotos atrankos", "Saved segments"),
    "lists.create": ("Naujas sąrašas", "New list"),
    "lists.slug": (
        "Trumpas pavadinimas (mažosios raidės, skaitmenys, „-“)",
        "Short name (lower-case letters, digits, '-')",
    ),
    "lists.name": ("Pavadinimas", "Name"),
    "lists.description": ("Aprašymas", "Description"),
    "lists.public": (
        "Viešas: siūlomas prenumeratos puslapyje",
        "Public: offered on the subscription page",
    ),
    "lists.public_mark": ("viešas", "public"),
    "lists.archived_mark": ("archyvuotas", "archived"),
    "lists.create_submit": ("Sukurti sąrašą", "Create the list"),
    "lists.created": ("Sąrašas sukurtas:", "List created:"),
    "lists.saved": ("Sąrašas išsaugotas.", "The list was saved."),
    "lists.edit": ("Tvarkyti", "Manage"),
    "lists.save": ("Išsaugoti", "Save"),
    "lists.archive": ("Archyvuoti", "Archive"),
    "lists.unarchive": ("Grąžinti iš archyvo", "Unarchive"),
    "lists.archive_help": (
        "Archyvuotas sąrašas nesiūlomas naujiems siuntimams ir prenumeratos puslapyje; "
        "nariai ir istorija išlieka, sąrašą galima grąžinti.",
        "An archived list is not offered for new campaigns nor on the subscription page; its "
        "members and history stay, and it can be brought back.",
    ),
    "lists.archived_note": ("Sąrašas archyvuotas.", "The list is archived."),
    "export.title": ("Eksportuoti narius", "Export the members"),
    "export.help": (
        "Numatyta – tik gaunantys (aktyvūs) nariai. Reikšmės, kurias skaičiuoklė palaikytų "
        "formule, pradedamos apostrofu.",
        "By default only active members (those who receive mail). Values a spreadsheet would "
        "take for a formula start with an apostrophe.",
    ),
    "export.status": ("Kurie nariai", "Which members"),
    "export.status.active": ("gaunantys (aktyvūs)", "active"),
    "export.status.unsubscribed": ("atsisakę", "unsubscribed"),
    "export.status.bounced": ("grįžtantys laiškai", "bounced"),
    "export.status.pending": ("nepatvirtinę", "pending"),
    "export.status.all": ("visi", "all"),
    "export.segment": ("Atranka", "Segment"),
    "export.whole": ("— visas sąrašas —", "— the whole list —"),
    "export.csv": ("Atsisiųsti CSV", "Download CSV"),
    "export.xlsx": ("Atsisiųsti XLSX", "Download XLSX"),
    # The image library (web/media.py) and the editor's image dialog (static/media.js).
    "nav.media": ("Paveikslėliai", "Images"),
    "media.title": ("Paveikslėlių biblioteka", "Image library"),
    "media.upload": ("Įkelti paveikslėlį", "Upload an image"),
    "media.file": ("Paveikslėlis (PNG, JPEG, GIF, WebP)", "Image (PNG, JPEG, GIF, WebP)"),
    "media.help": (
        "Iki {mb} MB. Paveikslėlis įrašomas iš naujo: pasukamas pagal EXIF, sumažinamas iki "
        "1200 px pločio, pašalinami metaduomenys (ir GPS vieta).",
        "Up to {mb} MB. The image is written anew: turned upright from its EXIF, shrunk to "
        "1200 px wide, its metadata (the GPS position too) removed.",
    ),
    "media.alt": ("Alternatyvusis tekstas", "Alt text"),
    "media.alt_help": (
        "Ką paveikslėlis rodo tiems, kurie jo nemato (ekrano skaitytuvai, išjungti paveikslėliai).",
        "What the image shows, for those who cannot see it (screen readers, images turned off).",
    ),
    "media.insert": ("Įterpti", "Insert"),
    "media.cancel": ("Atšaukti", "Cancel"),
    "media.uploading": ("Įkeliama…", "Uploading…"),
    "media.added": ("Paveikslėlis įkeltas.", "The image was uploaded."),
    "media.deleted": ("Paveikslėlis ištrintas.", "The image was deleted."),
    "media.search": ("Ieškoti pagal aprašymą ar failo vardą", "Search by alt text or file name"),
    "media.search_button": ("Ieškoti", "Search"),
    "media.none": ("Paveikslėlių nėra.", "There are no images."),
    "media.delete": ("Ištrinti", "Delete"),
    "media.copy": ("Markdown", "Markdown"),
    "media.dialog_title": ("Paveikslėlio aprašymas", "Describe the image"),
    "media.failed": (
        "Nepavyko įkelti. Patikrinkite ryšį ir bandykite dar kartą.",
        "The upload failed. Check the connection and try again.",
    ),
    "media.too_large": ("Failas didesnis nei {limit} MB.", "The file is larger than {limit} MB."),
    "media.output_large": (
        "Net įrašytas iš naujo paveikslėlis didesnis nei {limit} MB; įkelkite JPEG.",
        "Even written anew the image is larger than {limit} MB; upload it as JPEG.",
    ),
    "media.markup": (
        "SVG ir HTML failai nepriimami: juose gali būti scenarijų.",
        "SVG and HTML files are refused: they can carry scripts.",
    ),
    "media.polyglot": (
        "Paveikslėlyje įterpta HTML, scenarijus ar archyvas; failas nepriimtas.",
        "The image carries HTML, script or an archive inside; the file is refused.",
    ),
    "media.not_image": (
        "Tai ne PNG, JPEG, GIF ar WebP paveikslėlis.",
        "Not a PNG, JPEG, GIF or WebP image.",
    ),
    "media.broken": (
        "Paveikslėlis sugadintas arba nepilnas.",
        "The image is damaged or cut short.",
    ),
    "media.bad_name": (
        "Failo vardas turi baigtis .png, .jpg, .gif arba .webp.",
        "The file name must end in .png, .jpg, .gif or .webp.",
    ),
    "media.mismatch": (
        "Failas yra {detected} paveikslėlis, bet pavadintas ar siunčiamas kaip {named}.",
        "The file is a {detected} image but is named or sent as {named}.",
    ),
    "media.bomb": (
        "Paveikslėlyje per daug taškų (daugiausia {limit} megapikselių).",
        "The image has too many pixels (at most {limit} megapixels).",
    ),
    "media.no_file": ("Pasirinkite paveikslėlio failą.", "Choose an image file."),
    "media.alt_required": (
        "Parašykite alternatyvųjį tekstą: ką paveikslėlis rodo.",
        "Write the alt text: what the image shows.",
    ),
    "media.alt_long": ("Ne daugiau kaip {limit} simbolių.", "At most {limit} characters."),
    "media.in_use": (
        "Neištrinta: paveikslėlį naudoja išsiųstas siuntimas ({subjects}).",
        "Not deleted: a sent campaign uses the image ({subjects}).",
    ),
    # The sponsor registry in the browser (web/sponsors.py).
    "nav.sponsors": ("Rėmėjai", "Sponsors"),
    "sponsors.title": ("Rėmėjai ir partneriai", "Sponsors and partners"),
    "sponsors.saved": (
        "Išsaugota. Kitas numerio atvaizdavimas parodys naują rėmėjų bloką.",
        "Saved. The next render of an issue shows the new sponsor block.",
    ),
    "sponsors.file_error": ("Rėmėjų failo klaida", "Error in the sponsor file"),
    "sponsors.conflict": (
        "Kol redagavote, rėmėjų failas pasikeitė, todėl niekas neišsaugota. Žemiau – dabartinis "
        "failas ir jūsų įvestos reikšmės; patikrinkite ir išsaugokite dar kartą.",
        "The sponsor file changed while you were editing, so nothing was saved. Below are the "
        "current file and the values you typed; check them and save again.",
    ),
    "sponsors.gone": (
        "Šio įrašo faile nebėra; puslapis atnaujintas.",
        "This entry is no longer in the file; the page shows it as it is now.",
    ),
    "sponsors.name": ("Pavadinimas", "Name"),
    "sponsors.id": ("Trumpas pavadinimas (id)", "Short name (id)"),
    "sponsors.id_help": (
        "a–z, 0–9, - ir _; tuščias – sudaromas iš pavadinimo. Numeriai jį nurodo savo „sponsors“ sąraše.",
        "a–z, 0–9, - and _; left empty, it is made from the name. Issues name it in their “sponsors” list.",
    ),
    "sponsors.tier": ("Grupė", "Tier"),
    "sponsors.url": ("Svetainė", "Website"),
    "sponsors.logo": (
        "Logotipas (įkeliamas į paveikslėlių biblioteką)",
        "Logo (uploaded to the image library)",
    ),
    "sponsors.remove_logo": ("Pašalinti logotipą", "Remove the logo"),
    "sponsors.alt": ("Logotipo alternatyvusis tekstas", "Logo alt text"),
    "sponsors.alt_help": (
        "Būtinas įkeliant logotipą; be jo rodomas pavadinimas.",
        "Required when a logo is uploaded; otherwise the name is used.",
    ),
    "sponsors.save": ("Išsaugoti", "Save"),
    "sponsors.edit": ("Redaguoti", "Edit"),
    "sponsors.edit_tier": ("Redaguoti grupę", "Edit the tier"),
    "sponsors.delete": ("Ištrinti", "Delete"),
    "sponsors.up": ("Aukštyn", "Up"),
    "sponsors.down": ("Žemyn", "Down"),
    "sponsors.add": ("Pridėti rėmėją", "Add a sponsor"),
    "sponsors.add_tier": ("Pridėti grupę", "Add a tier"),
    "sponsors.tier_id": ("Grupės trumpas pavadinimas (id)", "Tier's short name (id)"),
    "sponsors.size": ("Logotipų dydis", "Logo size"),
    "sponsors.default": (
        "numatytoji (rodoma, kai numeris nenurodo)",
        "default (shown when an issue does not say)",
    ),
    "footer.text": (
        "Projektas „Bibliotekos pažangai“",
        "The “Bibliotekos pažangai” programme",
    ),
    # Roles, approvals, the audit log
    "status.awaiting": ("laukia patvirtinimo", "awaiting approval"),
    "nav.users": ("Paskyros", "Accounts"),
    "nav.audit": ("Veiksmų žurnalas", "Audit log"),
    "forbidden.title": ("Neleidžiama", "Not allowed"),
    "forbidden.body": (
        "Jūsų paskyros vaidmenys šio veiksmo neleidžia. Jei jo reikia, kreipkitės į administratorių.",
        "Your account's roles do not allow this. If you need it, ask an administrator.",
    ),
    "role.author": ("autorius", "author"),
    "role.sender": ("siuntėjas", "sender"),
    "role.list_keeper": ("sąrašų tvarkytojas", "list keeper"),
    "role.admin": ("administratorius", "admin"),
    "admin.title": ("Redaktorių paskyros", "Editor accounts"),
    "admin.roles": ("Vaidmenys", "Roles"),
    "admin.state": ("Būsena", "State"),
    "admin.save_roles": ("Išsaugoti vaidmenis", "Save roles"),
    "admin.disabled": ("išjungta", "disabled"),
    "admin.disable": ("Išjungti", "Disable"),
    "admin.enable": ("Įjungti", "Enable"),
    "admin.disable_confirm": (
        "Išjungti paskyrą? Visos jos sesijos baigsis iš karto.",
        "Disable the account? All its sessions end at once.",
    ),
    "admin.invite": ("Pakviesti redaktorių", "Invite an editor"),
    "admin.initial_password": (
        "Pradinis slaptažodis (tuščia – sugeneruoti)",
        "Initial password (empty: generate one)",
    ),
    "admin.invite_button": ("Sukurti paskyrą", "Create the account"),
    "admin.created": ("Paskyra sukurta:", "Account created:"),
    "admin.password_once": (
        "Slaptažodis rodomas tik dabar, perduokite jį asmeniškai:",
        "The password is shown only now; pass it on in person:",
    ),
    "audit.title": ("Veiksmų žurnalas", "Audit log"),
    "audit.actor": ("Kas", "Who"),
    "audit.action": ("Veiksmas", "Action"),
    "audit.object": ("Objektas", "Object"),
    "audit.client": ("Adresas", "Address"),
    "audit.when": ("Kada (UTC)", "When (UTC)"),
    "audit.detail": ("Išsamiau", "Detail"),
    "audit.since": ("Nuo", "From"),
    "audit.until": ("Iki", "To"),
    "audit.any": ("bet koks", "any"),
    "audit.filter": ("Rodyti", "Show"),
    "audit.none": ("Įrašų nėra.", "No entries."),
    "approve.title": ("Patvirtinimas", "Approval"),
    "approve.open": ("Peržiūrėti ir patvirtinti", "Review and approve"),
    "approve.author": ("autorius", "author"),
    "approve.lists": ("Sąrašai", "Lists"),
    "approve.segment": ("Segmentas", "Segment"),
    "approve.recipients": ("Gavėjų dabar", "Recipients now"),
    "approve.standing": ("Galiojantys patvirtinimai", "Approvals that hold"),
    "approve.complete": ("patvirtinta", "approved"),
    "approve.void": ("nebegalioja", "void"),
    "approve.holds": ("galioja", "holds"),
    "approve.own": (
        "Šį siuntimą sukūrėte jūs, todėl patvirtinti turi kitas žmogus.",
        "You created this campaign, so someone else must approve it.",
    ),
    "approve.button": ("Patvirtinu", "Approve"),
    "approve.refresh": ("Atnaujinti iš failo", "Refresh from the file"),
    "approve.start": ("Pradėti siuntimą", "Start sending"),
    "approve.preview": ("Laiškas", "The email"),
    "approve.diff": ("Skirtumai nuo paskutinio išsiųsto", "Changes since the last issue sent"),
    "approve.diff_against": ("Lyginama su", "Compared with"),
    "approve.nothing_sent": ("Dar niekas neišsiųsta.", "Nothing has been sent yet."),
    # Clicks, sponsor report, archive feed, accessibility statement
    "nav.sponsor_report": ("Rėmėjų ataskaita", "Sponsor report"),
    "clicks.title": ("Paspaudimai", "Clicks"),
    "clicks.summary": (
        "Skaitytojų paspaudimų: {clicks}; skirtingų skaitytojų (įvertis): {readers}; "
        "saugumo skenerių užklausų (neįskaičiuotos): {scanners}.",
        "Readers' clicks: {clicks}; distinct readers (an estimate): {readers}; "
        "security scanners' requests (not counted): {scanners}.",
    ),
    "clicks.chart_title": ("Paspaudimai pagal nuorodą", "Clicks per link"),
    "clicks.chart_desc": (
        "Stulpelinė diagrama: kiekvienos nuorodos skaitytojų paspaudimai. Tie patys skaičiai – lentelėje po ja.",
        "Bar chart: readers' clicks on each link. The table below gives the same figures.",
    ),
    "clicks.table": ("Paspaudimai pagal nuorodą", "Clicks per link"),
    "clicks.link": ("Nuoroda", "Link"),
    "clicks.section": ("Skyrius", "Section"),
    "clicks.sponsor": ("Rėmėjas", "Sponsor"),
    "clicks.clicks": ("Paspaudimai", "Clicks"),
    "clicks.readers": ("Skaitytojai", "Readers"),
    "clicks.scanners": ("Skeneriai", "Scanners"),
    "clicks.csv": ("Atsisiųsti CSV", "Download CSV"),
    "clicks.per_sponsor": ("Paspaudimai pagal rėmėją", "Clicks per sponsor"),
    "sponsor_report.title": ("Rėmėjų nuorodų paspaudimai", "Clicks on sponsors' links"),
    "sponsor_report.total": ("iš viso {clicks}", "{clicks} in all"),
    "sponsor_report.in_issue": ("{clicks} paspaud. numeryje", "{clicks} clicks in"),
    "sponsor_report.empty": (
        "Rėmėjų nuorodų paspaudimų dar nėra.",
        "No clicks on sponsors' links yet.",
    ),
    "sponsor_report.counting_off": (
        "Paspaudimai neskaičiuojami: nustatykite NEWSLETTER_CLICK_COUNTING=aggregate.",
        "Clicks are not counted: set NEWSLETTER_CLICK_COUNTING=aggregate.",
    ),
    "archive.description": (
        "Išsiųsti projekto „Bibliotekos pažangai“ naujienlaiškiai.",
        "Newsletters sent by the “Bibliotekos pažangai” programme.",
    ),
    "archive.feed": ("RSS srautas", "RSS feed"),
    "footer.accessibility": ("Prieinamumo deklaracija", "Accessibility statement"),
    "accessibility.title": ("Prieinamumo deklaracija", "Accessibility statement"),
    "accessibility.description": (
        "Kaip šios svetainės puslapiai atitinka prieinamumo reikalavimus ir kaip pranešti apie kliūtis.",
        "How this site's pages meet accessibility requirements, and how to report a barrier.",
    ),
    # Messages by code (``explain``): ``error.<code>`` of newsletter.audience.messages and
    # of the pages' own errors. A text after "file: " or "line N: " starts in lower case.
    "error.where_line": ("{file}, eilutė {line}", "{file}, line {line}"),
    "error.file.missing": ("tokio failo nėra", "no such file"),
    "error.file.xls": (
        "senieji Excel .xls failai nepriimami; išsaugokite failą kaip .xlsx arba „CSV UTF-8“",
        "old Excel .xls files are not supported; save it as .xlsx or CSV UTF-8",
    ),
    "error.file.type": (
        "nežinomas failo tipas „{suffix}“; įkelkite .csv arba .xlsx failą",
        "unknown file type {suffix!r}; use .csv or .xlsx",
    ),
    "error.file.utf16": (
        "failas yra UTF-16 koduotės (Excel „Unicode text“); išsaugokite jį kaip „CSV UTF-8“",
        "the file is UTF-16 (Excel 'Unicode text'); save it as 'CSV UTF-8'",
    ),
    "error.file.bad_utf8": (
        "netinkamas UTF-8 tekstas ({detail}) faile, kuris kitur užkoduotas UTF-8",
        "invalid UTF-8 ({detail}) in a file that is otherwise UTF-8",
    ),
    "error.file.unknown_encoding": (
        "failo koduotė nėra nei UTF-8, nei Windows-1257 ({detail}); išsaugokite failą kaip "
        "„CSV UTF-8“",
        "the file is neither UTF-8 nor Windows-1257 ({detail}); save it as 'CSV UTF-8'",
    ),
    "error.file.bad_byte": ("baitas 0x{byte}", "byte 0x{byte}"),
    "error.file.cut_character": ("failas baigiasi nepilnu simboliu", "the file ends mid-character"),
    "error.file.bad_csv": ("neįskaitomas CSV failas ({detail})", "unreadable CSV ({detail})"),
    "error.file.bad_xlsx": (
        "failas nėra perskaitoma XLSX darbaknygė ({detail})",
        "not a readable XLSX workbook ({detail})",
    ),
    "error.file.bad_xlsx_row": (
        "neįskaitoma XLSX eilutė ({detail})",
        "unreadable XLSX row ({detail})",
    ),
    "error.file.xlsx_bomb": (
        "išpakuota darbaknygė užimtų {unpacked_mb:.0f} MB, daugiau nei leidžiami "
        "{limit_mb:.0f} MB; ištrinkite suformatuotas tuščias eilutes ir stulpelius už sąrašo "
        "ribų arba išsaugokite failą kaip CSV",
        "the workbook unpacks to {unpacked_mb:,.0f} MB, more than the {limit_mb:,.0f} MB a "
        "list file may; delete formatted empty rows and columns beyond the list, or save it "
        "as CSV",
    ),
    "error.file.wide_header": (
        "antraštės eilutė tęsiasi už {limit}-ojo stulpelio – tiek stulpelių sąrašas neturi; "
        "ištrinkite stulpelius už sąrašo ribų",
        "the header row goes on past column {limit}, more than a list may have; delete the "
        "columns after the list's own",
    ),
    "error.file.no_email": (
        "nėra el. pašto stulpelio (antraštės, pvz., „email“ arba „El. paštas“); pirmoje "
        "eilutėje: {found}",
        "no email column (a header such as 'email' or 'El. paštas'); the first row has {found}",
    ),
    "error.file.nothing": ("nieko nėra", "nothing"),
    "error.file.same_column": (
        "stulpeliai {first} ir {second} abu reiškia „{column}“",
        "columns {first} and {second} both mean {column!r}",
    ),
    "error.file.too_many_rows": (
        "daugiau nei {limit} eilučių; padalykite sąrašą į mažesnius failus",
        "more than {limit:,} rows; split the list into smaller files",
    ),
    "error.file.formula": (
        "stulpelyje „{column}“ yra formulė ({text}); pakeiskite ją reikšme",
        "a formula in column {column} ({text!r}); replace it with its value",
    ),
    "error.row.overflow": (
        "eilutėje daugiau reikšmių ({values}) nei antraštėje stulpelių ({columns})",
        "{values} values but the header has {columns} columns",
    ),
    "error.row.control": (
        "stulpelyje „{column}“ yra valdymo simbolis (pvz., eilutės lūžis)",
        "control character (such as a line break) in {column}",
    ),
    "error.row.header": (
        "stulpelio „{column}“ reikšmė netinka laiško antraštei (joje yra valdymo simbolis "
        "arba sugadintas užkoduotas žodis)",
        "{column} cannot go into a mail header: it {detail}",
    ),
    "error.row.too_long": (
        "stulpelio „{column}“ reikšmė ilgesnė nei {limit} simbolių",
        "{column} is longer than {limit} characters",
    ),
    "error.row.attribute_too_long": (
        "kurio nors papildomo stulpelio reikšmė ilgesnė nei {limit} simbolių",
        "an attribute is longer than {limit} characters",
    ),
    "error.email.empty": ("el. pašto adresas tuščias", "the email address is empty"),
    "error.email.control": (
        "el. pašto adrese yra valdymo simbolis",
        "the email address contains a control character",
    ),
    "error.email.invalid": (
        "neteisingas el. pašto adresas „{address}“",
        "invalid email address {address!r}: {detail}",
    ),
    "error.import.slug": (
        "Trumpas pavadinimas „{slug}“ netinka: leidžiamos tik mažosios lotyniškos raidės, "
        "skaitmenys ir „-“.",
        "The short name “{slug}” must be lower-case letters, digits and '-'.",
    ),
    "error.import.name_too_long": (
        "Sąrašo pavadinimas ilgesnis nei {limit} simbolių.",
        "The list's name is longer than {limit} characters.",
    ),
    "error.import.name_control": (
        "Sąrašo pavadinime yra valdymo simbolis (pvz., eilutės lūžis).",
        "The list's name contains a control character (such as a line break).",
    ),
    "error.import.sync_nothing": (
        "„Pašalinti narius, kurių faile nėra“ atsisakyta: nė vienos eilutės nepavyko "
        "importuoti, todėl būtų pašalinti visi nariai",
        "“Remove members missing from the file” refused: no row could be imported, so every "
        "member would be removed",
    ),
    "error.list.slug": (
        "Trumpas pavadinimas „{slug}“ netinka: leidžiamos tik mažosios lotyniškos raidės, "
        "skaitmenys ir „-“, iki 64 ženklų.",
        "The short name “{slug}” must be lower-case letters, digits and '-', up to 64.",
    ),
    "error.list.slug_taken": (
        "Trumpas pavadinimas „{slug}“ jau užimtas: toks sąrašas jau yra.",
        "A list “{slug}” exists already.",
    ),
    "error.list.name_required": ("Sąrašui reikia pavadinimo.", "A list needs a name."),
    "error.list.name_too_long": (
        "Pavadinimas turi būti viena eilutė, ne ilgesnė nei {limit} simbolių.",
        "The name is one line of at most {limit} characters.",
    ),
    "error.list.description_too_long": (
        "Aprašymas turi būti ne ilgesnis nei {limit} simbolių.",
        "The description has at most {limit} characters.",
    ),
    "error.segment.not_fields": (
        "Atranką sudaro laukai su reikšmių sąrašais.",
        "A segment is fields with lists of values.",
    ),
    "error.segment.unknown_field": (
        "Nežinomas atrankos laukas „{field}“; galimi: {known}.",
        "Unknown segment field “{field}”; known: {known}.",
    ),
    "error.segment.not_values": (
        "{field}: reikšmės turi būti pateiktos sąrašu.",
        "{field}: expected a list of values.",
    ),
    "error.segment.too_many_values": (
        "{field}: ne daugiau kaip {limit} reikšmių.",
        "{field}: at most {limit} values.",
    ),
    "error.segment.bad_value": (
        "{field}: reikšmė {value!r} turi būti viena eilutė, ne ilgesnė nei {limit} simbolių.",
        "{field}: {value!r} is not one line of at most {limit} characters.",
    ),
    "error.segment.name": (
        "Įrašykite atrankos pavadinimą: vieną eilutę, ne ilgesnę nei {limit} simbolių.",
        "Give the segment a name of one line, at most {limit} characters.",
    ),
    "error.segment.name_taken": (
        "Atranka pavadinimu „{name}“ jau yra.",
        "A segment named “{name}” exists already.",
    ),
    "error.segment.not_found": (
        "Išsaugotos atrankos Nr. {segment_id} nėra.",
        "There is no saved segment {segment_id}.",
    ),
    "error.segment.choose": ("Pasirinkite išsaugotą atranką.", "Choose a saved segment."),
    "error.campaign.no_lists": ("Pasirinkite bent vieną sąrašą.", "Choose at least one list."),
    "error.campaign.no_such_list": (
        "Sąrašo „{slug}“ nėra arba jis archyvuotas.",
        "There is no list “{slug}” to send to (unknown or archived).",
    ),
    "error.campaign.send_at_format": (
        "Nurodykite datą ir laiką (gauta: „{text}“).",
        "Expected a date and time, got “{text}”.",
    ),
    "error.campaign.send_at_past": ("Laikas {text} jau praėjo.", "{text} is in the past."),
    # Sending a test copy or starting a campaign (web/campaigns.py's own codes).
    "error.issue.does_not_compile": (
        "Numerio nepavyksta sukompiliuoti: {error}",
        "the issue does not compile: {error}",
    ),
    "error.issue.lint_errors": (
        "Patikra rado klaidų: {count}. Pirmoji: {message}",
        "lint found {count} error(s), first: {message}",
    ),
    "error.issue.lint_errors_at": (
        "Patikra rado klaidų: {count}. Pirmoji, {line} eilutėje: {message}",
        "lint found {count} error(s), first: line {line}: {message}",
    ),
    "error.test.not_editor": (
        "Adresas {address} nėra redaktoriaus: bandomieji laiškai siunčiami tik redaktoriams.",
        "address: {address} is not an editor's; test copies go to editors",
    ),
    "error.campaign.start_token": (
        "Trūksta patvirtinimo puslapio vienkartinio žetono; patvirtinkite dar kartą.",
        "the confirmation page's one-time token is missing; confirm again",
    ),
    # Steering a campaign and approving it (newsletter.dispatch.messages).
    "error.campaign.not_found": (
        "Siuntimo Nr. {campaign_id} nėra.",
        "There is no campaign {campaign_id}.",
    ),
    "error.campaign.wrong_status": (
        "Siuntimas Nr. {campaign_id} yra „{current}“, todėl šio veiksmo atlikti negalima.",
        "Campaign {campaign_id} is {current}; this needs it {wanted}.",
    ),
    "error.campaign.sent_elsewhere": (
        "Siuntimą Nr. {campaign_id} dabar siunčia kitas procesas ({who}); palaukite, kol jis "
        "baigs, ir stebėkite eigą šiame puslapyje.",
        "Campaign {campaign_id} is being sent by {who}; follow its progress on this page.",
    ),
    "error.approval.own": (
        "Siuntimo autorius negali jo patvirtinti; paprašykite kito kolegos.",
        "The author of a campaign cannot approve it; ask someone else.",
    ),
    "error.approval.not_awaiting": (
        "Siuntimas Nr. {campaign_id} yra „{status}“, o ne laukia patvirtinimo.",
        "Campaign {campaign_id} is {status}, not awaiting approval.",
    ),
    "error.approval.not_awaiting_refresh": (
        "Siuntimas Nr. {campaign_id} nebelaukia patvirtinimo.",
        "Campaign {campaign_id} is not awaiting approval.",
    ),
    "error.approval.file_changed": (
        "Numerio failas nebeatitinka šio siuntimo laiško (failas pakeistas arba pasikeitė "
        "rėmėjai): atnaujinkite siuntimą iš failo.",
        "The issue file no longer compiles to this campaign's issue (it was edited, or its "
        "sponsors changed): refresh the campaign from the file.",
    ),
    "error.approval.changed": (
        "Siuntimas pasikeitė, kol žiūrėjote puslapį; peržiūrėkite jį dar kartą.",
        "The campaign changed since the page was shown; look at it again.",
    ),
    "error.approval.scheduled": (
        "Siuntimas suplanuotas: jis prasidės nustatytu laiku, jei tada bus patvirtintas.",
        "It is scheduled: it starts at its time if it is approved then.",
    ),
    "error.approval.incomplete": (
        "Galioja {valid} iš {needed} patvirtinimų; siuntimo pradėti dar negalima.",
        "{valid} of {needed} approvals hold; it cannot start yet.",
    ),
    "error.approval.void_issue": (
        "pasikeitė numeris (redaguotas jo failas arba pasikeitė rėmėjai)",
        "the issue changed (its file was edited, or its sponsors changed)",
    ),
    "error.approval.void_audience": (
        "pasikeitė sąrašai arba atranka",
        "the lists or the segment changed",
    ),
    "error.approval.void_recipients": (
        "pasikeitė gavėjų skaičius: tada {then}, dabar {now}",
        "the recipients changed: {then} then, {now} now",
    ),
    "error.upload.too_large": (
        "Failas didesnis nei {mb} MB.",
        "The file is larger than {mb} MB.",
    ),
    "error.upload.unreadable": (
        "Įkelto failo nepavyko perskaityti ({detail}).",
        "The upload could not be read ({detail}).",
    ),
    "error.upload.no_file": ("Pasirinkite CSV arba XLSX failą.", "Choose a CSV or XLSX file."),
    "error.upload.no_list": (
        "Pasirinkite sąrašą arba įrašykite naujo sąrašo trumpą pavadinimą.",
        "Choose a list, or give the new list's short name.",
    ),
    "error.export.status": (
        "Pasirinkite, kuriuos narius atsisiųsti.",
        "Choose which members to download.",
    ),
    # The list file's columns as messages name them (a ``column`` or ``field`` parameter).
    "column.email": ("El. paštas", "email"),
    "column.name": ("Vardas, pavardė", "name"),
    "column.municipality": ("Savivaldybė", "municipality"),
    "column.role": ("Pareigos", "role"),
    "column.institution": ("Įstaiga", "institution"),
    "column.department": ("Padalinys", "department"),
    "column.county": ("Apskritis", "county"),
    "column.language": ("Kalba", "language"),
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


#: Parameters of a message that name a list file's column or a segment's field: shown as
#: the column's name in the page's language (``column.<name>``) when there is one.
COLUMN_PARAMS = ("column", "field")
#: Parameters of a message that are a campaign's status: shown as the page names it.
STATUS_PARAMS = ("current", "status")


def explain(item: NewsletterError | Message | str, lang: str) -> str:
    """A message in ``lang``: its code's text (``error.<code>``) with its parameters filled in.

    Falls back to the English text it carries (``str``) when it has no code or the code has
    no text here, so that nothing is ever shown blank; a parameter that is a ``Message`` is
    explained in turn. Of a coded ``InputError`` only the reason is given, not its file or
    line (the page names them its own way, see ``web.audience.lists.describe``).
    """
    coded = item if isinstance(item, Message) else getattr(item, "coded", None)
    if coded is None:
        return str(item)
    texts = CATALOGUE.get(f"error.{coded.code}")
    if texts is None:
        return coded.text
    params = {name: _param(name, value, lang) for name, value in coded.params.items()}
    return texts[LANGUAGES.index(lang) if lang in LANGUAGES else 0].format(**params)


def _param(name: str, value: object, lang: str) -> object:
    if isinstance(value, Message):
        return explain(value, lang)
    if name in COLUMN_PARAMS and isinstance(value, str) and f"column.{value}" in CATALOGUE:
        return translate(f"column.{value}", lang)
    if name in STATUS_PARAMS and isinstance(value, str) and f"status.{value}" in CATALOGUE:
        return translate(f"status.{value}", lang)
    return value


def coded(code: str, **params: object) -> Message:
    """A page's own message ``code`` (``error.<code>`` here), its text the English one."""
    return Message(code, translate(f"error.{code}", "en").format(**params), params)
