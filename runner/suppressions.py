"""Adding addresses to the suppression list (unsubscribes, bounces, complaints, manual).

`add_suppressions` works inside the caller's transaction, so a caller can make a suppression
part of a larger write (the dispatcher records a provider's rejection and suppresses the address
in one commit); `suppress` is the one-address form that commits on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, update
from sqlmodel import Session

from .models import Customer, Suppression, SuppressionReason, normalise_email
from .sql import dialect_insert


@dataclass(frozen=True)
class NewSuppression:
    """An address to suppress, why, and where that came from (`detail`). `customer_id` also
    withdraws the consent of a customer whose address has changed since the link was made."""

    email: str
    reason: SuppressionReason
    detail: str | None = None
    customer_id: int | None = None


def add_suppressions(session: Session, entries: Iterable[NewSuppression], now: dt.datetime) -> list[str]:
    """Suppress the addresses and withdraw their customers' marketing consent, in the caller's
    transaction (nothing is committed here). An address already suppressed keeps its first
    reason and detail. Returns the addresses newly suppressed. Two statements, however many."""
    first: dict[str, NewSuppression] = {}
    for entry in entries:
        first.setdefault(normalise_email(entry.email), entry)
    if not first:
        return []
    rows = [{"email": email, "reason": SuppressionReason(entry.reason).value, "created_at": now,
             "detail": entry.detail} for email, entry in first.items()]
    inserted = session.execute(
        dialect_insert(session.get_bind(), Suppression).values(rows)
        .on_conflict_do_nothing(index_elements=["email"]).returning(Suppression.email))
    added = list(inserted.scalars())
    customer_ids = [e.customer_id for e in first.values() if e.customer_id is not None]
    session.execute(update(Customer).where(or_(Customer.email.in_(list(first)), Customer.id.in_(customer_ids)))
                    .values(accepts_marketing=False))
    return added


def suppress(session: Session, email: str, reason: str, now: dt.datetime, detail: str | None = None,
             customer_id: int | None = None) -> bool:
    """Suppress one address, withdraw its customer's marketing consent and commit. Idempotent (an
    existing suppression keeps its reason); True when newly added."""
    entry = NewSuppression(email, SuppressionReason(reason), detail, customer_id)  # rejects unknown reasons
    added = add_suppressions(session, [entry], now)
    session.commit()
    return bool(added)
