"""Serving the app with uvicorn, ending the preview's event streams first on shutdown.

An open preview keeps a server-sent-events response running for as long as the page is
open. uvicorn waits for running responses before it stops, and after its grace period
cancels them with an error in the log; telling the streams to end first lets it stop
at once and cleanly.
"""

from __future__ import annotations

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


def web_server(app: Starlette, host: str, port: int) -> WebServer:
    """A server for ``app`` with the token-redacting access log."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(),
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        ws="none",
    )
    return WebServer(config, before_shutdown=app.state.hub.close)
