"""Signed one-click unsubscribe links (RFC 8058) and the small WSGI app that honours them.

A token is base64url("customer_id:email") + "." + base64url(HMAC-SHA256(key, payload)), without
padding. GET shows a confirmation page and never changes data (mail scanners prefetch links);
POST, which is what RFC 8058 clients send with `List-Unsubscribe=One-Click`, suppresses the
address and clears the customer's marketing consent.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import html
import re
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from .errors import LifecycleError
from .models import Suppression, SuppressionReason, normalise_email
from .store import Store, utc_naive
from .suppressions import suppress

__all__ = ["InvalidToken", "make_app", "serve", "sign", "unsubscribe_url", "verify"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

MAX_TOKEN_LENGTH = 2048
MAX_BODY = 64 * 1024
_PART = re.compile(r"^[A-Za-z0-9_-]+$")
_ROUTE = re.compile(r"^/unsubscribe/([A-Za-z0-9_.-]+)/?$")
_SECURITY_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),  # the confirm button must not be clickjacked
    ("Referrer-Policy", "no-referrer"),  # the token is in the URL
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
]


class InvalidToken(LifecycleError):
    """An unsubscribe token was malformed, tampered with, or signed with another key."""

    def __init__(self, message: str = "invalid unsubscribe link") -> None:
        super().__init__(message, "use the link from the most recent email, or reply to it to unsubscribe")


# ---------------------------------------------------------------- tokens

def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(part: str) -> bytes:
    """Strict base64url without padding: the alphabet only, and only the canonical encoding."""
    if not _PART.match(part):
        raise InvalidToken("invalid unsubscribe link: not base64url")
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("invalid unsubscribe link: not base64url") from None
    if _encode(raw) != part:
        raise InvalidToken("invalid unsubscribe link: not canonical base64url")
    return raw


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def sign(key: bytes, customer_id: int, email: str) -> str:
    """A URL-safe token naming the customer and address it was issued for."""
    payload = f"{customer_id}:{email}".encode()
    return f"{_encode(payload)}.{_encode(_mac(key, payload))}"


def verify(key: bytes, token: str) -> tuple[int, str]:
    """(customer_id, email) from a token; raises InvalidToken when it was not signed with `key`."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise InvalidToken()
    encoded_payload, encoded_mac = token.split(".")
    payload, mac = _decode(encoded_payload), _decode(encoded_mac)
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise InvalidToken("invalid unsubscribe link: the signature does not match")
    customer, sep, email = payload.partition(b":")
    if not sep or not customer.isdigit() or not email:
        raise InvalidToken("invalid unsubscribe link: malformed payload")
    try:
        return int(customer), email.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidToken("invalid unsubscribe link: malformed payload") from None


def unsubscribe_url(public_url: str, key: bytes, customer_id: int, email: str) -> str:
    """The link that goes into List-Unsubscribe and the email footer."""
    return f"{public_url.rstrip('/')}/unsubscribe/{sign(key, customer_id, email)}"


# ---------------------------------------------------------------- the store side

def is_suppressed(store: Store, email: str) -> bool:
    """True when the address is on the suppression list (for any reason)."""
    with store.session() as session:
        row = session.exec(select(Suppression).where(Suppression.email == normalise_email(email))).first()
    return row is not None


def unsubscribe(store: Store, customer_id: int, email: str, now: dt.datetime) -> bool:
    """Suppress the address and clear the customer's consent. Idempotent; True when newly suppressed."""
    with store.session() as session:
        return suppress(session, email, SuppressionReason.UNSUBSCRIBED.value, utc_naive(now),
                        detail="one-click unsubscribe link", customer_id=customer_id)


# ---------------------------------------------------------------- the WSGI app

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
</head>
<body style="margin:0; padding:48px 16px; background:#f4f4f5; color:#27272a;
  font-family:-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif;">
