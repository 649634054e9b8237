"""What each campaign achieved over a period: sends, provider events, and orders attributed to its emails.

Attribution is last touch: an order belongs to the most recent email sent to the same customer within
the attribution window before it, whichever campaign sent it. One query finds that email for every
order in the period (an index probe per order, never a query per customer from Python).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, literal, or_, select

from ..models import Event, Order, Send, SendStatus
from ..sql import plus_seconds
from .stats import wilson_interval


@dataclass(frozen=True)
class CampaignResult:
    campaign_id: str
    sent: int
    failed: int
    skipped: int
    conversions: int  # orders attributed to this campaign's emails
    revenue_cents: int
    events: dict[str, int | None]  # emails with a delivered, opened, ... event; None: no events recorded

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.sent if self.sent else None

    @property
    def conversion_interval(self) -> tuple[float, float] | None:
        """95 % Wilson interval of the conversion rate (conversions counted once per email at most
        would be the strict reading; an email that led to two orders counts twice, as revenue does)."""
        return wilson_interval(min(self.conversions, self.sent), self.sent)

    def as_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign_id, "sent": self.sent, "failed": self.failed, "skipped": self.skipped,
                **self.events, "conversions": self.conversions, "revenue_cents": self.revenue_cents,
                "conversion_rate": self.conversion_rate, "conversion_rate_95": self.conversion_interval}


EVENT_TYPES = ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")


def _event_counts(found: dict[str, int] | None) -> dict[str, int | None]:
    """Emails with each kind of event; all unknown (None) when the campaign has no event at all, since
    then the provider's webhooks are not set up (or not for this period) rather than nothing happened."""
    if not found:
        return dict.fromkeys(EVENT_TYPES)
    return {kind: found.get(kind, 0) for kind in EVENT_TYPES}


def attributed_orders(since: dt.datetime, until: dt.datetime, window: dt.timedelta) -> Any:
    """(order id, total, send id) for each live order placed in (since, until] with an email sent to its
    customer within `window` before it: the last such email."""
    last_email = (
        select(Send.id)
        .where(Send.customer_id == Order.customer_id, Send.status == SendStatus.SENT,
               Send.sent_at < Order.placed_at,
               Send.sent_at >= plus_seconds(Order.placed_at, literal(-int(window.total_seconds()))))
        .order_by(Send.sent_at.desc(), Send.id.desc())
        .limit(1)
        .correlate(Order)
        .scalar_subquery()
    )
    return (
        select(Order.id.label("order_id"), Order.total_cents, last_email.label("send_id"))
        .where(Order.placed_at > since, Order.placed_at <= until,
               or_(Order.cancelled_at.is_(None), Order.cancelled_at > until))
        .subquery("attributed")
    )


def campaign_results(conn: Connection, since: dt.datetime, until: dt.datetime, *, window: dt.timedelta,
                     campaign_ids: list[str] | None = None) -> list[CampaignResult]:
    """Per campaign with any ledger row in the period: emails sent in [since, until] and what followed."""
    in_period = and_(Send.updated_at >= since, Send.created_at <= until)
    if campaign_ids:
        in_period = and_(in_period, Send.campaign_id.in_(campaign_ids))
    sent_in_period = and_(Send.status == SendStatus.SENT, Send.sent_at >= since, Send.sent_at <= until)
    counts = {row.campaign_id: row for row in conn.execute(
        select(Send.campaign_id,
               func.count().filter(sent_in_period).label("sent"),
               func.count().filter(Send.status == SendStatus.FAILED).label("failed"),
               func.count().filter(Send.status == SendStatus.SKIPPED).label("skipped"))
        .where(in_period).group_by(Send.campaign_id))}
    events: dict[str, dict[str, int]] = {}
    for campaign_id, kind, emails in conn.execute(
            select(Send.campaign_id, Event.type, func.count(func.distinct(Event.send_id)))
            .join(Send, Send.id == Event.send_id)
            .where(sent_in_period, Event.type.in_(EVENT_TYPES))
            .group_by(Send.campaign_id, Event.type)):
        events.setdefault(campaign_id, {})[kind] = emails
    attributed = attributed_orders(since, until, window)
    conversions = {row.campaign_id: row for row in conn.execute(
        select(Send.campaign_id, func.count().label("orders"), func.sum(attributed.c.total_cents).label("revenue"))
        .join(Send, Send.id == attributed.c.send_id)
        .where(Send.sent_at >= since)
        .group_by(Send.campaign_id))}
    results = []
    for campaign_id in sorted(counts):
        row, conv = counts[campaign_id], conversions.get(campaign_id)
        results.append(CampaignResult(
            campaign_id=campaign_id, sent=row.sent, failed=row.failed, skipped=row.skipped,
            conversions=conv.orders if conv else 0, revenue_cents=int(conv.revenue or 0) if conv else 0,
            events=_event_counts(events.get(campaign_id))))
    return results
