"""Sending rows in this process, against the memory transport: each outcome lands in the row."""

from __future__ import annotations

import time
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from newsletter.audience.subscribers import unsubscribe
from newsletter.compose.render import CompiledIssue
from newsletter.db import transaction
from newsletter.delivery.message import message_id
from newsletter.delivery.transport import MemoryTransport
from newsletter.dispatch import campaign, outbox
from newsletter.dispatch.embedded import run_campaign
from newsletter.dispatch.sender import (
    CLAIM_BATCH,
    ROWS_HELD,
    SILENT_SERVER_TIMEOUTS,
    Outcome,
    Sender,
)
from newsletter.errors import (
    DeliveryConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from newsletter.models import Campaign, Subscriber, Suppression
from newsletter.settings import Settings
from tests.dispatch.support import add_people, rows, states
from tests.support.smtp import SmtpSink


def _start(settings: Settings, issue: CompiledIssue, people: int) -> int:
    add_people(settings.database, people)
    return campaign.create(settings, issue, ["savivaldybes"], {}).campaign_id


def _run(settings: Settings, campaign_id: int, transport: MemoryTransport) -> campaign.Progress:
    sender = Sender(settings, transport=transport)
    return run_campaign(settings, campaign_id, sender=sender)


def test_every_recipient_gets_one_personal_message(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _start(fast, issue, 25)
    transport = MemoryTransport()
    finished = _run(fast, campaign_id, transport)
    assert finished.status == "done" and finished.counts["sent"] == 25
    addresses = [recipient for _, recipient, _ in transport.sent]
    assert sorted(addresses) == sorted(row.email for row in rows(fast.database, campaign_id))
    key, domain = fast.key(), fast.from_address.rpartition("@")[2]
    for row in rows(fast.database, campaign_id):
        assert row.message_id == message_id(key, campaign_id, row.email, domain)
        assert (row.attempts, row.smtp_code, row.uncertain_before) == (1, 250, False)
    parsed = message_from_bytes(transport.sent[0][2], policy=policy.default)
    assert parsed["Subject"] == issue.subject
    assert "Vardenis Pavardenis" in parsed.get_body(("plain",)).get_content()
    assert parsed["List-Unsubscribe"].startswith(f"<{fast.base_url}/u/")


def test_a_temporary_refusal_is_retried_later(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _start(fast, issue, 3)
    transport = MemoryTransport()
    transport.fail_next(
        TransientDeliveryError("SMTP 451 try later", smtp_code=451, smtp_reply="try later")
    )
    finished = _run(fast, campaign_id, transport)
    assert finished.counts["sent"] == 3 and len(transport.sent) == 3
    first = rows(fast.database, campaign_id)[0]
    assert first.attempts == 2 and first.state == "sent" and not first.uncertain_before


def test_a_permanent_refusal_fails_once_and_counts_a_bounce(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _start(fast, issue, 2)
    transport = MemoryTransport()
    transport.fail_next(PermanentDeliveryError("SMTP 550 no such user", smtp_code=550))
    finished = _run(fast, campaign_id, transport)
    assert finished.counts["failed"] == 1 and finished.counts["sent"] == 1
    failed = next(row for row in rows(fast.database, campaign_id) if row.state == "failed")
    assert failed.attempts == 1 and failed.smtp_code == 550
    with transaction(fast.database) as session:
        person = session.get(Subscriber, failed.subscriber_id)
        assert person is not None and (person.status, person.bounce_count) == ("bounced", 1)
        assert session.execute(select(Suppression.reason)).scalars().all() == ["bounced"]


def test_an_unknown_outcome_is_retried_once_and_reported(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _start(fast, issue, 2)
    transport = MemoryTransport()
    transport.fail_next(UncertainDeliveryError("no reply after the message was sent"))
    finished = _run(fast, campaign_id, transport)  # waits out the 5 s lease, then retries
    assert finished.status == "done" and finished.counts["possible_duplicates"] == 1
    first = rows(fast.database, campaign_id)[0]
    assert (first.state, first.attempts, first.uncertain_before) == ("sent", 2, True)
    copies = [data for _, address, data in transport.sent if address == first.email]
    ids = {str(message_from_bytes(data, policy=policy.default)["Message-ID"]) for data in copies}
    assert len(copies) == 2 and ids == {first.message_id}, "both copies share the Message-ID"
    outcomes = {line.email: line.outcome for line in campaign.report(fast, campaign_id)}
    assert outcomes[first.email] == "uncertain (possible duplicate)"


def test_an_unsubscribe_during_the_campaign_is_honoured(
    fast: Settings, issue: CompiledIssue
) -> None:
    """Honoured for every row claimed after it: the last one is in a later batch."""
    people = 2 * CLAIM_BATCH + 5
    campaign_id = _start(fast, issue, people)
    last = rows(fast.database, campaign_id)[-1]

    class UnsubscribesMidway(MemoryTransport):
        def send(self, mail_from: str, recipient: str, data: bytes) -> str:
            if len(self.sent) == 3:
                with transaction(fast.database) as session:
                    unsubscribe(session, fast.key(), last.subscriber_id, None, "test")
            return super().send(mail_from, recipient, data)

    transport = UnsubscribesMidway()
    finished = _run(fast, campaign_id, transport)
    assert finished.counts["sent"] == people - 1 and finished.counts["suppressed"] == 1
    assert last.email not in {recipient for _, recipient, _ in transport.sent}
    assert rows(fast.database, campaign_id)[-1].state == "suppressed"


def test_a_refused_login_pauses_the_campaign(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _start(fast, issue, 3)
    transport = MemoryTransport()
    transport.fail_next(DeliveryConfigError("the mail server refuses our login (AUTH): 535"))
    with pytest.raises(DeliveryConfigError):
        _run(fast, campaign_id, transport)
    now = campaign.progress(fast, campaign_id)
    assert now.status == "paused" and "535" in now.status_reason
    assert now.counts["queued"] == 3 and transport.sent == []
    campaign.resume(fast, campaign_id)
    assert _run(fast, campaign_id, transport).counts["sent"] == 3


def test_smtp_with_links_recipients_cannot_reach_sends_nothing_and_pauses(
    fast: Settings, issue: CompiledIssue, smtp_sink: SmtpSink
) -> None:
    campaign_id = _start(fast, issue, 3)
    misconfigured = fast.replace(smtp_url=smtp_sink.url, base_url="https://localhost:8000")
    with pytest.raises(DeliveryConfigError, match="BASE_URL https://localhost:8000 names a host"):
        run_campaign(misconfigured, campaign_id)
    now = campaign.progress(fast, campaign_id)
    assert now.status == "paused" and "NEWSLETTER_ALLOW_INSECURE_BASE_URL" in now.status_reason
    assert now.counts["queued"] == 3 and smtp_sink.received == []
    campaign.resume(fast, campaign_id)
    lab = misconfigured.replace(allow_insecure_base_url=True)
    assert run_campaign(lab, campaign_id).counts["sent"] == 3
    assert len(smtp_sink.wait_for(3)) == 3


def test_a_value_that_cannot_go_in_a_header_fails_without_a_bounce(
    fast: Settings, issue: CompiledIssue
) -> None:
    add_people(fast.database, 1)
    with transaction(fast.database) as session:
        person = session.execute(select(Subscriber)).scalar_one()
        person.name = "Jonas\r\nBcc: visi@example.com"
    campaign_id = campaign.create(fast, issue, ["savivaldybes"], {}).campaign_id
    transport = MemoryTransport()
    finished = _run(fast, campaign_id, transport)
    assert finished.counts["failed"] == 1 and transport.sent == []
    (row,) = rows(fast.database, campaign_id)
    assert row.last_error.startswith("cannot build the message")
    with transaction(fast.database) as session:
        assert session.execute(select(Subscriber.bounce_count)).scalar_one() == 0


def test_a_test_copy_goes_to_one_address_on_no_list(fast: Settings, issue: CompiledIssue) -> None:
    add_people(fast.database, 5)
    campaign_id = campaign.create_test(fast, issue, "Redaktore@Biblioteka.example")
    transport = MemoryTransport()
    finished = _run(fast, campaign_id, transport)
    assert finished.counts["sent"] == 1
    ((_, recipient, data),) = transport.sent
    parsed = message_from_bytes(data, policy=policy.default)
    assert recipient == "redaktore@biblioteka.example"
    assert parsed["Subject"] == "[TEST] " + issue.subject
    (row,) = rows(fast.database, campaign_id)
    assert row.list_id is None and row.subscriber_id is None
    with transaction(fast.database) as session:
        assert session.get(Campaign, campaign_id).is_test  # type: ignore[union-attr]


def test_a_row_already_done_is_skipped(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _start(fast, issue, 2)
    transport = MemoryTransport()
    sender = Sender(fast, transport=transport)
    ids = [row.id for row in rows(fast.database, campaign_id)]
    first = [sender.send_row(row_id).state for row_id in ids]
    again = [sender.send_row(row_id).state for row_id in ids]  # a redelivered task
    assert first == ["sent", "sent"] and again == ["skipped", "skipped"]
    assert len(transport.sent) == 2 and states(fast.database, campaign_id) == {"sent": 2}
    assert outbox.SENT == "sent"


def test_outcomes_are_written_with_the_next_claim_and_never_left_behind(
    fast: Settings, issue: CompiledIssue, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = _start(fast, issue, 2 + CLAIM_BATCH)
    first, second, *rest = (row.id for row in rows(fast.database, campaign_id))
    sender = Sender(fast, transport=MemoryTransport())
    seen: list[tuple[int, str, str]] = []

    def look(outcome: Outcome) -> None:
        # What the database holds when the sender reports an outcome: already written.
        (row,) = [row for row in rows(fast.database, campaign_id) if row.id == outcome.row_id]
        seen.append((row.id, outcome.state, row.state))

    assert sender.send_rows([first, second], on_outcome=look) == []
    assert seen == [(first, "sent", "sent"), (second, "sent", "sent")]
    assert states(fast.database, campaign_id) == {"sent": 2, "queued": CLAIM_BATCH}

    # The claim of the next batch fails after a batch was sent: its sends are still
    # recorded, alone.
    claim_many = outbox.claim_many

    def broken_claim(session: object, row_ids: list[int], *args: object) -> object:
        if first in row_ids:
            raise RuntimeError("database went away")
        return claim_many(session, row_ids, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "claim_many", broken_claim)
    with pytest.raises(RuntimeError, match="database went away"):
        sender.send_rows([*rest, first])
    assert states(fast.database, campaign_id) == {"sent": 2 + CLAIM_BATCH}


def _attempts(url: str, campaign_id: int) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for row in rows(url, campaign_id):
        found.setdefault(row.state, set()).add(row.attempts)
    return found


def test_the_next_batch_is_claimed_while_one_is_sent(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _start(fast, issue, 3 * CLAIM_BATCH)
    ids = [row.id for row in rows(fast.database, campaign_id)]
    seen: list[dict[str, int]] = []

    class Watching(MemoryTransport):
        def send(self, mail_from: str, recipient: str, data: bytes) -> str:
            if len(self.sent) == CLAIM_BATCH - 1:  # the first batch's last message
                deadline = time.monotonic() + 10
                while states(fast.database, campaign_id).get("sending", 0) < 2 * CLAIM_BATCH:
                    assert time.monotonic() < deadline, "the next batch was never claimed"
                    time.sleep(0.01)
                seen.append(states(fast.database, campaign_id))
            return super().send(mail_from, recipient, data)

    sender = Sender(fast, transport=Watching())
    assert sender.send_rows(ids) == []
    # While the first batch went out, the second was already claimed (both ``sending``),
    # and the third not yet: never more than ROWS_HELD rows held.
    assert seen == [{"sending": ROWS_HELD, "queued": CLAIM_BATCH}]
    assert states(fast.database, campaign_id) == {"sent": 3 * CLAIM_BATCH}


def test_a_pause_gives_back_the_batch_claimed_ahead(fast: Settings, issue: CompiledIssue) -> None:
    campaign_id = _start(fast, issue, 2 * CLAIM_BATCH)
    ids = [row.id for row in rows(fast.database, campaign_id)]
    transport = MemoryTransport()
    silent = TransientDeliveryError("timed out", timed_out=True)
    transport.fail_next(*[silent] * SILENT_SERVER_TIMEOUTS)
    sender = Sender(fast, transport=transport)
    assert sender.send_rows(ids) == []
    now = campaign.progress(fast, campaign_id)
    assert now.status == "paused" and transport.sent == []
    # The first batch: three timeouts (retried later), the rest given back; the second,
    # claimed while the first was sent, given back with its attempt uncounted.
    assert _attempts(fast.database, campaign_id) == {"queued": {0, 1}}
    assert states(fast.database, campaign_id) == {"queued": 2 * CLAIM_BATCH}


def test_a_refused_login_gives_back_the_batch_claimed_ahead(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _start(fast, issue, 2 * CLAIM_BATCH)
    ids = [row.id for row in rows(fast.database, campaign_id)]
    transport = MemoryTransport()
    transport.fail_next(DeliveryConfigError("the mail server refuses our login (AUTH): 535"))
    with pytest.raises(DeliveryConfigError):
        Sender(fast, transport=transport).send_rows(ids)
    assert states(fast.database, campaign_id) == {"queued": 2 * CLAIM_BATCH}
    assert sum(row.attempts for row in rows(fast.database, campaign_id)) == 1


def test_rows_past_the_budget_are_handed_back_unclaimed(
    fast: Settings, issue: CompiledIssue
) -> None:
    campaign_id = _start(fast, issue, 3 * CLAIM_BATCH)
    ids = [row.id for row in rows(fast.database, campaign_id)]

    class Slow(MemoryTransport):
        def send(self, mail_from: str, recipient: str, data: bytes) -> str:
            time.sleep(0.02)
            return super().send(mail_from, recipient, data)

    left = Sender(fast, transport=Slow()).send_rows(ids, budget_seconds=0.1)
    # The budget ran out during the first batch: the batch claimed ahead meanwhile was
    # sent, nothing after it claimed.
    assert left == ids[2 * CLAIM_BATCH :]
    assert states(fast.database, campaign_id) == {"sent": 2 * CLAIM_BATCH, "queued": CLAIM_BATCH}
