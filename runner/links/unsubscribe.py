"""Signed one-click unsubscribe links (RFC 8058): the tokens, and what honouring one changes.

A token is base64url("customer_id:email") + "." + base64url(HMAC-SHA256(key, payload)), without
padding. The web service (`runner.web.unsubscribe`) shows a confirmation page for GET and calls
`unsubscribe` for POST, which is what RFC 8058 clients send with `List-Unsubscribe=One-Click`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from functools import lru_cache

from sqlmodel import select

from ..errors import LifecycleError
from ..models import Suppression, SuppressionReason, normalise_email
from ..privacy.consent import UNSUBSCRIBE_LINK
from ..store import Store, utc_naive
from ..suppressions import suppress

__all__ = ["InvalidToken", "is_suppressed", "sign", "signed_payload", "signed_token", "unsubscribe", "unsubscribe_url",
           "verify"]

MAX_TOKEN_LENGTH = 2048
_PART = re.compile(r"^[A-Za-z0-9_-]+$")


class InvalidToken(LifecycleError):
    """A signed link's token (unsubscribe or score link) was malformed, tampered with, or signed with another key."""

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


@lru_cache(maxsize=8)  # one signing key per shop: keying HMAC is half its cost on a short payload
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(key: bytes, payload: bytes) -> bytes:
    mac = _keyed(key).copy()  # a fresh copy each time: the cached one is never updated
    mac.update(payload)
    return mac.digest()


def signed_token(key: bytes, payload: bytes) -> str:
    """base64url(payload) "." base64url(HMAC-SHA256(key, payload)): the shape of every signed link.
    Each kind of link gives its payload a shape the others' can never have."""
    return f"{_encode(payload)}.{_encode(_mac(key, payload))}"


def signed_payload(key: bytes, token: str) -> bytes:
    """The payload of a token signed with `key`; raises InvalidToken otherwise."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise InvalidToken()
    encoded_payload, encoded_mac = token.split(".")
    payload, mac = _decode(encoded_payload), _decode(encoded_mac)
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise InvalidToken("invalid unsubscribe link: the signature does not match")
    return payload


def sign(key: bytes, customer_id: int, email: str) -> str:
    """A URL-safe token naming the customer and address it was issued for."""
    return signed_token(key, f"{customer_id}:{email}".encode())


def verify(key: bytes, token: str) -> tuple[int, str]:
    """(customer_id, email) from a token; raises InvalidToken when it was not signed with `key`."""
    payload = signed_payload(key, token)
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
    with store.reading() as session:
        row = session.exec(select(Suppression).where(Suppression.email == normalise_email(email))).first()
    return row is not None


def unsubscribe(store: Store, customer_id: int, email: str, now: dt.datetime) -> bool:
    """Suppress the address and clear the customer's consent. Idempotent; True when newly suppressed."""
    with store.session() as session:
        return suppress(session, email, SuppressionReason.UNSUBSCRIBED.value, utc_naive(now),
                        detail="one-click unsubscribe link", customer_id=customer_id, source=UNSUBSCRIBE_LINK)
