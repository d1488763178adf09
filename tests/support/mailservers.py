"""Real mail servers of the test's own: Dovecot (IMAP) and Postfix (a relay), on free loopback ports.

Each gets a throwaway folder with its own configuration, queue or mail folder, and a
passwd-file user; the machine's own configuration (``/etc/postfix``, ``/etc/dovecot``)
is never read or changed. Both need root (Postfix's queue is root-owned, Dovecot switches
to its mail user); without root or the programs the test is skipped, or fails under CI.

``Dovecot().start()`` serves one user over plain IMAP (``imap_url``; hierarchy separator
``.``); ``append`` and ``messages`` put mail in and look at it as a client would.
``PostfixRelay(next_hop_port).start()`` accepts mail from loopback on ``port`` and relays
all of it to ``127.0.0.1:next_hop_port``; a refusal there makes Postfix itself mail a DSN
(``RET``/``NOTIFY`` as asked) to the envelope sender, through the same next hop.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.services import kill_group, port_open, unavailable
from tests.support.smtp import free_port

DOVECOT = "/usr/sbin/dovecot"
POSTFIX = "/usr/sbin/postfix"


def _need_root(program: str) -> None:
    if not Path(program).exists():
        unavailable(
            f"{program} is not installed (Debian package {Path(program).name}"
            f"{'-imapd' if 'dovecot' in program else ''})"
        )
    if os.geteuid() != 0:
        unavailable(f"{program} needs root to run with a throwaway configuration")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while not port_open("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start on port {port}: {tail}")
        time.sleep(0.05)


class Dovecot:
    """Dovecot's IMAP server with one passwd-file user and a Maildir in a temporary folder."""

    user = "bounces"
    password = "dsn-secret"

    def __init__(self) -> None:
        _need_root(DOVECOT)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
        self.dir.chmod(0o755)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def imap_url(self) -> str:
        """The ``NEWSLETTER_BOUNCE_IMAP_URL`` of the user's INBOX."""
        return f"imap://{self.user}:{self.password}@127.0.0.1:{self.port}/INBOX"

    def _write_config(self) -> Path:
        folder = self.dir
        for sub in ("run", "state", "mail"):
            (folder / sub).mkdir(exist_ok=True)
        shutil.chown(folder / "mail", "dovecot", "dovecot")
        (folder / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        config = folder / "dovecot.conf"
        config.write_text(
            f"""protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{folder}/mail/%u
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
namespace inbox {{
  inbox = yes
  separator = .
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {folder}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={folder}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
        )
        return config

    def start(self) -> Dovecot:
        config = self._write_config()
        self.process = subprocess.Popen(
            [DOVECOT, "-c", str(config), "-F"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for_port(self.port, self.process, "dovecot", self.dir / "dovecot.log")
        return self

    def client(self) -> imaplib.IMAP4:
        """A logged-in IMAP connection (close it with ``logout``)."""
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.login(self.user, self.password)
        return imap

    def append(self, data: bytes, folder: str = "INBOX") -> None:
        """Deliver a message into a folder, as an IMAP APPEND."""
        imap = self.client()
        try:
            status, reply = imap.append(folder, None, None, data)
            assert status == "OK", reply
        finally:
            imap.logout()

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """Every message in a folder, oldest first ([] when it does not exist)."""
        imap = self.client()
        try:
            status, _ = imap.select(f'"{folder}"', readonly=True)
            if status != "OK":
                return []
            _, data = imap.uid("SEARCH", "ALL")
            found = []
            for uid in (data[0] or b"").split():
                _, parts = imap.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
                found += [bytes(p[1]) for p in parts if isinstance(p, tuple)]
            return found
        finally:
            imap.logout()

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


#: Postfix's daemons, none chrooted (the queue is a temporary folder).
_MASTER_CF = """\
{port} inet n - n - - smtpd
{plain_port} inet n - n - - smtpd -o smtpd_discard_ehlo_keywords=pipelining
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class PostfixRelay:
    """Postfix as the organisation's relay: accepts from loopback, relays to one next hop.

    ``port`` offers PIPELINING, ``plain_port`` does not (both offer DSN). Its log goes to
    ``log`` (``maillog_file``). Nothing is delivered locally: every domain, the bounce
    address's too, goes to the next hop.
    """

    def __init__(self, next_hop_port: int) -> None:
        _need_root(POSTFIX)
        self.next_hop_port = next_hop_port
        self.port = free_port()
        self.plain_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="newsletter-postfix-"))
        self.dir.chmod(0o755)  # the postfix user's daemons reach their queue through it
        self.conf = self.dir / "conf"
        self.log = self.dir / "maillog"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, pipelining: bool = True) -> str:
        """The ``NEWSLETTER_SMTP_URL`` of the relay."""
        return f"smtp://127.0.0.1:{self.port if pipelining else self.plain_port}"

    def _write_config(self) -> None:
        self.conf.mkdir()
        (self.dir / "queue").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix")
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.dir / "queue",
            "data_directory": self.dir / "data",
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "relay.bibliotekos-pazangai.example",
            "mydomain": "bibliotekos-pazangai.example",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self.next_hop_port}",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.dir,  # the default allows only /var and /dev/stdout
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "delay_warning_time": "0",
            "smtp_connect_timeout": "5s",
            # The queue manager looks at new mail at once and retries soon.
            "queue_run_delay": "5s",
            "minimal_backoff_time": "5s",
        }
        lines = [f"{name} = {value}" for name, value in settings.items()]
        (self.conf / "main.cf").write_text("\n".join(lines) + "\n")
        (self.conf / "master.cf").write_text(
            _MASTER_CF.format(
                port=f"127.0.0.1:{self.port}", plain_port=f"127.0.0.1:{self.plain_port}"
            )
        )

    def start(self) -> PostfixRelay:
        self._write_config()
        output = self.dir / "postfix.out"
        with open(output, "wb") as out:  # postfix-script's own complaints, before its log
            self.process = subprocess.Popen(
                [POSTFIX, "-c", str(self.conf), "start-fg"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_port(self.port, self.process, "postfix", output)
        return self

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(
                    [POSTFIX, "-c", str(self.conf), "stop"], timeout=20, capture_output=True
                )
            kill_group(self.process)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)
