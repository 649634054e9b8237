"""Adding addresses to the suppression list (unsubscribes, bounces, complaints, manual)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlmodel import Session

from .models import Customer, Suppression, SuppressionReason, normalise_email


def suppress(session: Session, email: str, reason: str, now: dt.datetime, detail: str | None = None) -> bool:
    """Suppress an address (idempotent) and withdraw its marketing consent. True when newly added."""
    address = normalise_email(email)
    SuppressionReason(reason)  # rejects unknown reasons
    existing = session.execute(select(Suppression.id).where(Suppression.email == address)).scalar()
    session.execute(update(Customer).where(Customer.email == address).values(accepts_marketing=False))
    if existing is None:
        session.add(Suppression(email=address, reason=reason, created_at=now, detail=detail))
    session.commit()
    return existing is None
