"""Recognising erased addresses: a keyed hash of each one stays on the suppression list.

The key is generated once and kept in the store's meta table, never taken from the environment,
so that changing LIFECYCLE_SECRET_KEY cannot make the runner forget whom it must not mail. The
hash (HMAC-SHA256 of the normalised address) is stored as the suppression's `email`, spelt
`hmac-sha256:<hex>`: no customer's address can ever look like it, so the engine's join on the
address is untouched, and looking up a batch of imported addresses is one indexed IN query.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection, Iterable

from sqlalchemy import Connection, select

from ..errors import LifecycleError
from ..models import Customer, Meta, Suppression, is_address, normalise_email
from ..sql import dialect_insert

HASH_KEY = "address_hash_key"  # the meta row holding the key, hex
HASHED_PREFIX = "hmac-sha256:"
LOOKUP_CHUNK = 1000  # addresses per IN query: one query per import chunk


def requested_address(raw: str) -> str:
    """The address an export or erasure request names, in the store's form; anything that is not an
    address is refused (a typo must not erase or export the wrong thing)."""
    address = normalise_email(raw)
    if not is_address(address):
        raise LifecycleError(f"{raw.strip()!r} is not an email address",
                             "give the customer's address as the shop has it, e.g. ada@example.com")
    return address


def hash_key(conn: Connection) -> bytes | None:
    """The store's address-hashing key, or None when nobody was ever forgotten."""
    found = conn.execute(select(Meta.value).where(Meta.key == HASH_KEY)).scalar()
    return bytes.fromhex(found) if found is not None else None


def ensure_hash_key(conn: Connection) -> bytes:
    """The store's address-hashing key, generated and kept on first use. Two processes creating it at
    once agree: the second insert does nothing and both read the first."""
    conn.execute(dialect_insert(conn, Meta).values(key=HASH_KEY, value=secrets.token_hex(32))
                 .on_conflict_do_nothing(index_elements=["key"]))
    return bytes.fromhex(conn.execute(select(Meta.value).where(Meta.key == HASH_KEY)).scalar_one())


def hashed_address(key: bytes, email: str) -> str:
    """The suppression list's form of an erased address: `hmac-sha256:` and the hex digest."""
    digest = hmac.new(key, normalise_email(email).encode(), hashlib.sha256).hexdigest()
    return HASHED_PREFIX + digest


def forgotten_among(conn: Connection, emails: Iterable[str]) -> set[str]:
    """Which of these addresses belonged to a customer who was forgotten (normalised addresses).

    Hashes are computed here, and looked up in one query per LOOKUP_CHUNK addresses. No key in the
    store means nobody was ever forgotten: no query at all.
    """
    key = hash_key(conn)
    if key is None:
        return set()
    by_hash = {hashed_address(key, email): normalise_email(email) for email in emails}
    hashes = list(by_hash)
    found: set[str] = set()
    for start in range(0, len(hashes), LOOKUP_CHUNK):
        rows = conn.execute(select(Suppression.email).where(Suppression.email.in_(hashes[start:start + LOOKUP_CHUNK])))
        found.update(by_hash[hashed] for hashed in rows.scalars())
    return found


def erased_addresses(conn: Connection, emails: Collection[str]) -> set[str]:
    """Which of these addresses were forgotten on request and belong to no customer again: whatever
    still arrives about them (an old unsubscribe link, a late bounce) must not write them back in
    clear. No query when `emails` is empty or nobody was ever forgotten."""
    forgotten = forgotten_among(conn, emails) if emails else set()
    if not forgotten:
        return set()
    return forgotten - set(conn.execute(select(Customer.email).where(Customer.email.in_(forgotten))).scalars())
