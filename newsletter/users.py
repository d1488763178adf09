"""Editor accounts: creation, passwords, disabling, rate-limited login and sessions.

Passwords are hashed with argon2id (argon2-cffi's defaults: 3 passes over 64 MiB).

Every login attempt is recorded in ``login_attempts``. Within ``WINDOW``:

- more than ``MAX_FAILURES_PER_CLIENT_AND_ADDRESS`` failures for one address from one
  client refuse that client for that address;
- more than ``MAX_FAILURES_PER_IP`` failures from one network address refuse it for
  every address;
- more than ``SLOW_DOWN_AFTER`` failures for one address from all clients together slow
  that address down instead: one password check per ``slowdown()`` (1 s, doubling with
  each further failure, at most ``MAX_SLOWDOWN``), other attempts are told to wait.
  Refusing the address outright let anyone lock an editor out: six wrong passwords
  from anywhere refused the right one from everywhere, renewable forever.

A client is its network address, or a trusted device: a browser that logged in as that
address before and shows the signed cookie it got then (the web layer reads it). A
trusted device is counted by itself and never slowed, so an editor's own browser keeps
working while others guess at the address; guessers have no such cookie (OWASP's
"device cookies" against online guessing). ``unlock`` forgets an address's failures.
Keeping the attempts in the database (not in memory) makes the limits hold across
several web processes.

An attempt is committed (as a failure) before the limits are checked and before the
password is verified: guesses sent in parallel then count each other, so no more than
the limit of them ever reach the password check. Checking first and recording after the
verification let every guess in flight through (12 of 12 parallel guesses were checked
against a limit of 5). The same holds for the slowdown: of attempts in flight together,
each sees the others, so at most one is checked per interval (leaving the ones in
flight out let 12 of 12 parallel guesses from 12 clients through to the check).

A successful login starts a session: a ``web_sessions`` row holding the SHA-256 of a
random token that only the browser's cookie carries. Logging out deletes that row, and
``end_sessions`` deletes every row of a user (a new password and disabling the account
call it), so a copied cookie stops working at once, in every web process.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from newsletter import db
from newsletter.errors import InputError, NotFoundError, StateError
from newsletter.models import LoginAttempt, User, UserRole, WebSession, utcnow

MIN_PASSWORD_LENGTH = 10
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_CLIENT_AND_ADDRESS = 5
# Higher than per address: several editors may share one office NAT address.
MAX_FAILURES_PER_IP = 20
# Failures of one address, from every client together, before its checks slow down.
SLOW_DOWN_AFTER = 5
FIRST_SLOWDOWN = timedelta(seconds=1)
# At most this long between two checks of one address: 15 checks a window for every
# guesser together, while an editor on a new browser waits a minute at worst.
MAX_SLOWDOWN = timedelta(seconds=60)
# As long as the session cookie lives (``SESSION_SECONDS`` in web/app.py is taken from it).
SESSION_LIFETIME = timedelta(hours=12)
# Attempts older than this are deleted when someone logs in; they no longer count.
KEEP_ATTEMPTS = timedelta(days=1)

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the address is unknown, so both answers take as long."""
    return _hasher.hash("no such user: equalise timing")


@dataclass(frozen=True)
class LoginResult:
    """The outcome of one login attempt: the user, or why there is none."""

    user: User | None
    # Refused without a check: too many failures from this client.
    throttled: bool = False
    # Not checked because the address is slowed down: try again after this many seconds.
    wait_seconds: int = 0
    # The new session's token, for the browser's cookie (only when ``user`` is set).
    session_token: str = ""


