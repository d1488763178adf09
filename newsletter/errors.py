"""The one exception tree of the package.

Every class says what the caller should do about it::

    NewsletterError                 base; carries a one-line message and an exit code
    ├── ConfigError                 a setting is missing or contradictory: stop and fix it
    ├── InputError                  a file or value supplied by a person is wrong: show where, stop
    │   ├── IssueError              an issue file (front matter, Markdown, sponsors) is invalid
    │   ├── SubscriberFileError     a subscriber list file cannot be read
    │   └── NotFoundError           a named thing (list, campaign, subscriber) does not exist
    ├── StateError                  the request does not fit the current state: refuse it
    │   ├── SendingElsewhereError   another live process sends this campaign: follow it, or wait
    │   ├── AlreadySentError        recipients already have this issue from an earlier campaign:
    │   │                           ask whether to send only to the others, or to all again
    │   ├── NotAllowedError         this person may not do it (approve their own campaign): refuse
    │   └── ListChangedError        a list changed since the import's dry run: show it again
    ├── DatabaseError               the database could not do it now; what was done stays consistent
    │   ├── DatabaseUnavailableError  the connection was lost or refused: start the server, run again
    │   ├── DatabaseBusyError       a lock was not granted in time: run again when the other work ends
    │   ├── DiskFullError           the disk under the database is full: free space, run again
    │   └── SchemaMissingError      the database lacks the tables of this version: migrate, run again
    └── DeliveryError               sending one message did not succeed
        ├── TransientDeliveryError  retry later on a fresh connection (4xx, disconnect)
        │   └── DeliveryConfigError the server refuses our setup (login, sender, TLS): stop the
        │                           campaign and fix the settings; never a bounce
        ├── PermanentDeliveryError  give up on this recipient (5xx); counts as a hard bounce
        └── UncertainDeliveryError  the server may have accepted the message (timeout after DATA):
                                    do not mark it sent or failed; report it
    MailboxError                    the bounce mailbox could not be read now: nothing was lost, run again

An error may carry a ``Message``: a stable code and its parameters beside the English text,
so that a page can show it in its own language (``newsletter.web.i18n.explain``) while the
command line prints the English exactly as before. ``str(error)`` is always the English.

The command line shows these in exactly one place (``newsletter.cli.core.main``) as a single
line and exits with ``exit_code``; any other exception is a bug and keeps its traceback.
Errors of SQLAlchemy are translated into ``DatabaseError`` in one place,
``newsletter.db.database_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Message:
    """A message to a person: a stable ``code``, its English ``text`` and its ``params``.

    ``text`` is what the command line prints; a page looks ``code`` up in its catalogue
    and fills in ``params`` (a parameter may itself be a ``Message``, translated in turn).
    The codes of the audience are registered in ``newsletter.audience.messages``.
    """

    code: str
    text: str
    params: Mapping[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


class NewsletterError(Exception):
    """Base class: a failure the user can understand from its one-line message.

    ``coded`` is the ``Message`` it was raised with, or None for plain English text.
    """

    exit_code: int = 1

    def __init__(self, message: str | Message) -> None:
        coded = message if isinstance(message, Message) else None
        text = str(message)
        super().__init__(text)
        self.message = text
        self.coded = coded

    def __str__(self) -> str:
        return self.message


class ConfigError(NewsletterError):
    """A setting is missing, malformed or contradicts another one."""

    exit_code = 78  # EX_CONFIG


class InputError(NewsletterError):
    """Input supplied by a person is wrong; the message names the file, line or field."""

    exit_code = 65  # EX_DATAERR

    def __init__(
        self, message: str | Message, *, path: str | Path | None = None, line: int | None = None
    ):
        self.path = str(path) if path is not None else None
        self.line = line
        location = ""
        if self.path is not None:
            location = self.path if line is None else f"{self.path}:{line}"
        reason = str(message)
        super().__init__(f"{location}: {reason}" if location else reason)
        self.reason = reason
        # The location is kept apart (path, line): the message is the reason alone.
        self.coded = message if isinstance(message, Message) else None


class IssueError(InputError):
    """An issue file cannot be compiled: bad front matter, unknown sponsor, empty body."""


class SubscriberFileError(InputError):
    """A subscriber list file cannot be read as a whole (encoding, missing columns)."""


class NotFoundError(InputError):
    """A list, campaign or subscriber named by the user does not exist."""

    exit_code = 66  # EX_NOINPUT


class StateError(NewsletterError):
    """The requested change does not fit the current state of the thing."""

    exit_code = 1


class SendingElsewhereError(StateError):
    """Another process that is still alive holds the campaign's sending lease."""


