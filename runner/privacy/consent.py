"""Consent history: one `consent_change` row for every change of a customer's marketing consent.

Everything that changes `customer.accepts_marketing` records it here, set-based and in the same
transaction as the change: imports, the unsubscribe link, provider webhooks and rejections, a
manual suppression, and forgetting a customer. `source` says where a change came from, in the
spellings below.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, insert, update

from ..models import ConsentChange, Customer

UNSUBSCRIBE_LINK = "unsubscribe-link"
MANUAL = "manual"
FORGET = "forget"
INSERT_CHUNK = 1000  # rows per INSERT


def imported_from(path: str | Path) -> str:
    """The source of a change an import made: `import:<file name>` (the name only, not its folder)."""
    return f"import:{Path(path).name}"


def from_webhook(provider: str) -> str:
    """The source of a change a provider's event webhook made: `webhook:<provider>`."""
    return f"webhook:{provider}"


def provider_rejection(provider: str) -> str:
    """The source of a change a provider's rejection of the address while sending made."""
    return f"provider-rejection:{provider}"


def record_consent_changes(conn: Connection, changes: Iterable[tuple[int, bool, bool]], now: dt.datetime,
                           source: str) -> int:
    """Record (customer id, accepted before, accepted after) for many customers at once, in the caller's
    transaction; pairs whose value did not change are left out. Returns how many rows were written."""
    rows = [{"customer_id": customer_id, "accepted_before": before, "accepted_after": after, "at": now,
             "source": source} for customer_id, before, after in changes if before != after]
    for start in range(0, len(rows), INSERT_CHUNK):
        conn.execute(insert(ConsentChange), rows[start:start + INSERT_CHUNK])
    return len(rows)


def withdraw_consent(conn: Connection, which: ColumnElement[bool], now: dt.datetime, source: str) -> Sequence[int]:
    """Withdraw the marketing consent of the customers `which` selects, recording each change; one
    UPDATE ... RETURNING and one INSERT, in the caller's transaction. Returns the customers changed."""
    changed = conn.execute(update(Customer).where(which, Customer.accepts_marketing.is_(True))
                           .values(accepts_marketing=False).returning(Customer.id)).scalars().all()
    record_consent_changes(conn, ((customer_id, True, False) for customer_id in changed), now, source)
    return changed
