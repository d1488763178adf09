"""Settings: one source, read from the environment, then a ``.env`` file, then defaults.

Every setting is an environment variable ``NEWSLETTER_<NAME>``. ``Settings.from_env()``
is called once at start by the command line, the web app and the worker; tests build
``Settings(...)`` directly or call ``from_env(environ=...)`` with a dict.

The embedded defaults need no server: a SQLite file and an outbox folder under
``var/``, tasks run in-process. Setting ``NEWSLETTER_REDIS_URL``,
``NEWSLETTER_DATABASE_URL`` and ``NEWSLETTER_SMTP_URL`` turns the same code into a
distributed service.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.errors import ConfigError

PREFIX = "NEWSLETTER_"
#: Reserved for the test suite (e.g. NEWSLETTER_TEST_POSTGRES_URL); never a setting.
TEST_PREFIX = PREFIX + "TEST_"


class Secret(str):
    """A string whose repr and str hide the value, so it never lands in a log or traceback."""

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def reveal(self) -> str:
        """Return the value itself, for the one place that needs it."""
        return str.__str__(self)


def _hidden_url(url: str) -> str:
    """Return ``url`` with any password replaced, for display."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@")
    return parts._replace(netloc=netloc).geturl()


# NEWSLETTER_CLICK_COUNTING: off, or aggregate (counts per link, never per person).
CLICK_COUNTING = ("off", "aggregate")


