"""Serving the app with uvicorn, in a thread of its own, on a socket bound before it starts.

The server never runs in the main thread, so uvicorn installs no signal handlers: whoever owns the
process decides when it stops (the daemon's SIGTERM stops the scheduler and the server; `lifecycle
serve` stops on SIGTERM or SIGINT). Binding the socket here, not in uvicorn, turns "address in use"
into a one-line error before anything starts, and lets port 0 pick a free port that `url` reports.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from .. import settings as s
from ..errors import WebError
from ..settings import Settings

log = logging.getLogger("lifecycle.web")

MAX_REQUEST_HEAD_BYTES = 16 * 1024  # request line and headers; a longer one is answered 400 by the server
STARTUP_TIMEOUT = 10.0
SHUTDOWN_GRACE_SECONDS = 5  # requests in flight get this long to finish on stop


class WebServer:
    """One uvicorn server for `app` on host:port; `start()` binds and serves, `stop()` drains and closes."""

    def __init__(self, app: ASGIApp, host: str, port: int, *, trusted_proxies: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.server = uvicorn.Server(uvicorn.Config(
            app, http="h11", loop="asyncio", lifespan="off",
            log_config=None,  # keep the process's logging; AccessLog writes the (token-masked) access log
            access_log=False, server_header=False, proxy_headers=True, forwarded_allow_ips=trusted_proxies,
            h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES, timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        ))
        self.socket: socket.socket | None = None
        self.thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, app: ASGIApp, settings: Settings, host: str | None = None,
                      port: int | None = None) -> WebServer:
        """Address from LIFECYCLE_HTTP_HOST/PORT unless given (the command line's --host/--port)."""
        return cls(app, host if host is not None else settings[s.HTTP_HOST],
                   port if port is not None else settings[s.HTTP_PORT],
                   trusted_proxies=settings[s.HTTP_TRUSTED_PROXIES])

    @property
    def url(self) -> str:
        """http://host:port/; once started, with the port actually bound (port 0 picks one)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        """Bind, then serve in a thread; returns once the server accepts connections."""
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            self.socket = socket.create_server((self.host, self.port), family=family)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise WebError(f"the web service cannot listen on {self.host}:{self.port}: {reason}",
                           "set LIFECYCLE_HTTP_HOST/LIFECYCLE_HTTP_PORT (or --host/--port) to a free local "
                           "address, or LIFECYCLE_SERVE_WITH_DAEMON=false to run the daemon without it") from None
        self.port = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, name="web",
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise WebError("the web service did not start", "run again with --verbose to see why")
            time.sleep(0.01)
        log.info("web service listening on %s", self.url)

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to the grace period), close the socket."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=SHUTDOWN_GRACE_SECONDS + 5)
        if self.socket is not None:
            self.socket.close()

    def run_forever(self) -> None:
        """`lifecycle serve`: serve until SIGTERM or SIGINT."""
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        self.start()
        try:
            while not stopping.wait(0.5):
                if not self.alive():
                    raise WebError("the web server stopped unexpectedly", "run again with --verbose to see why")
        finally:
            self.stop()
            log.info("web service stopped")
