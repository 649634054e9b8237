"""ASGI middleware every route shares: the access log, the security headers and the body size limit."""

from __future__ import annotations

import logging
import re
import time

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .base import SECURITY_HEADERS

access_log = logging.getLogger("lifecycle.web")

_TOKEN_IN_PATH = re.compile(r"/(unsubscribe|nps)/[^/?#\s]+")


def masked_path(path: str) -> str:
    """The path with any signed token replaced: a token in a log file is a working unsubscribe or score link."""
    return _TOKEN_IN_PATH.sub(r"/\1/<token>", path)


class AccessLog:
    """One line per request: client, method, path (token masked, no query string), status, size, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, size = 500, 0  # what the server answers when the app raises before responding

        async def observe(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            client = scope.get("client")
            who = f"{client[0]}:{client[1]}" if client else "-"
            access_log.info('%s "%s %s HTTP/%s" %d %dB %.0fms', who, scope["method"], masked_path(scope["path"]),
                            scope.get("http_version", "1.1"), status, size, (time.perf_counter() - started) * 1000)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer that does not set its own value."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in SECURITY_HEADERS]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((n, v) for n, v in self.headers if n not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


class _BodyTooLarge(Exception):
    """Raised from `receive` once a streamed body passes the limit; BodySizeLimit turns it into 413."""


class BodySizeLimit:
    """Refuses bodies over `max_bytes` with 413: at once when Content-Length says so, otherwise as soon
    as the streamed body (chunked) passes the limit, before a route has acted on any of it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send, declared)
            return
        received = 0
        responded = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal responded
            responded = responded or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except _BodyTooLarge:
            if responded:  # too late for a 413; the server closes the connection
                raise
            await self._refuse(scope, receive, send, None)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, declared: str | None) -> None:
        if declared is not None and not declared.isdigit():
            response = PlainTextResponse("invalid Content-Length\n", status_code=400)
        else:
            response = PlainTextResponse(f"request body larger than {self.max_bytes} bytes\n", status_code=413,
                                         headers={"Connection": "close"})
        await response(scope, receive, send)