def normalise_login(email: str) -> str:
    """Return the address as stored for an editor: trimmed and lower-cased; InputError if invalid."""
    text = email.strip()
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"email: {text!r} is not an email address ({exc})") from None
    return text.lower()


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``; InputError if it is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"password: must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def create_user(
    session: Session, email: str, password: str, roles: Sequence[str] | None = None
) -> User:
    """Add an editor account; InputError when the address is taken or the password too short.

    ``roles`` None gives every role (an account made without naming any can do what
    every editor could before roles existed); name them to give fewer.
    """
    address = normalise_login(email)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise InputError(f"email: an editor {address} already exists")
    granted = check_roles(ROLES if roles is None else roles)
    user = User(email=address, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    session.add_all(UserRole(user_id=user.id, role=role) for role in granted)
    return user


def set_password(session: Session, email: str, password: str) -> User:
    """Replace an editor's password; NotFoundError when there is no such editor."""
    user = find_editor(session, email)
    user.password_hash = hash_password(password)
    # Users row first, then the sessions: a login in flight waits for this row's lock
    # and then no longer matches the old hash (see ``_logged_in``).
    session.flush()
    end_sessions(session, user.id)
    return user


def find_editor(session: Session, email: str) -> User:
    """Return the editor with this address; NotFoundError when there is none."""
    address = normalise_login(email)
    user = session.scalar(select(User).where(User.email == address))
    if user is None:
        raise NotFoundError(f"email: no editor {address}")
    return user


def disable(session: Session, email: str) -> User:
    """Disable an editor's account and end every session of it; the account is kept."""
    user = find_editor(session, email)
    if user.disabled_at is None:
        user.disabled_at = utcnow()
    session.flush()
    end_sessions(session, user.id)
    return user


def enable(session: Session, email: str) -> User:
    """Let a disabled editor log in again (with their unchanged password)."""
    user = find_editor(session, email)
    user.disabled_at = None
    return user


def unlock(session: Session, email: str) -> int:
    """Forget the recent failed logins of an editor's address; return how many there were."""
    user = find_editor(session, email)
    failed = delete(LoginAttempt).where(
        LoginAttempt.email == user.email, LoginAttempt.succeeded.is_(False)
    )
    return session.execute(failed).rowcount


def password_matches(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; a malformed hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _failures(since: datetime) -> Select[tuple[int]]:
    """Count failed attempts since ``since``; callers narrow it down."""
    return select(func.count()).where(LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since)


def slowdown(failures: int) -> timedelta:
    """The time between two checks of an address with ``failures`` earlier in the window."""
    excess = failures - SLOW_DOWN_AFTER
    if excess <= 0:
        return timedelta(0)
    return min(FIRST_SLOWDOWN * 2 ** min(excess - 1, 16), MAX_SLOWDOWN)


def is_throttled(session: Session, attempt: LoginAttempt, now: datetime) -> bool:
    """True when the attempt's client has failed too often, counting the attempt itself."""
    failures = _failures(now - WINDOW)
    if attempt.device:
        by_device = failures.where(
            LoginAttempt.email == attempt.email, LoginAttempt.device == attempt.device
        )
        return (session.scalar(by_device) or 0) > MAX_FAILURES_PER_CLIENT_AND_ADDRESS
    untrusted = failures.where(LoginAttempt.device == "", LoginAttempt.ip == attempt.ip)
    by_pair = session.scalar(untrusted.where(LoginAttempt.email == attempt.email)) or 0
    by_ip = session.scalar(untrusted) or 0
    return by_pair > MAX_FAILURES_PER_CLIENT_AND_ADDRESS or by_ip > MAX_FAILURES_PER_IP


def seconds_to_wait(session: Session, attempt: LoginAttempt, now: datetime) -> int:
    """Seconds until the attempt's address may be checked again; 0 when it may be now.

    Counts every other attempt at the address, those still in flight included, so of
    several arriving together at most one goes on to the check.
    """
    others = LoginAttempt.email == attempt.email, LoginAttempt.id != attempt.id
    interval = slowdown(session.scalar(_failures(now - WINDOW).where(*others)) or 0)
    if not interval:
        return 0
    latest = session.scalar(
        select(func.max(LoginAttempt.at)).where(*others, LoginAttempt.at > now - interval)
    )
    if latest is None:
        return 0
    return max(1, math.ceil((_aware(latest) + interval - now).total_seconds()))


def _aware(moment: datetime) -> datetime:
    """``moment`` as aware UTC (SQLite gives back naive datetimes, stored as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def authenticate(
    url: str,
    email: str,
    password: str,
    ip: str,
    now: datetime | None = None,
    *,
    device: str = "",
) -> LoginResult:
    """Check a login in the database at ``url``; refuse or delay without checking when limited.

    ``device`` is the id of a trusted device the request proved it comes from, or ''.
    Three short transactions: record the attempt as a failure; check the limits (an
    attempt refused or delayed is removed again, so waiting is enough); after the
    password matched, mark the attempt successful and start a session. The password
    is verified outside any transaction.
    """
    now = now or utcnow()
    address, client = email.strip().lower()[:320], ip[:64]
    with db.transaction(url) as session:
        attempt = LoginAttempt(
            email=address, ip=client, device=device[:32], succeeded=False, at=now
        )
        session.add(attempt)
        session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - KEEP_ATTEMPTS))
    with db.transaction(url) as session:
        refused = _refusal(session, attempt, now)
        if refused is not None:
            session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt.id))
            return refused
        user = session.scalar(select(User).where(User.email == address))
    # An unknown address is checked against a dummy hash: both answers take as long.
    matched = password_matches(user.password_hash if user else _dummy_hash(), password)
    if user is None or not matched:
        return LoginResult(user=None)
    return _logged_in(url, user, attempt.id, password, now)


def _refusal(session: Session, attempt: LoginAttempt, now: datetime) -> LoginResult | None:
    """The answer for an attempt that must not be checked, or None to check it."""
    if is_throttled(session, attempt, now):
        return LoginResult(user=None, throttled=True)
    if attempt.device:  # a trusted device is never slowed down
        return None
    wait = seconds_to_wait(session, attempt, now)
    return LoginResult(user=None, wait_seconds=wait) if wait else None


def _logged_in(url: str, user: User, attempt_id: int, password: str, now: datetime) -> LoginResult:
    """Mark the attempt successful, start a session; rehash when argon2's defaults grew.

    Only while the password is still the one checked and the account enabled: the
    conditional update waits for a concurrent password change or disabling (its row
    lock) and then matches nothing, so no session outlives them.
    """
    with db.transaction(url) as session:
        current = session.execute(
            update(User)
            .where(
                User.id == user.id,
                User.password_hash == user.password_hash,
                User.disabled_at.is_(None),
            )
            .values(last_login_at=now)
        ).rowcount
        if not current:
            return LoginResult(user=None)
        session.execute(
            update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(succeeded=True)
        )
        fresh = session.get_one(User, user.id)  # locked by the update above
        if _hasher.check_needs_rehash(fresh.password_hash):
            fresh.password_hash = _hasher.hash(password)
        return LoginResult(user=fresh, session_token=_start_session(session, fresh.id, now))


# Sessions ------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _start_session(session: Session, user_id: int, now: datetime) -> str:
    """Add a session of ``user_id``; return its token (only its hash is stored)."""
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            user_id=user_id,
            token_hash=_token_hash(token),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return token


def session_user(url: str, token: str, now: datetime | None = None) -> User | None:
    """The enabled editor whose unexpired session ``token`` is, or None."""
    if not token:
        return None
    with db.transaction(url) as session:
        return session.scalar(
            select(User)
            .join(WebSession, WebSession.user_id == User.id)
            .where(
                WebSession.token_hash == _token_hash(token),
                WebSession.expires_at > (now or utcnow()),
                User.disabled_at.is_(None),
            )
        )


def session_roles(
    url: str, token: str, now: datetime | None = None
) -> tuple[User, frozenset[str]] | None:
    """The enabled editor whose unexpired session ``token`` is, with their roles; or None."""
    user = session_user(url, token, now)
    if user is None:
        return None
    with db.transaction(url) as session:
        return user, roles_of(session, user.id)


def end_session(url: str, token: str) -> None:
    """End the one session ``token`` names (logging out); other sessions stay."""
    with db.transaction(url) as session:
        session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def end_sessions(session: Session, user_id: int) -> int:
    """End every session of the editor ``user_id``, on every browser; return how many."""
    ended = session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return ended.rowcount


# Roles ---------------------------------------------------------------------------------

AUTHOR, SENDER, LIST_KEEPER, ADMIN = "author", "sender", "list_keeper", "admin"
# author: write, preview and test-send issues, ask for a campaign; sender: start, pause,
# resume, cancel; list_keeper: lists, people, GDPR actions; admin: editor accounts.
ROLES = (AUTHOR, SENDER, LIST_KEEPER, ADMIN)


def check_roles(roles: Iterable[str]) -> list[str]:
    """The roles named, in ``ROLES`` order; InputError naming one that does not exist."""
    wanted = {role.strip().lower().replace("-", "_") for role in roles}
    unknown = sorted(wanted - set(ROLES))
    if unknown:
        raise InputError(f"role: {unknown[0]!r} is not one of {', '.join(ROLES)}")
    return [role for role in ROLES if role in wanted]


def roles_of(session: Session, user_id: int) -> frozenset[str]:
    """The roles the editor ``user_id`` holds."""
    return frozenset(session.scalars(select(UserRole.role).where(UserRole.user_id == user_id)))


def change_roles(
    session: Session, email: str, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> list[str]:
    """Give and take roles; return the editor's roles after. StateError for the last admin."""
    user = find_editor(session, email)
    gained, lost = check_roles(add), check_roles(remove)
    if ADMIN in lost:
        refuse_last_admin(session, user.id)
    session.execute(delete(UserRole).where(UserRole.user_id == user.id, UserRole.role.in_(lost)))
    held = roles_of(session, user.id)
    session.add_all(UserRole(user_id=user.id, role=r) for r in gained if r not in held)
    session.flush()
    return [role for role in ROLES if role in roles_of(session, user.id)]


def refuse_last_admin(session: Session, user_id: int) -> None:
    """StateError when ``user_id`` is the only enabled admin: nobody could manage accounts."""
    others = session.scalar(
        select(func.count())
        .select_from(UserRole)
        .join(User, User.id == UserRole.user_id)
        .where(UserRole.role == ADMIN, User.disabled_at.is_(None), User.id != user_id)
    )
    if not others:
        raise StateError("this is the only enabled admin; make another admin first")


def all_editors(session: Session) -> list[tuple[User, list[str]]]:
    """Every editor account with its roles, by address."""
    found = session.scalars(select(User).order_by(User.email)).all()
    return [(user, [r for r in ROLES if r in roles_of(session, user.id)]) for user in found]


def is_editor(url: str, email: str) -> bool:
    """True when ``email`` is an editor account's address (enabled or not)."""
    address = email.strip().lower()
    with db.transaction(url) as session:
        return session.scalar(select(User.id).where(User.email == address)) is not None


def get_user(session: Session, user_id: int) -> User:
    """Return the editor with ``user_id``; StateError when the account no longer exists."""
    user = session.get(User, user_id)
    if user is None:
        raise StateError(f"editor account {user_id} no longer exists")
    return user
