"""Receiving one webhook request: authenticate it, match its events to the ledger, store each once,
and suppress the addresses that hard-bounced, complained or unsubscribed; all in one transaction.

Matching uses what dispatch put in every message: the ledger id (`send_id` in the provider's
tags, metadata or custom args, or the `X-Send-ID` header), else the provider's message id as
the send recorded it. An event that matches no send is still stored (and counted as
unmatched) with the customer found by address, because a hard bounce is a fact about the
address whichever message revealed it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlmodel import Session

from ..models import Customer, Event, EventType, Send, WebhookNonce
from ..plugins import WEBHOOKS, available
from ..privacy.consent import from_webhook
from ..privacy.forget import redact_late_events
from ..settings import HTTP_MAX_BODY_BYTES, Settings
from ..sql import dialect_insert
from ..store import Store, utc_naive
from ..suppressions import NewSuppression, add_suppressions, chunked
from .base import ProviderEvent, UnknownWebhookProvider, Webhook, WebhookTooLarge

EVENT = cast(Table, Event.__table__)
# What each event type does to the suppression list; the others only record.
SUPPRESSES = {EventType.BOUNCED: "bounced", EventType.COMPLAINED: "complained",
              EventType.UNSUBSCRIBED: "unsubscribed"}


@dataclass
class Receipt:
    """What one request did: events newly stored by type, replays, events without a ledger row,
    provider event types not recorded (by the provider's name), addresses newly suppressed."""

    provider: str
    recorded: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    unmatched: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    suppressed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "recorded": dict(self.recorded), "duplicates": self.duplicates,
                "unmatched": self.unmatched, "ignored": dict(self.ignored), "suppressed": self.suppressed}


def webhook_class(provider: str) -> type[Webhook]:
    """The webhook registered under `provider`, or UnknownWebhookProvider (404)."""
    found = available(WEBHOOKS)
    if provider not in found:
        raise UnknownWebhookProvider(f"no webhook for provider {provider!r}",
                                     f"webhook URLs end in one of: {', '.join(sorted(found))}")
    return found[provider].load()  # type: ignore[no-any-return]


def receive(store: Store, settings: Settings, provider: str, headers: Mapping[str, str], body: bytes,
            now: dt.datetime) -> Receipt:
    """Authenticate and apply one webhook request. Raises a WebhookError (with its HTTP status)
    before anything is written when the request is unknown, too large, unauthenticated or malformed."""
    webhook_cls = webhook_class(provider)
    limit = settings[HTTP_MAX_BODY_BYTES]
    if len(body) > limit:
        raise WebhookTooLarge(f"{provider} webhook body of {len(body)} bytes is over the limit of {limit}",
                              f"raise {HTTP_MAX_BODY_BYTES.name} if the provider really posts this much")
    now = utc_naive(now)
    webhook = webhook_cls.from_settings(settings)
    batch = webhook.read({k.lower(): v for k, v in headers.items()}, body, now)
    with store.session() as session:
        if batch.nonce is not None:
            claim_nonce(session, webhook, batch.nonce, now)
        receipt = record_events(session, provider, batch.events, now)
        session.commit()
    return receipt


def claim_nonce(session: Session, webhook: Webhook, nonce: str, now: dt.datetime) -> None:
    """Record a once-only value, refusing the request when it was seen before. Values older than twice
    the tolerance are dropped: by then any request carrying them fails the timestamp check anyway."""
    session.execute(delete(WebhookNonce).where(WebhookNonce.seen_at < now - 2 * webhook.tolerance))
    statement = dialect_insert(session.connection(), WebhookNonce).values(
        provider=webhook.name, nonce=nonce, seen_at=now).on_conflict_do_nothing()
    if not session.execute(statement.returning(WebhookNonce.nonce)).first():
        raise webhook.refuse("this signature was already used (a replayed request)")


