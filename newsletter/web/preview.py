"""Issue previews for editors: compile on change, keep the last good render, push reloads.

``PreviewHub`` keeps one ``PreviewState`` per issue file. A state is recompiled when the
fingerprint (inode, modification time and size) of the issue file, any email template or the
sponsor registry has changed, so a page reload is always fresh even without the watcher.
With ``watch`` on, a watchfiles task notices saves and tells every open preview of the
affected issues through a per-connection queue, which the server-sent-events endpoint
turns into an event; the page then fetches the new render.

A compile error never replaces the last good render: the state keeps both, and the page
shows the error above the email it still has.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from watchfiles import awatch

from newsletter.compose.render import CompiledIssue
from newsletter.errors import IssueError, NewsletterError, NotFoundError
from newsletter.settings import Settings
from newsletter.web import issues

log = logging.getLogger(__name__)

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
ISSUE_SUFFIX = ".md"
# watchfiles groups changes for ``STEP_MS`` after the last one before yielding; the
# default 50 ms plus a 1600 ms debounce cap would eat most of the 300 ms budget.
STEP_MS = 30
DEBOUNCE_MS = 150
# Only when the system's file notifications are unavailable.
POLL_MS = 100

Fingerprint = tuple[tuple[str, int, int, int], ...]


@dataclass
class PreviewState:
    """What the preview of one issue shows now."""

    slug: str
    version: int = 0  # counts compiles, good or not
    render_version: int = 0  # the version of ``compiled``
    compiled: CompiledIssue | None = None  # the last good compile
    error: str = ""  # why the newest attempt failed; '' when it succeeded
    findings: list[issues.Finding] = field(default_factory=list)
    fingerprint: Fingerprint = ()


class PreviewHub:
    """Compiled previews, by issue slug, and the subscribers waiting for their next version."""

    def __init__(self, settings: Settings, *, watch: bool = True) -> None:
        self.settings = settings
        self.watch = watch
        self._states: dict[str, PreviewState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners: dict[str, set[asyncio.Queue[PreviewState | None]]] = {}
        self.watching = False
        self.closed = False

    # Issues on disk ----------------------------------------------------------------------

    def issue_path(self, slug: str) -> Path:
        """Return the file of issue ``slug``; NotFoundError for unknown or unsafe names,
        and for a link that leads out of the issues folder."""
        path = self.settings.issues_dir / f"{slug}{ISSUE_SUFFIX}"
        if not SLUG.match(slug) or not path.is_file():
            raise NotFoundError(f"issue {slug!r}: no such file in {self.settings.issues_dir}")
        try:
            return issues.inside_folder(path, self.settings.issues_dir)
        except IssueError as exc:
            raise NotFoundError(str(exc)) from None

    def slugs(self) -> list[str]:
        """Slugs of every issue file, newest name first (names start with the date).

        A link that leads out of the issues folder is left out, with a warning in the log.
        """
        folder = self.settings.issues_dir
        if not folder.is_dir():
            return []
        names = []
        for path in folder.glob(f"*{ISSUE_SUFFIX}"):
            if not path.is_file() or not SLUG.match(path.stem):
                continue
            try:
                names.append(issues.inside_folder(path, folder).stem)
            except IssueError as exc:
                log.warning("not listed: %s", exc)
        return sorted(names, reverse=True)

    def fingerprint(self, slug: str) -> Fingerprint:
        """Modification times and sizes of everything a compile of ``slug`` reads."""
        files = [self.issue_path(slug), self.settings.sponsors_file]
        if self.settings.templates_dir.is_dir():
            files.extend(sorted(p for p in self.settings.templates_dir.rglob("*") if p.is_file()))
        marks = []
        for path in files:
            try:
                stat = path.stat()
            except FileNotFoundError:
                marks.append((str(path), 0, 0, 0))
                continue
            # The inode too: a save from the editor renames a new file into place, which can
            # keep both size and modification time within the file system's clock tick.
            marks.append((str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size))
        return tuple(marks)

    # Compiling ---------------------------------------------------------------------------

    async def state(self, slug: str) -> PreviewState:
        """Return the current state of ``slug``, compiling first when its inputs changed."""
        lock = self._locks.setdefault(slug, asyncio.Lock())
        async with lock:
            fingerprint = self.fingerprint(slug)
            state = self._states.setdefault(slug, PreviewState(slug=slug))
            if state.fingerprint != fingerprint:
                await anyio.to_thread.run_sync(self._compile_into, state, fingerprint)
            return state

    def _compile_into(self, state: PreviewState, fingerprint: Fingerprint) -> None:
        """Compile the issue and lint it; on failure keep the last good compile."""
        path = self.issue_path(state.slug)
        state.version += 1
        state.fingerprint = fingerprint
        try:
            compiled = issues.compile_issue(path, self.settings)
            findings = issues.lint_issue(path, compiled, self.settings)
        except NewsletterError as exc:
            state.error = str(exc)
            return
        except Exception as exc:  # a bug in compiling must not leave the editor a blank page
            log.exception("compiling %s failed", path)
            state.error = f"{path}: {type(exc).__name__}: {exc}"
            return
        state.compiled = compiled
        state.render_version = state.version
        state.error = ""
        state.findings = findings

    # Live reload -------------------------------------------------------------------------

    def listen(self, slug: str) -> asyncio.Queue[PreviewState | None]:
        """Return a queue that receives the state of ``slug`` after each change (None: stop)."""
        queue: asyncio.Queue[PreviewState | None] = asyncio.Queue(maxsize=16)
        self._listeners.setdefault(slug, set()).add(queue)
        if self.closed:
            queue.put_nowait(None)
        return queue

    def forget(self, slug: str, queue: asyncio.Queue[PreviewState | None]) -> None:
        """Stop sending changes of ``slug`` to ``queue``."""
        self._listeners.get(slug, set()).discard(queue)

    def close(self) -> None:
        """Tell every listener to stop (the server is shutting down)."""
        self.closed = True
        for queues in self._listeners.values():
            for queue in list(queues):
                _put_newest(queue, None)

    async def notify_changed(self) -> None:
        """Recompile every issue someone is watching and send new versions to its listeners."""
        for slug, queues in list(self._listeners.items()):
            if not queues:
                continue
            before = self._states.get(slug)
            old_version = before.version if before else -1
            try:
                state = await self.state(slug)
            except NotFoundError:
                continue  # the file was removed or renamed; the page keeps what it shows
            if state.version == old_version:
                continue
            for queue in list(queues):
                _put_newest(queue, state)

    def watched_paths(self) -> list[Path]:
        """Folders to watch recursively: the issues and the email templates."""
        folders = [self.settings.issues_dir, self.settings.templates_dir]
        return [folder for folder in folders if folder.is_dir()]

    async def _watch(
        self, paths: list[Path], stop: anyio.Event, *, recursive: bool, polling: bool = False
    ) -> None:
        async for _changes in awatch(
            *paths,
            stop_event=stop,
            step=STEP_MS,
            debounce=DEBOUNCE_MS,
            recursive=recursive,
            watch_filter=None,
            force_polling=polling,
            poll_delay_ms=POLL_MS,
        ):
            await self.notify_changed()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Watch the files while the app runs (when ``watch`` is on)."""
        if not self.watch:
            yield
            return
        stop = anyio.Event()
        async with anyio.create_task_group() as tasks:
            if paths := self.watched_paths():
                tasks.start_soon(self._watch_guarded, paths, stop, True)
            folder = self.settings.sponsors_file.resolve().parent
            if folder.is_dir():
                # Not recursive: the registry's folder is often the repository root.
                tasks.start_soon(self._watch_guarded, [folder], stop, False)
            self.watching = True
            try:
                yield
            finally:
                self.watching = False
                stop.set()
                tasks.cancel_scope.cancel()

    async def _watch_guarded(self, paths: list[Path], stop: anyio.Event, recursive: bool) -> None:
        """Watch with the system's notifications; poll when they are not available."""
        try:
            await self._watch(paths, stop, recursive=recursive)
            return
        except OSError as exc:  # e.g. the inotify watch limit is reached
            log.warning("file notifications unavailable (%s); polling %s instead", exc, paths)
        try:
            await self._watch(paths, stop, recursive=recursive, polling=True)
        except OSError as exc:  # previews still show fresh files when reloaded
            log.warning("live reload is off: cannot watch %s: %s", paths, exc)


def _put_newest(queue: asyncio.Queue[PreviewState | None], item: PreviewState | None) -> None:
    """Put ``item``, dropping the oldest entry when full: a slow page needs only the newest."""
    if queue.full():
        with suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
