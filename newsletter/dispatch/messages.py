"""Dispatch's messages to people, each under a stable code with its English text.

As in ``newsletter.audience.messages``: a refusal raised here carries a ``Message``
(``msg(code, **params)``) whose text is ``MESSAGES[code]`` filled in, so the command
line prints exactly the English it always did, and the editors' pages show the code's
Lithuanian or English text from their catalogue (``newsletter.web.i18n``, key
``error.<code>``). A parameter named ``current`` or ``status`` is a campaign status and
is shown as the page names that status.

Every code here has both translations in the catalogue (tests/web/test_messages.py).
"""

from __future__ import annotations

import re
import string
from functools import cache

from newsletter.errors import Message

MESSAGES: dict[str, str] = {
    # Steering a campaign (campaign.pause, resume, cancel) and who sends it (lease.py).
    "campaign.not_found": "campaign {campaign_id} does not exist; see `newsletter campaigns`",
    "campaign.wrong_status": "campaign {campaign_id} is {current}; this needs it {wanted}",
    "campaign.sent_elsewhere": (
        "campaign {campaign_id} is being sent by {who}; follow it with "
        "`newsletter campaign status {campaign_id} --follow`"
    ),
    # Approving and starting a campaign that needs approvals (approval.py).
    "approval.own": "the author of a campaign cannot approve it; ask someone else",
    "approval.not_awaiting": "campaign {campaign_id} is {status}, not awaiting approval",
    "approval.not_awaiting_refresh": "campaign {campaign_id} is not awaiting approval",
    "approval.file_changed": (
        "the issue file no longer compiles to this campaign's issue (it was edited, "
        "or its sponsors changed): refresh the campaign from the file"
    ),
    "approval.changed": "the campaign changed since the page was shown; look at it again",
    "approval.scheduled": "it is scheduled: it starts at its time if it is approved then",
    "approval.incomplete": "{valid} of {needed} approvals hold; it cannot start yet",
    # Why an approval given no longer holds (approval._void), kept as English on it.
    "approval.void_issue": "the issue changed (its file was edited, or its sponsors changed)",
    "approval.void_audience": "the lists or the segment changed",
    "approval.void_recipients": "the recipients changed: {then} then, {now} now",
}


def msg(code: str, **params: object) -> Message:
    """The message ``code`` with ``params``; its text is the registered English filled in."""
    return Message(code, MESSAGES[code].format(**params), params)


def recognise(text: str) -> Message | str:
    """The message whose English is ``text`` (its parameters read back), or ``text`` itself.

    For a reason kept as plain English on a record (``approval.Standing.problem``, an
    approval's ``void``), so a page can still show it in its own language.
    """
    for code, english in MESSAGES.items():
        found = _pattern(english).fullmatch(text)
        if found:
            return Message(code, text, found.groupdict())
    return text


@cache
def _pattern(english: str) -> re.Pattern[str]:
    """A registered English text as a pattern: its literal words, any text for a parameter."""
    parts, named = [], set()
    for literal, name, _spec, _conversion in string.Formatter().parse(english):
        parts.append(re.escape(literal))
        if name:
            parts.append(f"(?P={name})" if name in named else f"(?P<{name}>.+?)")
            named.add(name)
    return re.compile("".join(parts), re.DOTALL)