def setting(default: Any, doc: str) -> Any:
    """Declare a settings field with its one-line documentation (shown in ``.env.example``)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Settings:
    """Typed configuration of one running instance. Field docs double as ``.env.example``."""

    # Where things live
    data_dir: Path = setting(
        Path("var"), "Folder for the SQLite file, the secret key and the outbox."
    )
    issues_dir: Path = setting(Path("issues"), "Folder of the Markdown issues.")
    templates_dir: Path = setting(
        Path("templates/email"), "Folder of the MJML/Jinja2 email templates."
    )
    sponsors_file: Path = setting(Path("sponsors.yaml"), "The sponsor and partner registry.")
    database_url: str = setting(
        "", "SQLAlchemy URL; empty means sqlite:///<data_dir>/newsletter.db."
    )
    redis_url: str = setting("", "Redis broker URL; empty runs tasks in-process.")
    smtp_url: str = setting(
        "", "smtp://user:pass@host:587?starttls=1 or smtps://…; empty writes .eml files."
    )
    smtp_ca_file: Path = setting(
        Path(""),
        "PEM file of the CA that signed the SMTP server's certificate (a private CA), "
        "trusted instead of the system's; empty means the system's.",
    )
    outbox_dir: Path = setting(
        Path(""), "Where .eml files go without SMTP; empty means <data_dir>/outbox."
    )
    # Identity of the sender
    base_url: str = setting(
        "http://127.0.0.1:8000",
        "Public URL of the web app; links in emails start with it (over SMTP: public https://).",
    )
    allow_insecure_base_url: bool = setting(
        False,
        "1 lets mail go out over SMTP although BASE_URL is not a public https:// address (a lab).",
    )
    from_address: str = setting(
        "naujienos@bibliotekos-pazangai.example", "From address of every newsletter."
    )
    from_name: str = setting("Bibliotekos pažangai", "Display name in From.")
    reply_to: str = setting("", "Reply-To address; empty means none.")
    unsubscribe_mailto: str = setting(
        "", "Address for mailto: unsubscribe; empty means unsubscribe@<from domain>."
    )
    organisation: str = setting(
        "Projektas „Bibliotekos pažangai“", "Organisation named in the footer."
    )
    postal_address: str = setting(
        "K. Sirvydo g. 6, LT-01101 Vilnius", "Postal address in the footer."
    )
    secret_key: Secret = setting(
        Secret(""), "HMAC key for tokens and Message-IDs; generated beside the database when empty."
    )
    # Dispatch
    rate: float = setting(0.0, "Messages per second for all workers together; 0 means unlimited.")
    lease_seconds: int = setting(120, "How long a worker holds a claimed outbox row.")
    max_attempts: int = setting(5, "Send attempts per recipient before a row is failed.")
    bounce_threshold: int = setting(1, "Hard bounces after which an address is suppressed.")
    smtp_timeout: float = setting(30.0, "Seconds to wait for the SMTP server.")
    retry_seconds: float = setting(
        60.0, "Delay before the first retry after a temporary failure; doubles per attempt."
    )
    tick_seconds: float = setting(
        5.0, "How often the scheduler starts due campaigns and re-queues unfinished work."
    )
    database_retry_seconds: float = setting(
        60.0, "How long an in-process send waits for a lost database to answer again."
    )
    # Roles, approvals, audit
    approvals: int = setting(
        0, "People other than its author who must approve a campaign before it starts: 0, 1 or 2."
    )
    operator: str = setting(
        "", "Who the command line acts as in the audit log; empty means the system user."
    )
    # DKIM
    dkim_key_file: Path = setting(Path(""), "PEM private key for DKIM; empty disables signing.")
    dkim_selector: str = setting("", "DKIM selector.")
    dkim_domain: str = setting("", "DKIM signing domain; empty means the From domain.")
    # What readers did (aggregate counts only) and the public pages
    click_counting: str = setting(
        "off",
        "aggregate counts clicks per link (links rewritten once per campaign); off rewrites nothing.",
    )
    accessibility_file: Path = setting(
        Path(""),
        "Markdown file of the accessibility statement; empty shows the built-in LT/EN text.",
    )
    # Bounces and complaints that come back by mail
    bounce_address: str = setting(
        "",
        "Envelope sender for VERP: bounce@domain makes it bounce+<token>@domain per message; "
        "empty means the From address.",
    )
    bounce_imap_url: str = setting(
        "",
        "Mailbox the DSNs land in: imaps://user:pass@host/INBOX (imap://…?starttls=1); "
        "empty: no fetching.",
    )
    soft_bounce_threshold: int = setting(
        3, "Soft bounces (4.x.x) within SOFT_BOUNCE_DAYS after which an address is suppressed."
    )
    soft_bounce_days: int = setting(30, "The window over which soft bounces are counted.")
    bounce_fetch_seconds: float = setting(
        300.0, "How often the scheduler reads the bounce mailbox."
    )

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ConfigError(f"{PREFIX}RATE must be 0 or more, not {self.rate}")
        if self.max_attempts < 1:
            raise ConfigError(f"{PREFIX}MAX_ATTEMPTS must be at least 1, not {self.max_attempts}")
        if self.lease_seconds < 5:
            raise ConfigError(f"{PREFIX}LEASE_SECONDS must be at least 5, not {self.lease_seconds}")
        if self.retry_seconds <= 0 or self.tick_seconds <= 0:
            raise ConfigError(f"{PREFIX}RETRY_SECONDS and {PREFIX}TICK_SECONDS must be more than 0")
        if self.approvals not in (0, 1, 2):
            raise ConfigError(f"{PREFIX}APPROVALS must be 0, 1 or 2, not {self.approvals}")
        if self.database_retry_seconds < 0:
            raise ConfigError(f"{PREFIX}DATABASE_RETRY_SECONDS must be 0 or more")
        if bool(str(self.dkim_key_file) not in ("", ".")) != bool(self.dkim_selector):
            raise ConfigError(
                f"{PREFIX}DKIM_KEY_FILE and {PREFIX}DKIM_SELECTOR go together: set both or neither"
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{PREFIX}BASE_URL must start with http:// or https://, not {self.base_url!r}"
            )
        if self.smtp_url and urlsplit(self.smtp_url).scheme not in ("smtp", "smtps"):
            raise ConfigError(
                f"{PREFIX}SMTP_URL must start with smtp:// or smtps://, not {_hidden_url(self.smtp_url)!r}"
            )
        if self.redis_url and urlsplit(self.redis_url).scheme not in ("redis", "rediss"):
            raise ConfigError(f"{PREFIX}REDIS_URL must start with redis:// or rediss://")
        if self.click_counting not in CLICK_COUNTING:
            raise ConfigError(
                f"{PREFIX}CLICK_COUNTING must be off or aggregate, not {self.click_counting!r}"
            )
        self._check_bounce_settings()

    def _check_bounce_settings(self) -> None:
        """One line naming the bounce setting that cannot work."""
        if self.bounce_threshold < 1 or self.soft_bounce_threshold < 1:
            raise ConfigError(
                f"{PREFIX}BOUNCE_THRESHOLD and {PREFIX}SOFT_BOUNCE_THRESHOLD must be at least 1"
            )
        if self.soft_bounce_days < 1:
            raise ConfigError(
                f"{PREFIX}SOFT_BOUNCE_DAYS must be at least 1, not {self.soft_bounce_days}"
            )
        if self.bounce_fetch_seconds <= 0:
            raise ConfigError(f"{PREFIX}BOUNCE_FETCH_SECONDS must be more than 0")
        if self.bounce_address and not BOUNCE_ADDRESS.fullmatch(self.bounce_address):
            raise ConfigError(
                f"{PREFIX}BOUNCE_ADDRESS {self.bounce_address!r} must be a plain ASCII address "
                "whose local part has at most 32 letters, digits, dots, hyphens or underscores "
                "(no +: the token follows it)"
            )
        if self.bounce_imap_url and urlsplit(self.bounce_imap_url).scheme not in IMAP_SCHEMES:
            raise ConfigError(
                f"{PREFIX}BOUNCE_IMAP_URL must look like imaps://user:pass@host/INBOX, not "
                f"{_hidden_url(self.bounce_imap_url)!r}"
            )

    # Derived values -------------------------------------------------------------------

    @property
    def database(self) -> str:
        """The SQLAlchemy URL in force (the SQLite file under ``data_dir`` by default)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'newsletter.db'}"

    @property
    def outbox(self) -> Path:
        """The folder where ``.eml`` files are written when no SMTP server is configured."""
        return (
            self.outbox_dir if str(self.outbox_dir) not in ("", ".") else self.data_dir / "outbox"
        )

    @property
    def embedded(self) -> bool:
        """True when tasks run in-process because no Redis broker is configured."""
        return not self.redis_url

    def base_url_problem(self) -> str:
        """Why mail sent over SMTP must not carry links built on ``base_url``; '' when it may.

        Recipients open the unsubscribe, preferences and view links from their own mail
        client, so a loopback, private or internal host reaches nobody, and Gmail and Yahoo
        require a working HTTPS one-click unsubscribe link from bulk senders. The ``.eml``
        folder (no SMTP) and ``allow_insecure_base_url`` (a lab) are never refused.
        """
        if not self.smtp_url or self.allow_insecure_base_url:
            return ""
        reason = _unreachable(self.base_url)
        if not reason:
            return ""
        return (
            f"{PREFIX}BASE_URL {self.base_url} {reason}, so the unsubscribe and other links "
            "in mail sent over SMTP would not work for recipients (Gmail and Yahoo require "
            "an https:// one-click unsubscribe); set it to the public https:// address of "
            f"the web app, or {PREFIX}ALLOW_INSECURE_BASE_URL=1 (--allow-insecure-base-url) "
            "for a test lab"
        )

    def refuse_unfit_base_url(self) -> None:
        """ConfigError naming the setting when ``base_url_problem`` finds one."""
        problem = self.base_url_problem()
        if problem:
            raise ConfigError(problem)

    def key(self) -> bytes:
        """Return the instance's secret key, generating and storing it on first use.

        The generated key is kept in ``<data_dir>/secret_key`` beside the SQLite file,
        never in the repository (``var/`` is ignored by git).
        """
        if self.secret_key.reveal():
            return self.secret_key.reveal().encode()
        path = self.data_dir / "secret_key"
        try:
            return path.read_text(encoding="ascii").strip().encode()
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(value + "\n")
        return value.encode()

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, str]:
        """Return every setting as text for display, with secrets and passwords hidden."""
        shown = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                text = "(set)" if value.reveal() else "(generated)"
            elif f.name.endswith("_url") and value:
                text = _hidden_url(value)
            else:
                text = str(value)
            shown[PREFIX + f.name.upper()] = text
        return shown

    # Loading --------------------------------------------------------------------------

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``), then ``env_file``, then defaults."""
        source: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            source.update(read_env_file(Path(env_file)))
        source.update({k: v for k, v in (os.environ if environ is None else environ).items()})
        known = {PREFIX + f.name.upper(): f for f in fields(cls)}
        unknown = sorted(
            k
            for k in source
            if k.startswith(PREFIX) and k not in known and not k.startswith(TEST_PREFIX)
        )
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]}; known settings: see `newsletter config`"
            )
        values: dict[str, Any] = {}
        for name, f in known.items():
            if name in source:
                values[f.name] = _convert(name, source[name], f.type)
        return cls(**values)


#: The bounce address: room is left in the local part for ``+`` and the VERP token (at most
#: 29 characters), within the 64 that RFC 5321 allows.
BOUNCE_ADDRESS = re.compile(r"[A-Za-z0-9._-]{1,32}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
IMAP_SCHEMES = ("imap", "imaps")


# Host names that resolve only inside a local network, never for a recipient's mail
# client: RFC 6761 (localhost), RFC 6762 (local), ICANN's private-use "internal", and the
# names home routers and Linux installers hand out.
PRIVATE_NAME_SUFFIXES = ("localhost", "local", "internal", "lan", "home.arpa", "localdomain")


def _unreachable(base_url: str) -> str:
    """What keeps ``base_url`` from being a public https:// address, or ''."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme != "https":
        return "is not https://"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if address.is_loopback:
            return "is a loopback address"
        return "" if address.is_global else "is a private address"
    if any(host == name or host.endswith("." + name) for name in PRIVATE_NAME_SUFFIXES):
        return "names a host of the local network"
    if "." not in host:
        return "names a host without a domain"
    return ""