def record_events(session: Session, provider: str, events: Sequence[ProviderEvent], now: dt.datetime) -> Receipt:
    """Store each new event once and apply its suppression; the caller commits."""
    receipt = Receipt(provider)
    fresh: dict[str, ProviderEvent] = {}
    for event in events:
        if event.type is None:
            receipt.ignored[event.provider_type or "(none)"] += 1
        elif event.provider_event_id in fresh:
            receipt.duplicates += 1  # the same event twice in one batch
        else:
            fresh[event.provider_event_id] = event
    if not fresh:
        return receipt
    sends = _match_sends(session, provider, list(fresh.values()))
    customers = _customers_by_email(session, [e.email for e in fresh.values()
                                              if _key(e) not in sends])
    rows = []
    for event in fresh.values():
        send = sends.get(_key(event))
        rows.append({
            "provider": provider, "provider_event_id": event.provider_event_id, "type": event.type.value,
            "send_id": send[0] if send else None,
            "customer_id": send[1] if send else customers.get(event.email),
            "email": event.email, "occurred_at": event.occurred_at, "received_at": now,
            "detail": json.dumps({"provider_type": event.provider_type, **event.detail}, ensure_ascii=False),
        })
    connection = session.connection()
    rows = redact_late_events(connection, rows)  # an address forgotten on request is not written back
    if not rows:
        return receipt
    # one executemany (compiled once, sent in pages), not a statement with a VALUES row per event
    statement = dialect_insert(connection, EVENT).on_conflict_do_nothing(
        index_elements=["provider", "provider_event_id"])
    stored = set(connection.execute(statement.returning(EVENT.c.provider_event_id), rows).scalars())
    suppressions = []
    for row in rows:
        if row["provider_event_id"] not in stored:
            receipt.duplicates += 1
            continue
        receipt.recorded[row["type"]] += 1
        receipt.unmatched += row["send_id"] is None
        event = fresh[row["provider_event_id"]]
        if event.type in SUPPRESSES:
            suppressions.append(NewSuppression(event.email, SUPPRESSES[event.type], _reason(provider, event),
                                                 row["customer_id"]))
    receipt.suppressed = len(add_suppressions(session, suppressions, now, source=from_webhook(provider)))
    return receipt


def _key(event: ProviderEvent) -> tuple[int | None, str | None]:
    return event.send_id, event.message_id


def _match_sends(session: Session, provider: str,
                 events: list[ProviderEvent]) -> dict[tuple[int | None, str | None], tuple[int, int]]:
    """(send id, customer id) for each event's (send_id, message_id), by ledger id first, then message id."""
    by_id: dict[int, tuple[int, int]] = {}
    for ids in chunked(sorted({e.send_id for e in events if e.send_id is not None})):
        by_id.update((sid, (sid, cid)) for sid, cid in session.execute(
            select(Send.id, Send.customer_id).where(Send.id.in_(ids))))
    wanted = sorted({e.message_id for e in events if e.message_id and e.send_id not in by_id})
    by_message: dict[str, tuple[int, int]] = {}
    for message_ids in chunked(wanted):
        by_message.update((mid, (sid, cid)) for sid, cid, mid in session.execute(
            select(Send.id, Send.customer_id, Send.provider_message_id)
            .where(Send.provider_message_id.in_(message_ids), Send.provider == provider)))
    matched = {}
    for event in events:
        send = by_id.get(event.send_id) if event.send_id is not None else None
        send = send or (by_message.get(event.message_id) if event.message_id else None)
        if send:
            matched[_key(event)] = send
    return matched


def _customers_by_email(session: Session, emails: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunked(sorted(set(emails))):
        found.update((email, cid) for cid, email in session.execute(
            select(Customer.id, Customer.email).where(Customer.email.in_(chunk))))
    return found


def _reason(provider: str, event: ProviderEvent) -> str:
    """The suppression's detail: which provider said what."""
    said = event.detail.get("reason")
    return f"{provider} {event.provider_type}" + (f": {said}" if said else "")
