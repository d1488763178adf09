"""The double opt-in confirmation mail, built and sent like every other message.

It goes through ``MessageFactory`` (the same From, encoding and DKIM signature as the
newsletters) and the project's transport. It has no List-Unsubscribe header: it is a
one-off answer to the person's own request, not list mail.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from newsletter.delivery.message import MessageFactory, Recipient
from newsletter.delivery.transport import transport_for
from newsletter.settings import Settings
from newsletter.web.i18n import translate


@dataclass(frozen=True)
class ConfirmationMail:
    """A tiny compiled message: the fields and method ``MessageFactory`` needs."""

    slug: str
    subject: str
    lang: str
    body: str

    def personalise(self, values: Mapping[str, str]) -> tuple[str, str]:
        """Return (html, text); the body is final already."""
        paragraphs = "".join(
            f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>"
            for block in self.body.split("\n\n")
            if block.strip()
        )
        page = f'<!doctype html><html lang="{self.lang}"><body>{paragraphs}</body></html>'
        return page, self.body


def confirmation_mail(lang: str, url: str, list_names: list[str]) -> ConfirmationMail:
    """The mail asking the person to confirm, in the language of the form they used."""
    body = translate("confirm.mail_body", lang).format(lists=", ".join(list_names), url=url)
    return ConfirmationMail("confirm", translate("confirm.mail_subject", lang), lang, body)


def send_confirmation(settings: Settings, address: str, mail: ConfirmationMail) -> None:
    """Build and send the mail; raises the transport's DeliveryError subclasses."""
    # A negative number names no campaign, so the Message-ID never equals a newsletter's;
    # a random one keeps two confirmation mails to one address from sharing it.
    number = -1 - secrets.randbelow(2**31)
    factory = MessageFactory(mail, settings, campaign_id=number, list_id_header="")
    recipient = Recipient(email=address)
    mail_from, rcpt_to = factory.envelope(recipient)
    _ident, raw = factory.build(recipient)
    transport = transport_for(settings)
    transport.open()
    try:
        transport.send(mail_from, rcpt_to, raw)
    finally:
        transport.close()