def env_example() -> str:
    """Return a ``.env.example`` text: every setting, its meaning and its default."""
    lines = [
        "# newsletter settings. Copy to .env and change what you need;",
        "# the environment wins over this file. Empty values mean the embedded default.",
        "",
    ]
    defaults = Settings()
    for f in fields(Settings):
        value = getattr(defaults, f.name)
        text = "" if isinstance(value, Secret) or str(value) == "." else str(value)
        if isinstance(value, bool):
            text = "1" if value else "0"
        lines += [f"# {f.metadata['doc']}", f"{PREFIX}{f.name.upper()}={text}", ""]
    return "\n".join(lines)


def known_variables() -> list[str]:
    """Names of every environment variable the settings understand."""
    return [PREFIX + f.name.upper() for f in fields(Settings)]


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file of ``NAME=value`` lines; ``#`` starts a comment line."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        name, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected NAME=value, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def _convert(name: str, text: str, kind: Any) -> Any:
    """Convert the text of one variable to the field's type, with an error naming it."""
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind == "Path":
            return Path(text)
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "Secret":
            return Secret(text)
        if kind == "bool":
            return _boolean(text)
        return text
    except ValueError:
        expected = "1 or 0" if kind == "bool" else f"a {kind}"
        raise ConfigError(f"{name} must be {expected}, not {text!r}") from None


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")


def _boolean(text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (empty: false); ValueError otherwise."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)
