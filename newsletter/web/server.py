"""Serving the app with uvicorn, ending the preview's event streams first on shutdown.

An open preview keeps a server-sent-events response running for as long as the page is
open. uvicorn waits for running responses before it stops, and after its grace period
cancels them with an error in the log; telling the streams to end first lets it stop
at once and cleanly.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the proxies named in
uvicorn's ``FORWARDED_ALLOW_IPS``, and from nobody when it is unset. uvicorn's own default
trusts 127.0.0.1: then any client of a proxy on this host that passes the header on
unchanged, or any local process, picks the address the login and subscribe limits count.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette

from newsletter.web.logs import log_config

# Seconds uvicorn waits for other running responses before cancelling them.
GRACEFUL_SHUTDOWN_SECONDS = 5


class WebServer(uvicorn.Server):
    """uvicorn's server, calling ``before_shutdown`` as soon as it is asked to stop."""

    def __init__(self, config: uvicorn.Config, before_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self.before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the event streams, then shut down as uvicorn does."""
        self.before_shutdown()
        await super().shutdown(sockets)


def trusted_proxies() -> str:
    """The proxies whose forwarded headers are believed (comma-separated), or '' for none."""
    return os.environ.get("FORWARDED_ALLOW_IPS", "").strip()


def web_server(app: Starlette, host: str, port: int) -> WebServer:
    """A server for ``app`` with the token-redacting access log."""
    proxies = trusted_proxies()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(),
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        ws="none",
    )
    return WebServer(config, before_shutdown=app.state.hub.close)
