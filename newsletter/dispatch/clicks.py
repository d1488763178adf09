"""Aggregate click counting: how often each link of a campaign was followed, never by whom.

With ``NEWSLETTER_CLICK_COUNTING=aggregate`` a campaign's counted links
(``newsletter.compose.links``) are replaced, once, when the campaign is created, by
``<base>/c/<campaign>/<number>/<signature>``: the same URL for every recipient, signed
with a key derived from the instance key. The redirect reads the target from
``campaign_links`` only, so it can lead nowhere else, and every bad link gets the same
404.

A click is one row inserted into ``click_events`` (insert-only, so concurrent clicks
never overwrite one another; the clicks waiting at one moment are inserted in one
transaction, ``ClickWriter``): the link, the time, HEAD or not, and a visitor hash of
the client's address and user agent under a random salt of the day (``click_salts``,
deleted the next day, never beside the counts). Within a day the hash tells one
client's clicks apart, which gives an estimate of distinct readers and finds scanners;
afterwards it tells nothing. Reports fold the events of past days into the counts on
``campaign_links`` and ``campaign_readers`` and delete them.

Security scanners (Microsoft Safe Links, Mimecast, Proofpoint) fetch the links of a
message before its reader sees it. Counted as scanner clicks, not reader clicks: every
HEAD request, and every click of a client that fetched more than half of the issue's
links (at least ``BURST_LINKS``) within ``BURST_SECONDS``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import queue
import secrets
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field, replace
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from newsletter.compose.links import relink
from newsletter.db import engine_for, transaction
from newsletter.errors import NotFoundError
from newsletter.models import (
    Campaign,
    CampaignLink,
    CampaignReaders,
    ClickEvent,
    ClickSalt,
    utcnow,
)
from newsletter.settings import Settings

if TYPE_CHECKING:
    from newsletter.compose.render import CompiledIssue

# 16 characters of base64: 96 bits of HMAC, beyond guessing over HTTP.
SIGNATURE_LENGTH = 16
BURST_SECONDS = 10.0
BURST_LINKS = 3
# Clicks inserted in one transaction at most (those waiting when the writer is free).
WRITE_BATCH = 500
# Cells of a CSV export that a spreadsheet would take for a formula (as campaign reports).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def counting(settings: Settings) -> bool:
    """True when new campaigns get counted links."""
    return settings.click_counting == "aggregate"


# Signed links --------------------------------------------------------------------------


def link_key(key: bytes) -> bytes:
    """The key that signs click links, derived from the instance key (apart from tokens)."""
    return hmac.new(key, b"newsletter click links", hashlib.sha256).digest()


def signature(signing_key: bytes, campaign_id: int, number: int) -> str:
    """The signature of link ``number`` of ``campaign_id``."""
    digest = hmac.new(signing_key, f"{campaign_id}/{number}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_LENGTH]


def click_path(signing_key: bytes, campaign_id: int, number: int) -> str:
    """``/c/<campaign>/<number>/<signature>``."""
    return f"/c/{campaign_id}/{number}/{signature(signing_key, campaign_id, number)}"


def is_signed(signing_key: bytes, campaign_id: int, number: int, given: str) -> bool:
    """True when ``given`` is the link's signature (compared in constant time)."""
    return hmac.compare_digest(signature(signing_key, campaign_id, number), given)


def attach_links(
    session: Session, settings: Settings, campaign_id: int, compiled: CompiledIssue
) -> CompiledIssue:
    """Record the issue's counted links for the campaign; return it with them replaced."""
    base = settings.base_url.rstrip("/")
    signing_key = link_key(settings.key())
    relinked = relink(
        compiled.html, compiled.text, lambda n: base + click_path(signing_key, campaign_id, n)
    )
    session.add_all(
        CampaignLink(
            campaign_id=campaign_id,
            number=link.number,
            url=link.url,
            text=link.text[:500],
            section=link.section[:300],
            sponsor=link.sponsor[:200],
        )
        for link in relinked.links
    )
    session.add(CampaignReaders(campaign_id=campaign_id))
    return replace(compiled, html=relinked.html, text=relinked.text)


# Following a link ----------------------------------------------------------------------


