"""Access logs without tokens: paths under ``/u/``, ``/p/``, ``/v/`` and ``/confirm/`` are redacted.

A token in a log is as good as the link it came from (it unsubscribes or shows someone's
issue), and logs travel further than the database. The filter rewrites the path argument
of uvicorn's access log record; the rest of the line stays as uvicorn writes it.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

TOKEN_PATH = re.compile(r"^(/(?:u|p|confirm)/|/v/\d+/)[^?\s]*")
#: The people search: its query may be someone's address or name, which must not outlive
#: their erasure in a log.
PERSON_SEARCH = re.compile(r"^/editor/people(?:\?|$)")


def redact(path: str) -> str:
    """Return ``path`` with the token part replaced by ``[token]`` and any query dropped.

    The query of a people search is dropped too.
    """
    replaced, count = TOKEN_PATH.subn(r"\1[token]", path)
    return replaced.split("?", 1)[0] if count or PERSON_SEARCH.match(path) else replaced


class RedactTokens(logging.Filter):
    """Rewrite uvicorn access records, ``(client, method, path, http_version, status)``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """Return uvicorn's logging configuration with the redacting filter on the access log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    # On the logger, not a handler: every handler attached later sees the redacted record.
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_tokens"]
    return config
