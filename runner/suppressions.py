"""Adding addresses to the suppression list (unsubscribes, bounces, complaints, manual)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .models import Customer, Suppression, SuppressionReason, normalise_email


def suppress(session: Session, email: str, reason: str, now: dt.datetime, detail: str | None = None,
             customer_id: int | None = None) -> bool:
    """Suppress an address and withdraw its customer's marketing consent. Idempotent (an existing
    suppression keeps its reason); True when newly added. `customer_id` also matches a customer
    whose address has changed since the link was made."""
    address = normalise_email(email)
    SuppressionReason(reason)  # rejects unknown reasons
    created = False
    if session.execute(select(Suppression.id).where(Suppression.email == address)).scalar() is None:
        session.add(Suppression(email=address, reason=reason, created_at=now, detail=detail))
        try:
            session.commit()
            created = True
        except IntegrityError:  # a concurrent request suppressed it first
            session.rollback()
    match = Customer.email == address if customer_id is None else or_(Customer.email == address,
                                                                      Customer.id == customer_id)
    session.execute(update(Customer).where(match).values(accepts_marketing=False))
    session.commit()
    return created