class ClickWriter:
    """Inserts the clicks of this process: whatever waits, in one transaction (group commit).

    A click's request waits until its row is committed, so a redirect answered is a
    click counted. Concurrent clicks share a transaction instead of queueing for SQLite's
    write lock one by one, where a waiting thread sleeps in its busy handler (1, 2, 5 …
    up to 100 ms) between tries.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self._waiting: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def write(self, row: dict[str, object]) -> None:
        """Insert ``row`` into ``click_events``; return once committed, or raise its error."""
        pending = _Pending(row)
        self._ensure_running()
        self._waiting.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error

    def _ensure_running(self) -> None:
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="clicks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._waiting.get()]
            while len(batch) < WRITE_BATCH:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            error: BaseException | None = None
            try:
                with engine_for(self.database).begin() as connection:
                    connection.execute(insert(ClickEvent), [pending.row for pending in batch])
            except Exception as exc:  # handed to each waiting request, which raises it
                error = exc
            for pending in batch:
                pending.error = error
                pending.done.set()


@dataclass
class _Pending:
    row: dict[str, object]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class ClickCounter:
    """Resolve a clicked link to its target and count the click; one per web process.

    Keeps the derived signing key and the day's salt in memory: per click, one indexed
    read of the link and one inserted row (``ClickWriter``).
    """

    def __init__(self, settings: Settings) -> None:
        self.database = settings.database
        self.signing_key = link_key(settings.key())
        self.counting = counting(settings)
        self.writer = ClickWriter(settings.database)
        self._salt: tuple[str, bytes] = ("", b"")
        self._lock = threading.Lock()

    def follow(
        self, campaign_id: int, number: int, given: str, client: str, agent: str, head: bool
    ) -> str | None:
        """The link's target, having counted the click; None for any bad or unknown link."""
        if not is_signed(self.signing_key, campaign_id, number, given):
            return None
        with engine_for(self.database).connect() as connection:
            target = connection.execute(
                select(CampaignLink.url).where(
                    CampaignLink.campaign_id == campaign_id, CampaignLink.number == number
                )
            ).scalar_one_or_none()
        if target is not None and self.counting:
            now = utcnow()
            visitor = self.visitor(client, agent, now)
            row = {"campaign_id": campaign_id, "number": number, "at": now}
            self.writer.write({**row, "visitor": visitor, "head": head})
        return target

    def visitor(self, client: str, agent: str, now: datetime) -> str:
        """The client's hash under the day's salt (32 hex digits)."""
        salt = self.salt(now.date().isoformat())
        message = f"{client}\n{agent}".encode("utf-8", "replace")
        return hmac.new(salt, message, hashlib.sha256).hexdigest()[:32]

    def salt(self, day: str) -> bytes:
        """The salt of ``day``, made by the first process that needs it; older ones deleted."""
        with self._lock:
            if self._salt[0] != day:
                self._salt = (day, day_salt(self.database, day))
            return self._salt[1]


def day_salt(database: str, day: str) -> bytes:
    """Read or make the salt of ``day`` (every process gets the same one) and drop older ones."""
    engine = engine_for(database)
    dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with transaction(database) as session:
        session.execute(delete(ClickSalt).where(ClickSalt.day < day))
        session.execute(
            dialect_insert(ClickSalt)
            .values(day=day, salt=secrets.token_hex(32))
            .on_conflict_do_nothing(index_elements=["day"])
        )
        salt = session.scalar(select(ClickSalt.salt).where(ClickSalt.day == day))
    return bytes.fromhex(salt or "")


# Counting ------------------------------------------------------------------------------


class Event(NamedTuple):
    """A click as the tally sees it."""

    campaign_id: int
    number: int
    at: datetime
    visitor: str
    head: bool


@dataclass
class Tally:
    """Counts of a set of events: per (campaign, link) and distinct readers per campaign."""

    clicks: Counter[tuple[int, int]] = field(default_factory=Counter)
    scanner_clicks: Counter[tuple[int, int]] = field(default_factory=Counter)
    readers: Counter[tuple[int, int]] = field(default_factory=Counter)
    campaign_readers: Counter[int] = field(default_factory=Counter)


