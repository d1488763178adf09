"""The dispatch commands through the real command line: send, campaigns, campaign …, scheduler."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import redis
from sqlalchemy import update

from newsletter.cli.core import main
from newsletter.cli.dispatch import parse_at, parse_where
from newsletter.db import transaction
from newsletter.dispatch import embedded, outbox
from newsletter.errors import InputError
from newsletter.models import Campaign, Subscriber, utcnow
from newsletter.settings import Settings
from tests.conftest import ROOT
from tests.dispatch.support import add_people, states
from tests.support.services import RedisServer
from tests.support.smtp import SmtpSink

ISSUE = str(ROOT / "issues" / "2026-11-partnerystes-iniciatyvos.md")
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    settings: Settings,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """Run ``newsletter ARGS…`` embedded (no Redis, no SMTP); return (code, stdout, stderr)."""
    values = {
        "DATABASE_URL": database_url,
        "DATA_DIR": settings.data_dir,
        "SECRET_KEY": settings.secret_key.reveal(),
        "BASE_URL": settings.base_url,
        "TEMPLATES_DIR": settings.templates_dir,
        "SPONSORS_FILE": settings.sponsors_file,
        "ISSUES_DIR": settings.issues_dir,
        "LEASE_SECONDS": 5,
        "TICK_SECONDS": 0.2,
    }
    for name, value in values.items():
        monkeypatch.setenv(f"NEWSLETTER_{name}", str(value))

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def _outbox_files(settings: Settings) -> list[Path]:
    return sorted(settings.outbox.glob("*.eml"))


def _created(out: str) -> int:
    """The campaign id that ``send`` printed (ids are not reset between tests)."""
    found = re.search(r"^campaign (\d+): ", out, re.MULTILINE)
    assert found, out
    return int(found.group(1))


def test_send_runs_in_process_and_writes_one_file_per_recipient(
    run: Run, settings: Settings, database_url: str
) -> None:
    add_people(database_url, 12, ["savivaldybes", "bibliotekos"])
    add_people(database_url, 3, ["bibliotekos"], prefix="kitas")
    code, out, err = run("send", ISSUE, "--list", "savivaldybes", "--list", "bibliotekos")
    assert (code, err) == (0, "")
    number = _created(out)
    assert f"campaign {number}: 15 recipients (savivaldybes, bibliotekos)" in out, out
    assert f"campaign {number} done" in out and "sent 15" in out
    files = _outbox_files(settings)
    assert len(files) == 15, "overlapping lists still give one message per address"
    parsed = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert "partnerystės" in str(parsed["Subject"])


def test_dry_run_counts_a_segment_and_sends_nothing(
    run: Run, settings: Settings, database_url: str
) -> None:
    first, second, *_ = add_people(database_url, 4)
    with transaction(database_url) as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_((first, second)))
            .values(municipality="Kauno r.")
        )
    code, out, _ = run(
        "send", ISSUE, "-l", "savivaldybes", "--where", "municipality=Kauno r.", "--dry-run"
    )
    assert code == 0 and "2 recipients would receive" in out
    assert _outbox_files(settings) == []
    assert run("campaigns")[1].count("\n") <= 4, "no campaign was created"


def test_test_to_sends_one_marked_copy(run: Run, settings: Settings, database_url: str) -> None:
    add_people(database_url, 5)
    code, out, _ = run("send", ISSUE, "--test-to", "redaktore@biblioteka.example")
    assert code == 0 and "test copy to redaktore@biblioteka.example: sent" in out
    (only,) = _outbox_files(settings)
    parsed = message_from_bytes(only.read_bytes(), policy=policy.default)
    assert str(parsed["Subject"]).startswith("[TEST] ")
    assert parsed["List-Unsubscribe"] is None


def test_status_report_and_state_errors(run: Run, database_url: str) -> None:
    add_people(database_url, 3)
    code, out, _ = run("send", ISSUE, "-l", "savivaldybes")
    number = str(_created(out))
    code, out, _ = run("campaign", "status", number, "--follow")
    assert code == 0 and f"campaign {number} done" in out and "sent 3" in out
    code, out, _ = run("campaign", "report", number, "--csv")
    lines = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(lines) == 3
    assert {line["outcome"] for line in lines} == {"sent"}
    assert all(line["message_id"].startswith(f"<c{number}.") for line in lines)
    code, out, _ = run("campaigns")
    assert code == 0 and "done" in out and "3 / 3" in out
    code, _, err = run("campaign", "pause", number)
    expected = f"error: campaign {number} is done; this needs it running or scheduled"
    assert code == 1 and err.strip() == expected
    code, _, err = run("campaign", "report", "999999")
    assert code == 66 and "campaign 999999 does not exist" in err and "Traceback" not in err


def test_pause_and_resume_in_process(run: Run, settings: Settings, database_url: str) -> None:
    add_people(database_url, 4)
    code, out, _ = run("send", ISSUE, "-l", "savivaldybes", "--at", "2099-01-01 09:00")
    assert code == 0 and "scheduled for 2099-01-01 09:00" in out
    number = _created(out)
    assert run("campaign", "pause", str(number))[0] == 0
    code, out, _ = run("campaign", "resume", str(number))
    assert code == 0 and f"campaign {number} is scheduled again" in out
    assert _outbox_files(settings) == []
    code, out, _ = run("campaign", "cancel", str(number))
    assert code == 0 and "4 recipients will not receive it" in out
    assert states(database_url, number) == {"cancelled": 4}


def test_a_scheduled_campaign_is_started_by_the_scheduler(
    run: Run, settings: Settings, database_url: str
) -> None:
    add_people(database_url, 3)
    code, out, _ = run("send", ISSUE, "-l", "savivaldybes", "--at", "2099-01-01 09:00")
    assert code == 0 and "3 recipients" in out
    number = _created(out)
    add_people(database_url, 2, prefix="naujas")  # joins before the time comes
    with transaction(database_url) as session:
        session.execute(update(Campaign).values(send_at=utcnow() - timedelta(seconds=1)))
    fast = settings.replace(database_url=database_url, tick_seconds=0.1)
    embedded.serve(fast, sleep=lambda _: None, rounds=2)
    assert states(database_url, number) == {"sent": 5}, "newcomers added when it starts"
    assert len(_outbox_files(settings)) == 5


def test_bad_input_is_one_line(run: Run, database_url: str) -> None:
    add_people(database_url, 1)
    code, _, err = run("send", ISSUE, "-l", "nera-tokio")
    assert code == 66 and "nera-tokio" in err and err.count("\n") == 1
    code, _, err = run("send", ISSUE, "-l", "savivaldybes", "--where", "savivaldybe")
    assert code == 65 and "--where: expected key=value" in err
    code, _, err = run("send", ISSUE, "-l", "savivaldybes", "--at", "2001-01-01 10:00")
    assert code == 65 and "--at: 2001-01-01 10:00 is in the past" in err
    code, _, err = run("send", ISSUE)
    assert code == 65 and "--list" in err
    code, _, err = run("worker")
    assert code == 78 and "NEWSLETTER_REDIS_URL is not set" in err


def _issue_with(tmp_path: Path, name: str, extra: str) -> tuple[Path, int]:
    """The November issue with ``extra`` appended; (its path, the first added line)."""
    text = Path(ISSUE).read_text(encoding="utf-8").rstrip("\n") + "\n\n"
    path = tmp_path / f"{name}.md"
    path.write_text(text + extra, encoding="utf-8")
    return path, text.count("\n") + 1


def test_send_refuses_an_issue_with_lint_errors_and_names_the_first(
    run: Run, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    add_people(database_url, 2)
    extra = "Renginys vyks TK mieste.\n\n![](https://bibliotekos.example/a.png)\n"
    broken, line = _issue_with(tmp_path, "su-klaidomis", extra)
    for args in (["-l", "savivaldybes"], ["--test-to", "redaktore@biblioteka.example"]):
        code, out, err = run("send", str(broken), *args)
        assert code == 65 and out == "" and err.count("\n") == 1, err
        assert f"{broken}:{line}: 'TK' marker left in the text" in err
        assert "lint found 2 error(s); nothing was sent" in err
    assert _outbox_files(settings) == []
    assert run("campaigns")[1].count("\n") <= 4, "no campaign was created"


def test_warnings_do_not_stop_a_test_copy(
    run: Run, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    advice, _ = _issue_with(tmp_path, "su-pastaba", "Žr. [svetainę](http://bibliotekos.example)\n")
    code, out, err = run("send", str(advice), "--test-to", "redaktore@biblioteka.example")
    assert (code, err) == (0, "") and "test copy to redaktore@biblioteka.example: sent" in out
    assert len(_outbox_files(settings)) == 1


@pytest.mark.parametrize(
    ("max_backlog", "tasks", "said"),
    [
        (None, 3, "handed 120 messages to the workers; follow"),
        (2, 2, "handed 100 messages to the workers (`newsletter scheduler` hands out the other 20"),
    ],
    ids=["all", "backlog-bound"],
)
def test_send_with_redis_hands_the_rows_to_the_broker(
    run: Run,
    database_url: str,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    max_backlog: int | None,
    tasks: int,
    said: str,
) -> None:
    add_people(database_url, 120)
    monkeypatch.setenv("NEWSLETTER_REDIS_URL", redis_server.url)
    if max_backlog is not None:
        monkeypatch.setattr(outbox, "MAX_BACKLOG", max_backlog)
    code, out, _ = run("send", ISSUE, "-l", "savivaldybes")
    assert code == 0 and said in " ".join(out.split())  # the console wraps long lines
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.llen("newsletter.send") == tasks, "batches of at most 50 row ids"
    assert states(database_url, _created(out)) == {"queued": 120}, "nothing sent without a worker"


def _copies(settings: Settings) -> Counter[str]:
    """Messages written per address to the outbox folder."""
    return Counter(
        str(
            message_from_bytes(path.read_bytes(), policy=policy.default)["To"]
            .addresses[0]
            .addr_spec
        )
        for path in _outbox_files(settings)
    )


def test_sending_an_issue_again_is_refused_unless_only_new_or_again_says_to_whom(
    run: Run, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    first_three = {f"asmuo{n:05d}@savivaldybe.example" for n in range(3)}
    add_people(database_url, 3)
    code, out, _ = run("send", ISSUE, "-l", "savivaldybes")
    first = _created(out)
    renamed = tmp_path / "kitu-vardu.md"  # the same issue under another file name
    renamed.write_text(Path(ISSUE).read_text(encoding="utf-8"), encoding="utf-8")
    for path in (ISSUE, str(renamed)):
        code, out, err = run("send", path, "-l", "savivaldybes")
        assert (code, out) == (1, "") and err == (
            f"error: campaign {first} (done) already covers 3 of these 3 recipients with this "
            "issue; nothing was sent (--only-new sends it to the other 0, --again to all 3)\n"
        )
    assert _copies(settings) == dict.fromkeys(first_three, 1)

    newcomers = {f"naujas{n:05d}@savivaldybe.example" for n in range(2)}
    add_people(database_url, 2, prefix="naujas")
    code, out, _ = run("send", ISSUE, "-l", "savivaldybes", "--dry-run")
    assert code == 0 and " ".join(out.split()) == (
        f"5 recipients would receive '2026-11-partnerystes-iniciatyvos'; campaign {first} "
        "(done) already covers 3 of these 5 recipients with this issue; nothing was sent"
    )
    code, out, err = run("send", ISSUE, "-l", "savivaldybes", "--only-new", "--again")
    assert code == 65 and "--only-new and --again exclude each other" in err
    code, out, _ = run("send", ISSUE, "-l", "savivaldybes", "--only-new")
    assert code == 0 and f"campaign {_created(out)}: 2 recipients" in out
    assert _copies(settings) == dict.fromkeys(first_three | newcomers, 1)
    code, out, _ = run("send", ISSUE, "-l", "savivaldybes", "--again")
    assert code == 0 and f"campaign {_created(out)}: 5 recipients" in out
    assert _copies(settings) == dict.fromkeys(first_three | newcomers, 2)


def test_smtp_with_a_loopback_base_url_is_refused_and_the_eml_folder_is_not(
    run: Run,
    settings: Settings,
    database_url: str,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_people(database_url, 2)
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "http://127.0.0.1:8000")  # the default
    code, out, err = run("send", ISSUE, "-l", "savivaldybes")
    assert (code, err) == (0, "") and len(_outbox_files(settings)) == 2
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", smtp_sink.url)
    for args in (["-l", "savivaldybes", "--again"], ["--test-to", "redaktore@biblioteka.example"]):
        code, out, err = run("send", ISSUE, *args)
        assert (code, out) == (78, "") and err.count("\n") == 1, err
        assert err.startswith("error: NEWSLETTER_BASE_URL http://127.0.0.1:8000 is not https://")
        assert "NEWSLETTER_ALLOW_INSECURE_BASE_URL=1 (--allow-insecure-base-url)" in err
    assert smtp_sink.received == []
    assert run("campaigns")[1].count("done") == 1, "no campaign was created"
    code, out, _ = run(
        "send", ISSUE, "--test-to", "redaktore@biblioteka.example", "--allow-insecure-base-url"
    )
    assert code == 0 and "test copy to redaktore@biblioteka.example: sent" in out
    assert [m.rcpt_tos for m in smtp_sink.wait_for(1)] == [["redaktore@biblioteka.example"]]


def test_parsing_helpers() -> None:
    assert parse_where(("municipality=Vilniaus m.", " role = direktorius ")) == {
        "municipality": "Vilniaus m.",
        "role": "direktorius",
    }
    with pytest.raises(InputError):
        parse_where(("=x",))
    moment = parse_at("2099-12-01 09:00")
    assert moment is not None and moment.tzinfo is not None
    assert parse_at("2099-12-01T09:00:00+02:00").utcoffset() == timedelta(hours=2)  # type: ignore[union-attr]
    with pytest.raises(InputError, match="expected a time"):
        parse_at("rytoj")
