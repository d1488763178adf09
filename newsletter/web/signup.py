"""Subscribing through the public form, with double opt-in.

Nothing is stored when the form is sent: the request (address, name, lists, time) travels
inside a signed, timestamped confirmation link mailed to the address. Only when that
link is confirmed do the subscriber, the active memberships and the consent events
(``subscribe`` with the time of the request, then ``confirm``) appear. So an address
typed in by someone else leaves no trace, and nobody's earlier unsubscribe is touched
until the owner of the address confirms.

The confirmation page asks for a button press: mail scanners that follow links must not
confirm anything, as they must not unsubscribe anyone.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from newsletter.audience import subscribers
from newsletter.audience.lists import current_lists
from newsletter.errors import InputError
from newsletter.headers import UnsafeValueError, check_header_text
from newsletter.models import MailingList, Membership, Subscriber, Suppression, utcnow
from newsletter.settings import Settings
from newsletter.web import mail

CONFIRM_DAYS = 7
SOURCE = "web form"
# Names the wording of the consent checkbox (``subscribe.consent`` in i18n.py); change it
# whenever that wording changes, so each consent event says what the person agreed to.
CONSENT_TEXT_VERSION = "form-2026-1"
# One confirmation mail per mailbox per this many seconds, so the form cannot be used
# to flood someone's mailbox; kept in memory (a restart forgets it, which is harmless).
RESEND_SECONDS = 600
# Form requests one client address may make in that time: without it, one script could
# make this server mail thousands of strangers once each, at the sender's reputation's
# cost. Ten leaves room for a library's shared connection at an event.
REQUESTS_PER_CLIENT = 10
# Suppressions a confirmed request lifts: the person's own earlier choice. A bounce or a
# complaint is not lifted by a web form.
LIFTED_BY_CONFIRMATION = ("unsubscribed", "erased")


@dataclass(frozen=True)
class SignupRequest:
    """What a visitor asked for on the form, as carried in the confirmation link."""

    email: str
    name: str
    list_ids: tuple[int, ...]
    requested_at: str


def _serializer(key: bytes) -> URLSafeTimedSerializer:
    secret = hmac.new(key, b"newsletter/subscribe-confirm/v1", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(secret, salt="subscribe-confirm")


def make_confirm_token(key: bytes, request: SignupRequest) -> str:
    """Sign the request into a URL-safe token."""
    data = {
        "e": request.email,
        "n": request.name,
        "l": list(request.list_ids),
        "t": request.requested_at,
    }
    return _serializer(key).dumps(data)


def read_confirm_token(key: bytes, token: str) -> SignupRequest | None:
    """Return the signed request, or None when the token is bad or older than a week."""
    try:
        data = _serializer(key).loads(token, max_age=CONFIRM_DAYS * 24 * 3600)
        return SignupRequest(
            email=str(data["e"]),
            name=str(data["n"]),
            list_ids=tuple(int(i) for i in data["l"]),
            requested_at=str(data["t"]),
        )
    except (BadData, KeyError, TypeError, ValueError):
        return None


def open_lists(session: Session) -> list[MailingList]:
    """Lists a visitor may choose on the form: the public ones that are not archived."""
    return current_lists(session, public_only=True)


def prepare(session: Session, email: str, name: str, list_ids: Sequence[int]) -> SignupRequest:
    """Check the form; InputError naming the field when the address or lists are wrong."""
    address = subscribers.normalise_email(email)
    try:
        # The importer's and the message builder's check: a name that decodes to a line
        # break would be accepted here and then fail every send.
        check_header_text(name)
    except UnsafeValueError as exc:
        raise InputError(f"name: cannot go into a mail header: it {exc}") from None
    if len(name) > 200:
        raise InputError("name: must be one line of at most 200 characters")
    known = {found.id for found in open_lists(session)} & set(list_ids)
    if not known:
        raise InputError("lists: choose at least one list")
    requested = utcnow().isoformat(timespec="seconds")
    return SignupRequest(address, name.strip(), tuple(sorted(known)), requested)


def send_confirmation_link(
    settings: Settings, request: SignupRequest, lang: str, list_names: Sequence[str]
) -> None:
    """Mail the person the link that confirms ``request``; raises the transport's errors.

    The public form sends it, and so does an editor inviting someone (the same mail).
    """
    token = make_confirm_token(settings.key(), request)
    url = f"{settings.base_url.rstrip('/')}/confirm/{token}"
    mail.send_confirmation(
        settings, request.email, mail.confirmation_mail(lang, url, list(list_names))
    )


def may_mail(session: Session, key: bytes, address: str) -> bool:
    """False when the address bounced or complained: no confirmation mail goes there."""
    digest = subscribers.email_hmac(key, address)
    reason = session.scalar(select(Suppression.reason).where(Suppression.email_hmac == digest))
    return reason is None or reason in LIFTED_BY_CONFIRMATION


def mailbox(address: str) -> str:
    """The mailbox ``address`` delivers to, as far as the resend limit is concerned.

    The ``+tag`` of the local part is dropped: ``victim+1@…`` and ``victim+2@…`` reach
    the same mailbox at Gmail, Outlook.com and Fastmail, and at any Postfix with its
    usual ``recipient_delimiter = +``; counted apart, they let the form flood it.
    """
    local, _, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0] or local}@{domain}"


class ResendGuard:
    """Remembers recent form requests: mailboxes (by HMAC) mailed and requests per client."""

    def __init__(
        self, seconds: float = RESEND_SECONDS, per_client: int = REQUESTS_PER_CLIENT
    ) -> None:
        self.seconds = seconds
        self.per_client = per_client
        self._recent: deque[tuple[float, str, str]] = deque()  # (time, address HMAC, client)
        self._mailed: set[str] = set()
        self._requests: Counter[str] = Counter()
        self._lock = threading.Lock()  # requests run in a thread pool

    def client_allowed(self, client: str) -> bool:
        """True, and count the request, when the client has not asked too often lately."""
        now = time.monotonic()
        with self._lock:
            self._forget_old(now)
            if self._requests[client] >= self.per_client:
                return False
            self._recent.append((now, "", client))
            self._requests[client] += 1
            return True

    def allow(self, key: bytes, address: str) -> bool:
        """True, and remember now, when the address's mailbox has not been mailed lately."""
        digest, now = subscribers.email_hmac(key, mailbox(address)), time.monotonic()
        with self._lock:
            self._forget_old(now)
            if digest in self._mailed:
                return False
            self._recent.append((now, digest, ""))
            self._mailed.add(digest)
            return True

    def _forget_old(self, now: float) -> None:
        """Drop what happened more than ``seconds`` ago (oldest first: no full scan)."""
        while self._recent and now - self._recent[0][0] >= self.seconds:
            _at, digest, client = self._recent.popleft()
            self._mailed.discard(digest)
            if client:
                self._requests[client] -= 1
                if self._requests[client] <= 0:
                    del self._requests[client]