def burst_threshold(links: int) -> int:
    """Distinct links within ``BURST_SECONDS`` that make a client a scanner: most of them."""
    return max(BURST_LINKS, links // 2 + 1)


def scanner_flags(clicks: Sequence[Event], threshold: int) -> list[bool]:
    """For one client's clicks in time order: which are a scanner's (HEAD, or in a burst).

    A window of ``BURST_SECONDS`` slides over the clicks, keeping how often each link is
    in it, so a client with thousands of clicks costs a pass, not a pass per click.
    """
    flags = [click.head for click in clicks]
    inside: Counter[int] = Counter()
    end = marked = 0  # the window is clicks[start:end]; flags[:marked] are settled
    for start, first in enumerate(clicks):
        while end < len(clicks) and (clicks[end].at - first.at).total_seconds() <= BURST_SECONDS:
            inside[clicks[end].number] += 1
            end += 1
        if len(inside) >= threshold:
            begin = max(start, marked)
            flags[begin:end] = [True] * (end - begin)
            marked = end
        inside[first.number] -= 1
        if not inside[first.number]:
            del inside[first.number]
    return flags


def tally(events: Iterable[Event], links_per_campaign: dict[int, int]) -> Tally:
    """Count ``events``: reader and scanner clicks, distinct readers (per day, summed)."""
    by_client: dict[tuple[int, str, str], list[Event]] = defaultdict(list)
    for event in events:
        moment = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
        event = event._replace(at=moment)
        by_client[(event.campaign_id, moment.date().isoformat(), event.visitor)].append(event)
    result = Tally()
    for (campaign_id, _day, _visitor), clicks in by_client.items():
        clicks.sort(key=lambda click: click.at)
        threshold = burst_threshold(links_per_campaign.get(campaign_id, 0))
        read: set[int] = set()
        for click, scanner in zip(clicks, scanner_flags(clicks, threshold), strict=True):
            key = (campaign_id, click.number)
            if scanner:
                result.scanner_clicks[key] += 1
            else:
                result.clicks[key] += 1
                read.add(click.number)
        for number in read:
            result.readers[(campaign_id, number)] += 1
        result.campaign_readers[campaign_id] += 1 if read else 0
    return result


def _links_per_campaign(session: Session, campaign_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(CampaignLink.campaign_id, func.count())
        .where(CampaignLink.campaign_id.in_(ids))
        .group_by(CampaignLink.campaign_id)
    )
    return {campaign_id: count for campaign_id, count in rows}


def _midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date(), time(), UTC)


EVENT_COLUMNS = (
    ClickEvent.campaign_id,
    ClickEvent.number,
    ClickEvent.at,
    ClickEvent.visitor,
    ClickEvent.head,
)


def fold_past_days(session: Session, now: datetime | None = None) -> int:
    """Add the events of days before today to the counts and delete them; return how many.

    ``DELETE … RETURNING``: two reports folding at once cannot both take an event.
    """
    midnight = _midnight(now or utcnow())
    taken = session.execute(
        delete(ClickEvent).where(ClickEvent.at < midnight).returning(*EVENT_COLUMNS)
    ).all()
    session.execute(delete(ClickSalt).where(ClickSalt.day < midnight.date().isoformat()))
    if not taken:
        return 0
    events = [Event(*row) for row in taken]
    counts = tally(events, _links_per_campaign(session, (e.campaign_id for e in events)))
    for key in counts.clicks | counts.scanner_clicks:
        session.execute(
            update(CampaignLink)
            .where(CampaignLink.campaign_id == key[0], CampaignLink.number == key[1])
            .values(
                clicks=CampaignLink.clicks + counts.clicks[key],
                scanner_clicks=CampaignLink.scanner_clicks + counts.scanner_clicks[key],
                readers=CampaignLink.readers + counts.readers[key],
            )
        )
    for campaign_id, readers in counts.campaign_readers.items():
        session.execute(
            update(CampaignReaders)
            .where(CampaignReaders.campaign_id == campaign_id)
            .values(readers=CampaignReaders.readers + readers)
        )
    return len(events)


def _today(session: Session, campaign_id: int | None, now: datetime) -> Tally:
    """Today's events (not folded yet), counted."""
    query = select(*EVENT_COLUMNS).where(ClickEvent.at >= _midnight(now))
    if campaign_id is not None:
        query = query.where(ClickEvent.campaign_id == campaign_id)
    events = [Event(*row) for row in session.execute(query)]
    return tally(events, _links_per_campaign(session, (e.campaign_id for e in events)))


# Reports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkClicks:
    """One link of a campaign and how it was followed."""

    number: int
    url: str
    text: str
    section: str
    sponsor: str
    clicks: int
    readers: int
    scanner_clicks: int


