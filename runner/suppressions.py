"""The suppression list: adding addresses (unsubscribes, bounces, complaints, manual), removing them
on purpose, and the history row each change leaves behind.

`add_suppressions` and `remove_suppression` work inside the caller's transaction (they never
commit), so a caller can make a suppression part of a larger write: the dispatcher records a
provider's rejection and suppresses the address in one commit, a webhook batch or a file import
is all or nothing. `suppress` is the one-address form that commits on its own. Each consent they
withdraw is recorded in the consent history (privacy.consent) with the same `source`, spelt as
privacy.consent lists them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, Table, delete, insert, or_, select
from sqlmodel import Session

from .models import (
    Customer,
    Suppression,
    SuppressionAction,
    SuppressionHistory,
    SuppressionReason,
    normalise_email,
)
from .privacy.consent import FORGET, withdraw_consent
from .privacy.forgotten import erased_addresses
from .sql import dialect_insert

CHUNK = 500  # keys per IN (...) list: well inside SQLite's and PostgreSQL's parameter limits
SUPPRESSION = cast(Table, Suppression.__table__)
SUPPRESSION_HISTORY = cast(Table, SuppressionHistory.__table__)


@dataclass(frozen=True)
class NewSuppression:
    """An address to suppress, why, and where that came from (`detail`). `customer_id` also
    withdraws the consent of a customer whose address has changed since the link was made;
    `created_at` keeps the date an imported list gives (else now)."""

    email: str
    reason: SuppressionReason | str
    detail: str | None = None
    customer_id: int | None = None
    created_at: dt.datetime | None = None


def checked_address(raw: str) -> str:
    """An email address in the store's form, or ValueError saying why it is not one."""
    text = raw.strip()
    if not text:
        raise ValueError("the email address is empty")
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{text!r} is not an email address: {exc}") from None
    return normalise_email(valid.normalized)


def chunked(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def add_suppressions(db: Session | Connection, entries: Iterable[NewSuppression], now: dt.datetime,
                     source: str) -> list[str]:
    """Suppress each address and withdraw its customer's marketing consent, in the caller's
    transaction (nothing is committed here).

    Idempotent: an address already on the list keeps its first reason, detail and date; a forgotten
    one that no customer holds again stays suppressed by its keyed hash alone (listing it in clear,
    for an old unsubscribe link or a late bounce, would undo the erasure). Returns the addresses
    newly added; each of them gets an `added` history row naming `source`, and each consent
    withdrawn a consent history row. Set-based: a few statements however many addresses.
    """
    wanted: dict[str, NewSuppression] = {}
    for entry in entries:
        wanted.setdefault(normalise_email(entry.email), entry)
    connection = db.connection() if isinstance(db, Session) else db
    for email in erased_addresses(connection, wanted):
        del wanted[email]
    return _add(connection, wanted, now, source)


def _add(connection: Connection, wanted: dict[str, NewSuppression], now: dt.datetime, source: str) -> list[str]:
    if not wanted:
        return []
    rows = [{"email": email, "reason": SuppressionReason(entry.reason).value,  # rejects unknown reasons
             "detail": entry.detail, "source": source, "created_at": entry.created_at or now}
            for email, entry in wanted.items()]
    # one executemany (compiled once, sent in pages), not a statement with a VALUES row per address
    statement = dialect_insert(connection, SUPPRESSION).on_conflict_do_nothing(index_elements=["email"])
    new = set(connection.execute(statement.returning(SUPPRESSION.c.email), rows).scalars())
    if new:
        connection.execute(insert(SUPPRESSION_HISTORY), [
            {"email": row["email"], "action": SuppressionAction.ADDED.value, "reason": row["reason"],
             "source": source, "detail": row["detail"], "at": now} for row in rows if row["email"] in new])
    for emails in chunked(list(wanted)):
        customer_ids = [wanted[email].customer_id for email in emails if wanted[email].customer_id is not None]
        match = Customer.email.in_(emails)
        if customer_ids:
            match = or_(match, Customer.id.in_(customer_ids))
        withdraw_consent(connection, match, now, source)
    return [email for email in wanted if email in new]


def suppress_forgotten(connection: Connection, emails: Iterable[str], now: dt.datetime) -> list[str]:
    """Suppress again, in clear, addresses that belonged to a customer who was forgotten
    (privacy.forgotten_among finds them) and that an import has just given to a customer again; in
    the caller's transaction. Returns those newly added."""
    detail = "forgotten earlier on request, then imported again"
    return _add(connection, {email: NewSuppression(email, SuppressionReason.FORGOTTEN, detail)
                             for email in sorted(emails)}, now, FORGET)


def suppress(session: Session, email: str, reason: str, now: dt.datetime, detail: str | None = None,
             customer_id: int | None = None, *, source: str) -> bool:
    """Suppress one address, withdraw its customer's marketing consent and commit. Idempotent (an
    existing suppression keeps its reason); True when newly added."""
    added = add_suppressions(session, [NewSuppression(email, reason, detail, customer_id)], now, source)
    session.commit()
    return bool(added)


def remove_suppression(session: Session, email: str, now: dt.datetime, source: str,
                       detail: str | None = None) -> str | None:
    """Take an address off the list, leaving a `removed` history row; without committing.

    Returns the reason it had been suppressed for, or None when it was not on the list. Marketing
    consent is not given back: only the customer can give it (a fresh opt-in, an import).
    """
    address = normalise_email(email)
    reason = session.execute(delete(Suppression).where(Suppression.email == address)
                             .returning(Suppression.reason)).scalar()
    if reason is not None:
        session.execute(insert(SuppressionHistory).values(email=address, action=SuppressionAction.REMOVED.value,
                                                          reason=reason, source=source, detail=detail, at=now))
    return reason


def list_suppressions(session: Session, reason: str | None = None) -> Iterator[Suppression]:
    """Every suppression (or those with one reason), oldest first, streamed."""
    query = select(Suppression).order_by(Suppression.created_at, Suppression.id)
    if reason is not None:
        query = query.where(Suppression.reason == SuppressionReason(reason).value)
    yield from session.execute(query.execution_options(yield_per=CHUNK)).scalars()
