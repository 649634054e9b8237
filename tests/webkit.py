"""Test helpers for the web service: a context over a real store, and the real server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

from runner.settings import Settings
from runner.store import Store
from runner.web import WebContext, WebServer, create_app

KEY = b"test-signing-key"
NOW = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)


def web_context(store: Store, *, settings: Settings | None = None, now: dt.datetime = NOW,
                scheduler_alive=None) -> WebContext:  # type: ignore[no-untyped-def]
    return WebContext(store=store, signing_key=KEY, settings=settings or Settings({}), clock=lambda: now,
                      scheduler_alive=scheduler_alive)


@contextmanager
def serving(web: WebContext) -> Iterator[WebServer]:
    """The real uvicorn server for the app, on 127.0.0.1 and a free port, for the block's duration."""
    server = WebServer(create_app(web), "127.0.0.1", 0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def raw_exchange(url: str, request: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes to the server at `url` and return all it answers until it closes the connection
    (requests that should get an answer say `Connection: close`). A thread sends while this one reads,
    so an answer that comes before the whole request was sent (a 413) is read before the server's
    close could reset the connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:

        def send() -> None:
            with suppress(OSError):  # the server may answer and close before reading everything
                sock.sendall(request)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = b""
        with suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
        sender.join(timeout)
    return answer
