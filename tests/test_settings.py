"""Settings: environment first, then .env, then defaults; secrets hidden; bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.errors import ConfigError
from newsletter.settings import Secret, Settings, known_variables


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = Settings.from_env(environ={}, env_file=None)
    assert settings.embedded
    assert settings.database == "sqlite:///var/newsletter.db"
    assert settings.outbox == Path("var/outbox")
    assert settings.smtp_url == ""


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nNEWSLETTER_RATE=5\nexport NEWSLETTER_FROM_NAME='Iš failo'\n", encoding="utf-8"
    )
    settings = Settings.from_env(environ={"NEWSLETTER_RATE": "12.5"}, env_file=env_file)
    assert settings.rate == 12.5
    assert settings.from_name == "Iš failo"


def test_secret_is_hidden_everywhere() -> None:
    settings = Settings.from_env(
        environ={
            "NEWSLETTER_SECRET_KEY": "labai-slaptas",
            "NEWSLETTER_SMTP_URL": "smtp://user:slaptazodis@mail.example:587",
        },
        env_file=None,
    )
    assert "labai-slaptas" not in repr(settings)
    assert "labai-slaptas" not in str(settings.secret_key)
    shown = settings.describe()
    assert "slaptazodis" not in "".join(shown.values())
    assert shown["NEWSLETTER_SMTP_URL"] == "smtp://user:****@mail.example:587"
    assert settings.key() == b"labai-slaptas"


def test_generated_key_is_kept_beside_the_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.key()
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert Settings(data_dir=tmp_path).key() == first


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"NEWSLETTER_RATE": "greitai"}, "NEWSLETTER_RATE must be a float"),
        ({"NEWSLETTER_RATE": "-1"}, "NEWSLETTER_RATE must be 0 or more"),
        ({"NEWSLETTER_SMTP_URL": "http://x"}, "NEWSLETTER_SMTP_URL must start with smtp://"),
        ({"NEWSLETTER_DKIM_SELECTOR": "s1"}, "go together"),
        ({"NEWSLETTER_RATEE": "1"}, "unknown setting NEWSLETTER_RATEE"),
        ({"NEWSLETTER_BASE_URL": "example.org"}, "NEWSLETTER_BASE_URL must start with http"),
    ],
)
def test_bad_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(environ=environ, env_file=None)


def test_env_file_syntax_error_names_the_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("NEWSLETTER_RATE=1\nnot a setting\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\.env:2: expected NAME=value"):
        Settings.from_env(environ={}, env_file=env_file)


def test_every_variable_round_trips() -> None:
    names = known_variables()
    assert "NEWSLETTER_DATABASE_URL" in names and "NEWSLETTER_SECRET_KEY" in names
    assert isinstance(Settings.from_env(environ={}, env_file=None).secret_key, Secret)


def test_the_test_suites_own_variables_are_not_settings() -> None:
    environ = {"NEWSLETTER_TEST_REDIS_DB": "3", "NEWSLETTER_TEST_POSTGRES_URL": "postgresql://x"}
    settings = Settings.from_env(environ=environ, env_file=None)
    assert "NEWSLETTER_TEST_REDIS_DB" not in settings.describe()


@pytest.mark.parametrize(
    ("base_url", "reason"),
    [
        ("http://127.0.0.1:8000", "is not https://"),
        ("http://naujienos.bibliotekos-pazangai.example", "is not https://"),
        ("https://127.0.0.1", "is a loopback address"),
        ("https://[::1]:8443", "is a loopback address"),
        ("https://10.1.2.3", "is a private address"),
        ("https://192.168.0.10/naujienos", "is a private address"),
        ("https://100.64.0.1", "is a private address"),
        ("https://localhost:8000", "names a host of the local network"),
        ("https://naujienos.local", "names a host of the local network"),
        ("https://web.internal", "names a host of the local network"),
        ("https://web:8000", "names a host without a domain"),
        ("https://naujienos.bibliotekos-pazangai.example", ""),
        ("https://193.219.1.1/naujienos", ""),
    ],
)
def test_mail_over_smtp_needs_a_public_https_base_url(base_url: str, reason: str) -> None:
    settings = Settings(base_url=base_url, smtp_url="smtp://mail.example:587")
    problem = settings.base_url_problem()
    if not reason:
        assert problem == ""
        settings.refuse_unfit_base_url()
        return
    assert problem.startswith(f"NEWSLETTER_BASE_URL {base_url} {reason}, so the unsubscribe")
    with pytest.raises(ConfigError, match="NEWSLETTER_ALLOW_INSECURE_BASE_URL=1"):
        settings.refuse_unfit_base_url()
    assert Settings(base_url=base_url).base_url_problem() == "", "the .eml folder takes any"
    allowed = Settings.from_env(
        environ={
            "NEWSLETTER_BASE_URL": base_url,
            "NEWSLETTER_SMTP_URL": "smtp://mail.example:587",
            "NEWSLETTER_ALLOW_INSECURE_BASE_URL": "true",
        },
        env_file=None,
    )
    assert allowed.allow_insecure_base_url and allowed.base_url_problem() == ""


def test_a_flag_setting_takes_yes_or_no_words() -> None:
    for word, value in (("1", True), ("On", True), ("0", False), ("", False), ("no", False)):
        environ = {"NEWSLETTER_ALLOW_INSECURE_BASE_URL": word}
        assert Settings.from_env(environ=environ, env_file=None).allow_insecure_base_url is value
    with pytest.raises(ConfigError, match="NEWSLETTER_ALLOW_INSECURE_BASE_URL must be 1 or 0"):
        Settings.from_env(environ={"NEWSLETTER_ALLOW_INSECURE_BASE_URL": "gal"}, env_file=None)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"NEWSLETTER_BOUNCE_ADDRESS": "bounce"}, "NEWSLETTER_BOUNCE_ADDRESS 'bounce' must be"),
        ({"NEWSLETTER_BOUNCE_ADDRESS": "a+b@naujienos.example"}, "no \\+"),
        ({"NEWSLETTER_BOUNCE_ADDRESS": "b" * 33 + "@naujienos.example"}, "at most 32"),
        ({"NEWSLETTER_BOUNCE_IMAP_URL": "pop3://u:p@host/INBOX"}, "must look like imaps://"),
        ({"NEWSLETTER_BOUNCE_THRESHOLD": "0"}, "must be at least 1"),
        ({"NEWSLETTER_SOFT_BOUNCE_THRESHOLD": "0"}, "must be at least 1"),
        ({"NEWSLETTER_SOFT_BOUNCE_DAYS": "0"}, "SOFT_BOUNCE_DAYS must be at least 1"),
        ({"NEWSLETTER_SOFT_BOUNCE_DAYS": "mėnuo"}, "SOFT_BOUNCE_DAYS must be a int"),
        ({"NEWSLETTER_BOUNCE_FETCH_SECONDS": "0"}, "BOUNCE_FETCH_SECONDS must be more than 0"),
    ],
)
def test_bad_bounce_settings_are_refused_in_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(environ=environ, env_file=None)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("imaps://host/INBOX", "needs a user name and password"),
        ("imaps://u:p@host:x/INBOX", "port that is not a number"),
        ("imaps://u:p@host/INBOX?starttls=1", "already encrypted"),
        ("imap://u:p@host/INBOX?tls=1", "unknown option 'tls'"),
        ('imap://u:p@host/"INBOX"', "characters IMAP would need quoted"),
    ],
)
def test_a_bounce_mailbox_url_that_cannot_work_names_the_setting(url: str, message: str) -> None:
    from newsletter.delivery.mailbox import parse_imap_url

    with pytest.raises(ConfigError, match=message) as caught:
        parse_imap_url(url)
    assert str(caught.value).startswith("NEWSLETTER_BOUNCE_IMAP_URL")


def test_the_bounce_mailbox_password_is_hidden() -> None:
    settings = Settings(bounce_imap_url="imaps://bounces:slaptas@mail.example/INBOX")
    assert "slaptas" not in settings.describe()["NEWSLETTER_BOUNCE_IMAP_URL"]
