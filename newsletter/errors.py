"""The one exception tree of the package.

Every class says what the caller should do about it::

    NewsletterError                 base; carries a one-line message and an exit code
    ├── ConfigError                 a setting is missing or contradictory: stop and fix it
    ├── InputError                  a file or value supplied by a person is wrong: show where, stop
    │   ├── IssueError              an issue file (front matter, Markdown, sponsors) is invalid
    │   ├── SubscriberFileError     a subscriber list file cannot be read
    │   └── NotFoundError           a named thing (list, campaign, subscriber) does not exist
    ├── StateError                  the request does not fit the current state: refuse it
    │   └── AlreadySentError        recipients already have this issue from an earlier campaign:
    │                               ask whether to send only to the others, or to all again
    └── DeliveryError               sending one message did not succeed
        ├── TransientDeliveryError  retry later on a fresh connection (4xx, disconnect)
        │   └── DeliveryConfigError the server refuses our setup (login, sender, TLS): stop the
        │                           campaign and fix the settings; never a bounce
        ├── PermanentDeliveryError  give up on this recipient (5xx); counts as a hard bounce
        └── UncertainDeliveryError  the server may have accepted the message (timeout after DATA):
                                    do not mark it sent or failed; report it

The command line shows these in exactly one place (``newsletter.cli.core.main``) as a single
line and exits with ``exit_code``; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class NewsletterError(Exception):
    """Base class: a failure the user can understand from its one-line message."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(NewsletterError):
    """A setting is missing, malformed or contradicts another one."""

    exit_code = 78  # EX_CONFIG


class InputError(NewsletterError):
    """Input supplied by a person is wrong; the message names the file, line or field."""

    exit_code = 65  # EX_DATAERR

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        location = ""
        if self.path is not None:
            location = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{location}: {message}" if location else message)
        self.reason = message


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


class AlreadySentError(StateError):
    """Some recipients of a new campaign already got (or are getting) the same issue.

    Nothing was created; the caller offers the choice: only the others, or everyone again.
    """


class DeliveryError(NewsletterError):
    """Sending one message failed; the subclass says whether to retry."""

    def __init__(self, message: str, *, smtp_code: int | None = None, smtp_reply: str = ""):
        super().__init__(message)
        self.smtp_code = smtp_code
        self.smtp_reply = smtp_reply


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