class AlreadySentError(StateError):
    """Some recipients of a new campaign already got (or are getting) the same issue.

    Nothing was created; the caller offers the choice: only the others, or everyone again.
    """


class NotAllowedError(StateError):
    """This person may not do this here, whatever their roles (e.g. approve their own campaign)."""

    exit_code = 77  # EX_NOPERM


class ListChangedError(StateError):
    """The list (or what the import would do to it) changed since the dry run confirmed.

    Nothing was imported; ``report`` is what the import would do now, to be shown again.
    """

    def __init__(self, report: object) -> None:
        super().__init__("the list changed since the dry run; nothing was imported")
        self.report = report


class DatabaseError(NewsletterError):
    """The database could not do what was asked just now; no transaction was half applied.

    The message is ``<what happened>: <fix>, then <again>``; ``instead`` replaces the
    last part where the caller knows better (e.g. which campaign to resume).
    """

    exit_code = 75  # EX_TEMPFAIL: try again later

    def __init__(self, what: str, fix: str, again: str = "run the command again") -> None:
        super().__init__(f"{what}: {fix}, then {again}")
        self.what = what
        self.fix = fix
        self.again = again

    def instead(self, again: str) -> DatabaseError:
        """The same error ending with other advice (raise it ``from`` this one)."""
        return type(self)(self.what, self.fix, again)


class DatabaseUnavailableError(DatabaseError):
    """The connection to the database was lost or refused (server down, restarting, unreachable)."""


class DatabaseBusyError(DatabaseError):
    """The database did not grant a lock in time (another process held it too long)."""


class DiskFullError(DatabaseError):
    """The disk holding the database is full; waiting does not help, freeing space does."""

    exit_code = 74  # EX_IOERR


class SchemaMissingError(DatabaseError):
    """The database has not been migrated to this version (a table or column is missing)."""

    exit_code = 78  # EX_CONFIG, as for other setup a person must fix


class DeliveryError(NewsletterError):
    """Sending one message failed; the subclass says whether to retry.

    ``timed_out`` says the server gave no answer at all within the timeout (no greeting,
    no reply to a command): the row is handled as its class says, and a sender that
    sees this several times in a row knows the server, not the recipient, is at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        smtp_code: int | None = None,
        smtp_reply: str = "",
        timed_out: bool = False,
    ):
        super().__init__(message)
        self.smtp_code = smtp_code
        self.smtp_reply = smtp_reply
        self.timed_out = timed_out


class TransientDeliveryError(DeliveryError):
    """Try again later, on a fresh connection: 4xx reply, disconnect, connection refused."""


class DeliveryConfigError(TransientDeliveryError, ConfigError):
    """The mail server refuses our configuration (login, sender address, certificate).

    Every message would fail the same way, so the recipient is not to blame: it is a
    ``TransientDeliveryError`` (never counted as a bounce) and a ``ConfigError`` (exit 78),
    so a sender that knows it can stop the campaign instead of retrying each row.
    """


class PermanentDeliveryError(DeliveryError):
    """Do not try again: the server refused this recipient or message (5xx)."""


class UncertainDeliveryError(DeliveryError):
    """The message data was sent but no final reply came: it may have been delivered."""


class MailboxError(NewsletterError):
    """The bounce mailbox (IMAP) did not answer or refused a command; run again later.

    Every report read before it is recorded and moved, and a report recorded but not yet
    moved is counted once when it is read again.
    """

    exit_code = 75  # EX_TEMPFAIL