<main style="max-width:480px; margin:0 auto; padding:32px; background:#ffffff; border-radius:8px;">
<h1 style="margin:0 0 16px; font-size:22px;">{title}</h1>
{body}
</main>
</body>
</html>
"""

_BUTTON = ("<form method=\"post\">"
           "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
           "<button type=\"submit\" style=\"padding:12px 24px; font-size:16px; font-weight:bold; color:#ffffff; "
           "background:#18181b; border:0; border-radius:6px; cursor:pointer;\">Unsubscribe</button></form>")


def _page(title: str, body: str) -> bytes:
    """A small HTML page; `title` is escaped here, `body` must already be escaped."""
    return _PAGE.format(title=html.escape(title), body=body).encode("utf-8")


def _read_body(environ: dict[str, Any]) -> None:
    """Consume (and ignore) a POST body, so keep-alive clients are not confused."""
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
    except ValueError:
        length = 0
    if length > 0:
        environ["wsgi.input"].read(length)


def make_app(store: Store, key: bytes, *, clock: Callable[[], dt.datetime]) -> WSGIApp:
    """The unsubscribe web app: GET confirms, POST unsubscribes, /healthz answers "ok"."""

    def respond(start_response: StartResponse, status: str, body: bytes, method: str,
                content_type: str = "text/html; charset=utf-8",
                extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))),
                   *_SECURITY_HEADERS, *(extra or [])]
        start_response(status, headers)
        return [] if method == "HEAD" else [body]

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        if path == "/healthz":
            if method not in {"GET", "HEAD"}:
                return respond(start_response, "405 Method Not Allowed", b"method not allowed\n", method,
                               "text/plain; charset=utf-8", [("Allow", "GET, HEAD")])
            return respond(start_response, "200 OK", b"ok\n", method, "text/plain; charset=utf-8")
        match = _ROUTE.match(path)
        if match is None:
            return respond(start_response, "404 Not Found",
                           _page("Page not found", "<p>There is nothing here.</p>"), method)
        if method not in {"GET", "HEAD", "POST"}:
            return respond(start_response, "405 Method Not Allowed",
                           _page("Method not allowed", "<p>Use the link in the email.</p>"), method,
                           extra=[("Allow", "GET, HEAD, POST")])
        if method == "POST":
            _read_body(environ)
        try:
            customer_id, email = verify(key, match.group(1))
        except InvalidToken:
            return respond(start_response, "400 Bad Request", _page(
                "This link is not valid",
                "<p>This unsubscribe link is incomplete or has been changed, so nothing was changed. "
                "Use the unsubscribe link from the most recent email, or reply to it and ask to be "
                "unsubscribed.</p>"), method)
        shown = html.escape(email)
        try:
            if method == "POST":
                unsubscribe(store, customer_id, email, clock())
                return respond(start_response, "200 OK", _page(
                    "You're unsubscribed",
                    f"<p><strong>{shown}</strong> will no longer receive marketing emails from us. "
                    "Emails about orders you place may still be sent.</p>"), method)
            if is_suppressed(store, email):
                return respond(start_response, "200 OK", _page(
                    "You're already unsubscribed",
                    f"<p><strong>{shown}</strong> no longer receives marketing emails from us.</p>"), method)
        except SQLAlchemyError:
            return respond(start_response, "503 Service Unavailable", _page(
                "Please try again", "<p>We could not process this right now. Please try again in a few "
                "minutes.</p>"), method, extra=[("Retry-After", "60")])
        return respond(start_response, "200 OK", _page(
            "Unsubscribe?",
            f"<p>Stop marketing emails to <strong>{shown}</strong>?</p>{_BUTTON}"), method)

    return app


# ---------------------------------------------------------------- serving

class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """Logs requests with the token masked: a token in a log file is a working unsubscribe link."""

    def log_message(self, format: str, *args: Any) -> None:  # "format": the stdlib signature
        masked = tuple(re.sub(r"/unsubscribe/[^\s?\"]+", "/unsubscribe/<token>", str(a)) for a in args)
        super().log_message(format, *masked)


def serve(store: Store, key: bytes, host: str, port: int) -> None:
    """Serve the unsubscribe app until interrupted (the `lifecycle serve` command)."""
    app = make_app(store, key, clock=lambda: dt.datetime.now(dt.UTC))
    with make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler) as server:
        server.serve_forever()