def confirm(session: Session, key: bytes, request: SignupRequest, detail: dict[str, str]) -> bool:
    """Apply a confirmed request: subscriber, active memberships, consent events.

    Idempotent: confirming twice records nothing new. Returns True when something changed.
    """
    subscriber = subscribers.find_subscriber(session, request.email)
    if subscriber is None:
        subscriber = Subscriber(email=request.email, name=request.name)
        session.add(subscriber)
        session.flush()
    if subscriber.status == "bounced":
        return False
    changed = _reactivate(session, key, subscriber)
    existing = {m.list_id: m for m in subscriber.memberships}
    for list_id in request.list_ids:
        if session.get(MailingList, list_id) is None:
            continue
        membership = existing.get(list_id)
        if membership is not None and membership.status == "active":
            continue
        if membership is None:
            session.add(Membership(subscriber_id=subscriber.id, list_id=list_id, status="active"))
        else:
            membership.status = "active"
        _record_consent(session, subscriber.id, list_id, request, detail)
        changed = True
    return changed


def _reactivate(session: Session, key: bytes, subscriber: Subscriber) -> bool:
    """Make an unsubscribed person active again and lift their own suppression."""
    digest = subscribers.email_hmac(key, subscriber.email)
    lifted = session.execute(
        delete(Suppression).where(
            Suppression.email_hmac == digest, Suppression.reason.in_(LIFTED_BY_CONFIRMATION)
        )
    ).rowcount
    if subscriber.status == "unsubscribed":
        subscriber.status = "active"
        return True
    return bool(lifted)


def _record_consent(
    session: Session,
    subscriber_id: int,
    list_id: int,
    request: SignupRequest,
    detail: dict[str, str],
) -> None:
    """Append the request (with its own time) and its confirmation as two consent events."""
    asked = {"requested_at": request.requested_at, **detail}
    for kind, values in (("subscribe", asked), ("confirm", {})):
        subscribers.record_event(
            session,
            subscriber_id,
            kind,
            SOURCE,
            list_id=list_id,
            detail=values,
            text_version=CONSENT_TEXT_VERSION,
        )
