"""The customers an import names by email: found in the store, or created with the consent the file gives."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, insert, select

from ..privacy import forgotten_among, record_consent_changes
from ..suppressions import suppress_forgotten
from .report import ImportReport
from .writing import CUSTOMER, in_chunks


class Named(Protocol):
    """A row of an import that names a customer: an order, a checkout."""

    email: str
    accepts_marketing: bool
    time_zone: str | None


def customer_ids(conn: Connection, rows: Sequence[Named], now: dt.datetime, source: str,
                 report: ImportReport) -> dict[str, int]:
    """Customer id per email of `rows`, creating the customers the store does not have yet.

    A new customer's consent is the first of its rows' `accepts_marketing` (given at `now`, recorded in the
    consent history from `source`), except for an address erased on request before, which never gets
    consent back from an import. Existing customers are left as they are."""
    def by_email(keys: list[str]) -> Any:
        return select(CUSTOMER.c.email, CUSTOMER.c.id).where(CUSTOMER.c.email.in_(keys))

    ids = {row.email: row.id for row in in_chunks(conn, by_email, [r.email for r in rows])}
    new: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.email not in ids and row.email not in new:
            new[row.email] = {
                "email": row.email, "accepts_marketing": row.accepts_marketing,
                "consent_at": now if row.accepts_marketing else None,
                "time_zone": row.time_zone, "created_at": now,
            }
    if new:
        forgotten = forgotten_among(conn, list(new))
        for email in forgotten:
            new[email].update(accepts_marketing=False, consent_at=None)
        conn.execute(insert(CUSTOMER), list(new.values()))
        ids.update((row.email, row.id) for row in in_chunks(conn, by_email, list(new)))
        record_consent_changes(conn, ((ids[email], False, row["accepts_marketing"]) for email, row in new.items()),
                               now, source)
        suppress_forgotten(conn, forgotten, now)
        report.customers_created += len(new)
    return ids
