"""What the runner measures: counters the running process updates, and ledger counts read on demand.

Two sources, each used where it is the truth:
- the ledger knows how many sends each campaign has in each state, and how many are due, whichever
  process planned or sent them: `ledger_counts` reads that set-based, when asked (at scrape time);
- only the process that does the work knows how long a tick took, which provider errors it met,
  which webhook events and which score clicks it received: those are prometheus-client instruments in the default
  registry, updated as it happens, and they start from zero with each process.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prometheus_client import Counter, Histogram
from sqlalchemy import func, select
from sqlmodel import Session

from .models import CampaignState, Send, SendStatus

TICK_DURATION = Histogram(
    "lifecycle_tick_duration_seconds", "Time a tick spent evaluating and dispatching one campaign.",
    ["campaign"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
PROVIDER_ERRORS = Counter(
    "lifecycle_provider_errors_total",
    "Messages the mail provider did not accept, by kind: retryable (tried again later), permanent "
    "(never retried), unusable (the provider could not be used at all; counted once per batch).",
    ["provider", "kind"])
WEBHOOK_EVENTS = Counter(
    "lifecycle_webhook_events_total", "Provider webhook events received and verified, by provider and type.",
    ["provider", "type"])

NPS_ANSWERS = Counter(
    "lifecycle_nps_answers_total",
    "Net Promoter Score links followed, by outcome: recorded (an email's first answer), changed (another "
    "score for the same email), unchanged, unknown (no such email, or its customer was forgotten), invalid "
    "(a forged or damaged link).", ["outcome"])


def count_nps_answer(outcome: str) -> None:
    """One score link followed, by what it did."""
    NPS_ANSWERS.labels(outcome=outcome).inc()


def count_provider_error(provider: str, kind: str) -> None:
    """One message a provider did not accept (kind: retryable, permanent or unusable)."""
    PROVIDER_ERRORS.labels(provider=provider, kind=kind).inc()


def count_webhook_event(provider: str, event_type: str) -> None:
    """One verified webhook event of `event_type` from `provider` (call it once per event of a batch)."""
    WEBHOOK_EVENTS.labels(provider=provider, type=event_type).inc()


@dataclass(frozen=True)
class LedgerCounts:
    """The ledger at one instant: sends by (campaign, status), due backlog and last evaluation by campaign."""

    sends: dict[tuple[str, str], int]
    due: dict[str, int]
    last_evaluated: dict[str, dt.datetime]


def ledger_counts(session: Session, now: dt.datetime) -> LedgerCounts:
    """Set-based, on the (campaign, status, next attempt) index: one grouped count that reads the
    index and never a send row, then one index search per campaign with planned sends for the due
    ones. `now` is naive UTC, as the store keeps time."""
    rows = session.execute(select(Send.campaign_id, Send.status, func.count())
                           .group_by(Send.campaign_id, Send.status)).all()
    sends = {(campaign, status): int(count) for campaign, status, count in rows}
    planned = sorted({campaign for campaign, status in sends if status == SendStatus.PLANNED})
    due = dict(session.execute(
        select(Send.campaign_id, func.count())
        .where(Send.campaign_id.in_(planned), Send.status == SendStatus.PLANNED, Send.next_attempt_at <= now)
        .group_by(Send.campaign_id)).all()) if planned else {}
    last = {campaign: moment for campaign, moment in
            session.execute(select(CampaignState.campaign_id, CampaignState.last_evaluated_at))}
    return LedgerCounts(sends=sends, due={campaign: int(due.get(campaign, 0)) for campaign in planned},
                        last_evaluated=last)
