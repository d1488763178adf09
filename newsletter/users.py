"""Editor accounts: creation, password checking and rate-limited login.

Passwords are hashed with argon2id (argon2-cffi's defaults: 3 passes over 64 MiB). Every
login attempt is recorded in ``login_attempts``; more than ``MAX_FAILURES_PER_EMAIL``
failures for one address, or ``MAX_FAILURES_PER_IP`` from one client address, within
``WINDOW`` refuse further attempts until the window has moved on. Keeping the attempts in
the database (not in memory) makes the limit hold across several web processes.

An attempt is committed (as a failure) before the limit is checked and before the
password is verified: guesses sent in parallel then count each other, so no more than
the limit of them ever reach the password check. Checking first and recording after the
verification let every guess in flight through (12 of 12 parallel guesses were checked
against a limit of 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from newsletter import db
from newsletter.errors import InputError, NotFoundError, StateError
from newsletter.models import LoginAttempt, User, utcnow

MIN_PASSWORD_LENGTH = 10
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
# Higher than per address: several editors may share one office NAT address.
MAX_FAILURES_PER_IP = 20
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
    throttled: bool = False


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


def create_user(session: Session, email: str, password: str) -> User:
    """Add an editor account; InputError when the address is taken or the password too short."""
    address = normalise_login(email)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise InputError(f"email: an editor {address} already exists")
    user = User(email=address, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, email: str, password: str) -> User:
    """Replace an editor's password; NotFoundError when there is no such editor."""
    address = normalise_login(email)
    user = session.scalar(select(User).where(User.email == address))
    if user is None:
        raise NotFoundError(f"email: no editor {address}")
    user.password_hash = hash_password(password)
    return user


def password_matches(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; a malformed hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def is_throttled(session: Session, email: str, ip: str, now: datetime) -> bool:
    """True when recent failures, counting the attempt just recorded, exceed a limit."""
    since = now - WINDOW
    failures = select(func.count()).where(
        LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since
    )
    by_email = session.scalar(failures.where(LoginAttempt.email == email)) or 0
    by_ip = session.scalar(failures.where(LoginAttempt.ip == ip)) or 0
    return by_email > MAX_FAILURES_PER_EMAIL or by_ip > MAX_FAILURES_PER_IP


def authenticate(
    url: str, email: str, password: str, ip: str, now: datetime | None = None
) -> LoginResult:
    """Check a login in the database at ``url``; refuse without checking while throttled.

    Three short transactions: record the attempt as a failure; check the limit (a refused
    attempt is removed again, so waiting out the window is enough); after the password
    matched, mark the attempt successful. The password is verified outside any transaction.
    """
    now = now or utcnow()
    address, client = email.strip().lower()[:320], ip[:64]
    with db.transaction(url) as session:
        attempt = LoginAttempt(email=address, ip=client, succeeded=False, at=now)
        session.add(attempt)
        session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - KEEP_ATTEMPTS))
    with db.transaction(url) as session:
        if is_throttled(session, address, client, now):
            session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt.id))
            return LoginResult(user=None, throttled=True)
        user = session.scalar(select(User).where(User.email == address))
    # An unknown address is checked against a dummy hash: both answers take as long.
    matched = password_matches(user.password_hash if user else _dummy_hash(), password)
    if user is None or not matched:
        return LoginResult(user=None)
    return LoginResult(user=_logged_in(url, user.id, attempt.id, password, now))


def _logged_in(
    url: str, user_id: int, attempt_id: int, password: str, now: datetime
) -> User | None:
    """Mark the attempt successful and the login time; rehash when argon2's defaults grew."""
    with db.transaction(url) as session:
        session.execute(
            update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(succeeded=True)
        )
        user = session.get(User, user_id)
        if user is None:  # the account was removed meanwhile
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        user.last_login_at = now
        return user


def get_user(session: Session, user_id: int) -> User:
    """Return the editor with ``user_id``; StateError when the account no longer exists."""
    user = session.get(User, user_id)
    if user is None:
        raise StateError(f"editor account {user_id} no longer exists")
    return user