@dataclass(frozen=True)
class CampaignClicks:
    """A campaign's links with their counts, and its distinct readers (an estimate)."""

    campaign_id: int
    links: tuple[LinkClicks, ...]
    readers: int

    @property
    def clicks(self) -> int:
        """Reader clicks on every link."""
        return sum(link.clicks for link in self.links)

    @property
    def scanner_clicks(self) -> int:
        """Clicks counted as scanners'."""
        return sum(link.scanner_clicks for link in self.links)


def campaign_clicks(settings: Settings, campaign_id: int) -> CampaignClicks:
    """The campaign's links and counts up to now; NotFoundError for an unknown campaign."""
    now = utcnow()
    with transaction(settings.database) as session:
        if session.get(Campaign, campaign_id) is None:
            raise NotFoundError(f"campaign {campaign_id} does not exist")
        fold_past_days(session, now)
        today = _today(session, campaign_id, now)
        rows = session.scalars(
            select(CampaignLink)
            .where(CampaignLink.campaign_id == campaign_id)
            .order_by(CampaignLink.number)
        ).all()
        stored = session.scalar(
            select(CampaignReaders.readers).where(CampaignReaders.campaign_id == campaign_id)
        )
    links = tuple(_with_today(row, today) for row in rows)
    return CampaignClicks(campaign_id, links, (stored or 0) + today.campaign_readers[campaign_id])


def _with_today(row: CampaignLink, today: Tally) -> LinkClicks:
    key = (row.campaign_id, row.number)
    return LinkClicks(
        row.number,
        row.url,
        row.text,
        row.section,
        row.sponsor,
        row.clicks + today.clicks[key],
        row.readers + today.readers[key],
        row.scanner_clicks + today.scanner_clicks[key],
    )


@dataclass(frozen=True)
class SponsorIssue:
    """A sponsor's reader clicks in one campaign."""

    campaign_id: int
    subject: str
    date: str
    clicks: int


@dataclass(frozen=True)
class SponsorClicks:
    """A sponsor's reader clicks across issues, newest campaign first."""

    sponsor: str
    issues: tuple[SponsorIssue, ...]

    @property
    def clicks(self) -> int:
        """Clicks in every issue."""
        return sum(issue.clicks for issue in self.issues)


def sponsor_clicks(settings: Settings) -> list[SponsorClicks]:
    """Per sponsor, its links' reader clicks in every campaign that credited it."""
    now = utcnow()
    with transaction(settings.database) as session:
        fold_past_days(session, now)
        today = _today(session, None, now)
        rows = session.execute(
            select(CampaignLink, Campaign.subject, Campaign.started_at, Campaign.created_at)
            .join(Campaign, Campaign.id == CampaignLink.campaign_id)
            .where(CampaignLink.sponsor != "")
            .order_by(CampaignLink.sponsor, Campaign.id.desc())
        ).all()
    per_sponsor: dict[str, dict[int, SponsorIssue]] = defaultdict(dict)
    for link, subject, started_at, created_at in rows:
        clicks = link.clicks + today.clicks[(link.campaign_id, link.number)]
        issues = per_sponsor[link.sponsor]
        before = issues.get(link.campaign_id)
        date = (started_at or created_at).date().isoformat()
        total = clicks + (before.clicks if before else 0)
        issues[link.campaign_id] = SponsorIssue(link.campaign_id, subject, date, total)
    return [
        SponsorClicks(sponsor, tuple(issues.values())) for sponsor, issues in per_sponsor.items()
    ]


def _cell(value: object) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


# In the order of LinkClicks' fields.
CAMPAIGN_COLUMNS = (
    "link",
    "url",
    "text",
    "section",
    "sponsor",
    "clicks",
    "readers",
    "scanner_clicks",
)
SPONSOR_COLUMNS = ("sponsor", "campaign", "subject", "date", "clicks")


def campaign_csv(report: CampaignClicks) -> str:
    """A campaign's clicks per link as CSV, safe to open in a spreadsheet."""
    return _csv(
        CAMPAIGN_COLUMNS,
        (astuple(row) for row in report.links),
    )


def sponsor_csv(report: Sequence[SponsorClicks]) -> str:
    """Per sponsor and campaign, reader clicks, as CSV."""
    return _csv(
        SPONSOR_COLUMNS,
        (
            (entry.sponsor, issue.campaign_id, issue.subject, issue.date, issue.clicks)
            for entry in report
            for issue in entry.issues
        ),
    )
