"""A retry under the send window: a next attempt that would fall in quiet hours waits for the window to open.

A first attempt is held back to the window's next opening when it is planned (`decide`). A retry
after a transient provider error gets its instant from the dispatcher's backoff instead, which knows
nothing of the customer's clock: a 5-minute backoff from 20:58 would mail them at 21:03. So the
dispatcher hands each batch's retries here before recording them, and one query reads their
customers' time zones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from ..campaigns import Campaign
from ..models import Customer, Send, SendStatus, SkipReason
from ..sql import in_ids
from ..timezones import zone_or_default
from .window import next_opening


def retry_in_window(session: Session, campaign: Campaign, sends: Sequence[Send], default_zone: ZoneInfo) -> int:
    """Move each retry among `sends` (planned again, with a next attempt) whose next attempt falls outside
    the campaign's send window, on its customer's clock, to the window's next opening, with the reason
    `quiet_hours` as a first attempt held back gets; returns how many moved. Transactional mail, and a
    campaign without a send window, keep their backoff."""
    window = campaign.policy.send_window if campaign.marketing else None
    retrying = [s for s in sends if s.status == SendStatus.PLANNED and s.next_attempt_at is not None]
    if window is None or not retrying:
        return 0
    zones = dict(session.execute(select(Customer.id, Customer.time_zone)
                                 .where(in_ids(Customer.id, {s.customer_id for s in retrying}))).all())
    moved = 0
    for send in retrying:
        attempt: dt.datetime = send.next_attempt_at  # type: ignore[assignment]
        opening = next_opening(window, attempt, zone_or_default(zones.get(send.customer_id), default_zone))
        if opening > attempt:
            send.next_attempt_at, send.skip_reason = opening, SkipReason.QUIET_HOURS
            moved += 1
    return moved
