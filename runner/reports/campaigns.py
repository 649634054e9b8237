"""What each campaign achieved over a period: sends, provider events, and orders attributed to its emails.

Attribution is last touch: an order belongs to the most recent email sent to the same customer within
the attribution window before it, whichever campaign sent it. One query finds that email for every
order in the period (an index probe per order, never a query per customer from Python). A campaign
with variants (A/B tests) is also broken down per variant, each compared with the first (the control).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, and_, func, literal, or_, select

from ..models import Event, Order, Send, SendStatus
from ..sql import plus_seconds
from .stats import Comparison, two_proportion_test, wilson_interval


@dataclass(frozen=True)
class CampaignResult:
    """A campaign's figures; for a campaign with variants, `variants` holds the same figures per variant."""

    campaign_id: str
    sent: int
    failed: int
    skipped: int
    conversions: int  # orders attributed to this campaign's emails
    converted: int  # emails followed by at least one attributed order
    revenue_cents: int
    events: dict[str, int | None]  # emails with a delivered, opened, ... event; None: no events recorded
    variant: str | None = None  # set on a variant's figures
    step: int | None = None  # set on a journey step's figures
    control: str | None = None  # on a variant's figures: the variant it is compared with, None for the control
    versus_control: Comparison | None = None  # its conversion rate against the control's; None if untestable
    variants: tuple[CampaignResult, ...] = ()  # the control first
    steps: tuple[CampaignResult, ...] = ()  # a journey's steps, in order

    @property
    def conversion_rate(self) -> float | None:
        """The share of emails followed by at least one attributed order."""
        return self.converted / self.sent if self.sent else None

    @property
    def conversion_interval(self) -> tuple[float, float] | None:
        """95 % Wilson interval of the conversion rate."""
        return wilson_interval(self.converted, self.sent)

    def as_dict(self) -> dict[str, Any]:
        figures = {"sent": self.sent, "failed": self.failed, "skipped": self.skipped, **self.events,
                   "conversions": self.conversions, "converted": self.converted, "revenue_cents": self.revenue_cents,
                   "conversion_rate": self.conversion_rate, "conversion_rate_95": self.conversion_interval}
        if self.step is not None:
            return {"step": self.step, **figures}
        if self.variant is None:
            return {"campaign": self.campaign_id, **figures, "variants": [v.as_dict() for v in self.variants],
                    "steps": [s.as_dict() for s in self.steps]}
        test = self.versus_control
        return {"variant": self.variant, "control": self.control is None, **figures,
                "difference": test.difference if test else None, "p_value": test.p_value if test else None,
                "significant": test.significant if test else None}


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
                     campaign_ids: list[str] | None = None,
                     variant_order: Mapping[str, Sequence[str]] | None = None) -> list[CampaignResult]:
    """Per campaign with any ledger row in the period: emails sent in [since, until] and what followed.

    `variant_order` gives each campaign's variants in its file's order, so that its first variant is
    the control; variants it does not list (removed since) follow by name."""
    in_period = and_(Send.updated_at >= since, Send.created_at <= until)
    if campaign_ids:
        in_period = and_(in_period, Send.campaign_id.in_(campaign_ids))
    sent_in_period = and_(Send.status == SendStatus.SENT, Send.sent_at >= since, Send.sent_at <= until)
    # every figure is read per (campaign, variant, journey step), and added up from there
    parts = (Send.campaign_id, Send.variant, Send.step)
    counts = {(row.campaign_id, row.variant, row.step): row for row in conn.execute(
        select(*parts,
               func.count().filter(sent_in_period).label("sent"),
               func.count().filter(Send.status == SendStatus.FAILED).label("failed"),
               func.count().filter(Send.status == SendStatus.SKIPPED).label("skipped"))
        .where(in_period).group_by(*parts))}
    events: dict[tuple[str, str | None, int | None], dict[str, int]] = {}
    for campaign_id, variant, step, kind, emails in conn.execute(
            select(*parts, Event.type, func.count(func.distinct(Event.send_id)))
            .join(Send, Send.id == Event.send_id)
            .where(sent_in_period, Event.type.in_(EVENT_TYPES))
            .group_by(*parts, Event.type)):
        events.setdefault((campaign_id, variant, step), {})[kind] = emails
    attributed = attributed_orders(since, until, window)
    conversions = {(row.campaign_id, row.variant, row.step): row for row in conn.execute(
        select(*parts, func.count().label("orders"),
               func.count(attributed.c.send_id.distinct()).label("emails"),
               func.sum(attributed.c.total_cents).label("revenue"))
        .join(Send, Send.id == attributed.c.send_id)
        .where(Send.sent_at >= since)
        .group_by(*parts))}

    def figures(keys: list[tuple[str, str | None, int | None]], **label: Any) -> CampaignResult:
        """The figures of the (campaign, variant, step) parts in `keys`, added up."""
        found: Counter[str] = Counter()
        for key in keys:
            found.update(events.get(key, {}))
        convs = [c for key in keys if (c := conversions.get(key)) is not None]
        return CampaignResult(
            campaign_id=keys[0][0], sent=sum(counts[k].sent for k in keys),
            failed=sum(counts[k].failed for k in keys), skipped=sum(counts[k].skipped for k in keys),
            conversions=sum(c.orders for c in convs), converted=sum(c.emails for c in convs),
            revenue_cents=sum(int(c.revenue or 0) for c in convs), events=_event_counts(dict(found)), **label)

    results = []
    for campaign_id in sorted({campaign_id for campaign_id, _, _ in counts}):
        keys = [key for key in counts if key[0] == campaign_id]
        order = list((variant_order or {}).get(campaign_id, ()))
        variants = sorted({v for _, v, _ in keys if v is not None},
                          key=lambda v: (order.index(v) if v in order else len(order), v))
        steps = sorted({n for _, _, n in keys if n is not None})
        results.append(replace(
            figures(keys),
            variants=_against_control([figures([k for k in keys if k[1] == v], variant=v) for v in variants]),
            steps=tuple(figures([k for k in keys if k[2] == n], step=n) for n in steps)))
    return results


def _against_control(variants: list[CampaignResult]) -> tuple[CampaignResult, ...]:
    """The variants with each one after the first compared with the first, the control."""
    if not variants:
        return ()
    control = variants[0]
    return (control, *(replace(v, control=control.variant, versus_control=two_proportion_test(
        control.converted, control.sent, v.converted, v.sent)) for v in variants[1:]))
