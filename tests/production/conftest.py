"""Fixtures of the production tests: the dispatch tests' compiled issue, settings and workers."""

from __future__ import annotations

from tests.dispatch.conftest import issue, postgres_fast, start_worker

__all__ = ["issue", "postgres_fast", "start_worker"]
