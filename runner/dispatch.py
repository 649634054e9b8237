"""Delivering planned sends: claim a batch, render it, hand it to the provider, record each result.

The order of writes is what makes delivery crash-safe (docs/delivery.md):
1. claim: one UPDATE marks a batch `sending` with a lease and a claim token, then commits;
2. render and call the provider, with an idempotency key that is the same on every attempt
   (an HTTP provider takes a few batches at once, each from its own claim, while the next renders);
3. record: each row becomes sent, failed, or planned again with a later next_attempt_at, and an
   address the provider rejected for good is suppressed; one commit for all of it.
A crash after 1 leaves rows `sending`; when their lease runs out they are claimed again and
re-sent with the same idempotency keys. Nothing is lost; at most the batches in flight repeat,
and not at all where the provider honours idempotency keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, or_, select, true, update
from sqlmodel import Session

from .campaigns import Campaign
from .context import Shop, build_contexts
from .coupons.pool import hand_out
from .errors import LifecycleError, ProviderError
from .journeys.exits import journey_exits
from .models import Customer, Send, SendStatus, SkipReason, Suppression, blocked_reason
from .policies.retries import retry_in_window
from .privacy.consent import provider_rejection
from .providers.base import Outcome, OutgoingMessage, Provider, SendResult
from .rendering.templates import Renderer
from .suppressions import NewSuppression, add_suppressions
from .telemetry import count_provider_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    batch_size: int = 100
    max_attempts: int = 5
    retry_base: dt.timedelta = dt.timedelta(minutes=5)
    lease: dt.timedelta = dt.timedelta(minutes=10)
    concurrency: int = 1  # batches with the provider at once (for providers that allow it)
    jitter: Callable[[], float] = random.Random().random

    def retry_at(self, now: dt.datetime, attempts: int, retry_after: float | None) -> dt.datetime:
        """Exponential backoff with jitter, never sooner than the provider asked."""
        wait = self.retry_base.total_seconds() * 2 ** max(attempts - 1, 0) * (1 + 0.25 * self.jitter())
        return now + dt.timedelta(seconds=max(wait, retry_after or 0))


def idempotency_key(send: Send) -> str:
    """Stable for a ledger row across every attempt and process."""
    digest = hashlib.sha256(f"{send.campaign_id}\0{send.occurrence_key}".encode()).hexdigest()[:12]
    return f"{send.campaign_id}-{send.id}-{digest}"


def message_headers(campaign_id: str, send_id: int | None, unsubscribe_url: str) -> dict[str, str]:
    headers = {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Campaign-ID": campaign_id,
    }
    if send_id is not None:
        headers["X-Send-ID"] = str(send_id)
    return headers


def _claimable(campaign_id: str, now: dt.datetime):  # type: ignore[no-untyped-def]
    return and_(Send.campaign_id == campaign_id, or_(
        and_(Send.status == SendStatus.PLANNED, Send.next_attempt_at <= now),
        and_(Send.status == SendStatus.SENDING, Send.lease_until <= now),
    ))


def fail_interrupted(session: Session, campaign_id: str, now: dt.datetime, policy: DeliveryPolicy) -> int:
    """Fail sends whose every attempt was cut off mid-send (lease expired, attempts used up).

    Without this, a message that crashes the process each time it is sent would be claimed again
    after every lease, forever, and hold back its campaign. Returns how many were failed.
    """
    result = session.execute(update(Send).where(
        Send.campaign_id == campaign_id, Send.status == SendStatus.SENDING, Send.lease_until <= now,
        Send.attempts >= policy.max_attempts,
    ).values(status=SendStatus.FAILED, claim_token=None, lease_until=None, updated_at=now,
             last_error="every attempt was interrupted before its result was recorded (the process stopped "
                        "or crashed while sending); the provider may or may not have accepted it")
       .execution_options(synchronize_session=False))
    session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim(session: Session, campaign_id: str, now: dt.datetime, policy: DeliveryPolicy) -> list[Send]:
    """Atomically take up to batch_size sends that are due for an attempt (or whose lease ran out)."""
    token = uuid.uuid4().hex
    # A materialized CTE picks the batch once. As a plain IN (subquery), PostgreSQL may run the
    # subquery again for each row it updates, and every run finds the next unclaimed row: the
    # "batch" then grows to every due row of the campaign.
    batch = (select(Send.id).where(_claimable(campaign_id, now)).order_by(Send.id).limit(policy.batch_size)
             .with_for_update(skip_locked=True).cte("batch").prefix_with("MATERIALIZED", dialect="postgresql"))
    session.execute(update(Send).where(Send.id.in_(select(batch.c.id)), _claimable(campaign_id, now)).values(
        status=SendStatus.SENDING, claim_token=token, lease_until=now + policy.lease,
        attempts=Send.attempts + 1, updated_at=now).execution_options(synchronize_session=False))
    session.commit()
    return list(session.exec(select(Send).where(Send.claim_token == token).order_by(Send.id)).scalars())


def _still_allowed(session: Session, campaign: Campaign, sends: list[Send]) -> dict[int, SkipReason]:
    """Sends whose customer unsubscribed, bounced or withdrew consent since they were planned,
    including an address a provider rejected earlier in this tick (in this campaign or another)."""
    ids = {s.customer_id for s in sends}
    rows = session.execute(
        select(Customer.id, Customer.accepts_marketing, Suppression.id)
        .outerjoin(Suppression, Suppression.email == Customer.email).where(Customer.id.in_(ids)))
    blocked = {customer_id: reason for customer_id, consent, suppressed in rows
               if (reason := blocked_reason(suppressed is not None, consent, campaign.marketing))}
    return {s.id: blocked[s.customer_id] for s in sends if s.customer_id in blocked}  # type: ignore[misc]


#: how a batch's sends the provider accepted are recorded (`_settle`): one executemany, not an ORM update
#: of each row; the batch's Send objects are not used after it
_RECORD_SENT = (update(Send.__table__).where(Send.__table__.c.id == bindparam("send_id"))  # type: ignore[attr-defined]
                .values(status=SendStatus.SENT, sent_at=bindparam("now"), updated_at=bindparam("now"),
                        provider=bindparam("provider"), provider_message_id=bindparam("message_id"), last_error=None,
                        claim_token=None, lease_until=None))


def _record_unsent(send: Send, result: SendResult, now: dt.datetime, policy: DeliveryPolicy, provider: str) -> str:
    """Record a result the provider did not accept (accepted ones go through _RECORD_SENT): planned again
    for a retry while attempts remain, failed otherwise; returns the count it falls under."""
    send.claim_token = None
    send.lease_until = None
    send.updated_at = now
    send.provider = provider
    send.last_error = result.error
    if result.outcome is Outcome.RETRYABLE and send.attempts < policy.max_attempts:
        send.status = SendStatus.PLANNED
        send.next_attempt_at = policy.retry_at(now, send.attempts, result.retry_after)
        return "retrying"
    send.status = SendStatus.FAILED
    return "failed"


def _with_pool_codes(session: Session, campaign: Campaign, pool: str, sends: list[Send], now: dt.datetime,
                     policy: DeliveryPolicy, counts: Counter[str]) -> tuple[list[Send], dict[str, str]]:
    """The sends that hold a code of the pool (keeping the one they got on an earlier attempt, else taking
    the next free one), with their codes by occurrence key. A send the dry pool left without a code is
    held back (deferred:no_coupon) until codes are imported, and skipped (skipped:no_coupon) once it
    has expired, like any other send not sent within expire_after."""
    codes = hand_out(session, pool, [s.id for s in sends], now)  # type: ignore[misc]
    for send in sends:
        if send.id in codes:
            continue
        send.claim_token = send.lease_until = None
        send.updated_at, send.skip_reason = now, SkipReason.NO_COUPON
        if send.due_at <= now - campaign.spec.expire_after:
            send.status = SendStatus.SKIPPED
            counts[f"skipped:{SkipReason.NO_COUPON}"] += 1
        else:  # the attempt is given back: no email was tried
            send.status, send.attempts = SendStatus.PLANNED, send.attempts - 1
            send.next_attempt_at = now + policy.retry_base
            counts[f"deferred:{SkipReason.NO_COUPON}"] += 1
    return ([s for s in sends if s.id in codes],
            {s.occurrence_key: codes[s.id] for s in sends if s.id in codes})  # type: ignore[index]


def _hold_for_codes(session: Session, campaign: Campaign, now: dt.datetime, policy: DeliveryPolicy,
                    counts: Counter[str]) -> None:
    """Once the pool ran dry, the campaign's other planned sends due now would find no code either: hold
    them back (or skip the expired ones) in two statements instead of claiming them batch by batch."""
    waiting = and_(Send.campaign_id == campaign.id, Send.status == SendStatus.PLANNED, Send.next_attempt_at <= now)
    expired = Send.due_at <= now - campaign.spec.expire_after
    for outcome, condition, values in (
            ("skipped", expired, {"status": SendStatus.SKIPPED, "next_attempt_at": None}),
            ("deferred", true(), {"next_attempt_at": now + policy.retry_base})):
        result = session.execute(update(Send).where(waiting, condition)
                                 .values(skip_reason=SkipReason.NO_COUPON, updated_at=now, **values)
                                 .execution_options(synchronize_session=False))
        counts[f"{outcome}:{SkipReason.NO_COUPON}"] += int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class _Batch:
    """One claimed batch on its way through the provider: the sends and their messages, in order."""

    sends: list[Send]
    messages: list[OutgoingMessage]
    future: Future[list[SendResult]] | None = None

    @property
    def customers(self) -> set[int]:
        return {send.customer_id for send in self.sends}


def _send_now(provider: Provider, messages: list[OutgoingMessage]) -> Future[list[SendResult]]:
    """The provider's answer as an already finished future: one batch at a time, in this thread."""
    future: Future[list[SendResult]] = Future()
    try:
        future.set_result(provider.send_batch(messages))
    except Exception as exc:  # handed to whoever reads the future, as from a pool thread
        future.set_exception(exc)
    return future


def dispatch(session: Session, campaign: Campaign, *, renderer: Renderer, provider: Provider, shop: Shop,
             default_from: str, now: dt.datetime, policy: DeliveryPolicy,
             should_stop: Callable[[], bool] = lambda: False) -> Counter[str]:
    """Send every planned send of a campaign that is due for an attempt; returns counts by outcome.

    With a provider whose `send_batch` may run concurrently, up to `policy.concurrency` batches
    are with the provider at once while this thread claims and renders the next; all store work
    stays in this thread. One customer is never in two requests at once, so an address rejected
    in one answer is suppressed before any later request could carry it. `should_stop` is asked
    between batches: a daemon shutting down finishes (and records) the batches in flight.
    """
    counts: Counter[str] = Counter()
    counts["failed"] += fail_interrupted(session, campaign.id, now, policy)
    policy = replace(policy, batch_size=min(policy.batch_size, provider.max_batch_size))
    width = policy.concurrency if provider.concurrent else 1
    executor = ThreadPoolExecutor(width, thread_name_prefix=f"send-{provider.name}") if width > 1 else None
    in_flight: deque[_Batch] = deque()
    errors: list[Exception] = []
    pool_dry = [False]  # a coupon pool ran out: the campaign's other sends were held back

    def settle_oldest() -> bool:
        """Record the oldest batch's answer; True when it suppressed an address."""
        batch = in_flight.popleft()
        try:
            return _settle(session, campaign, batch, now, policy, provider, counts, shop.default_zone)
        except Exception as exc:  # the batches still in flight are recorded before it is raised
            errors.append(exc)
            return False

    try:
        while (not errors and not pool_dry[0] and not should_stop()
               and (sends := claim(session, campaign.id, now, policy))):
            batch = _prepare(session, campaign, sends, renderer=renderer, shop=shop, default_from=default_from,
                             now=now, policy=policy, provider=provider, counts=counts, pool_dry=pool_dry)
            suppressed = False
            while in_flight and (len(in_flight) >= width
                                 or any(batch.customers & earlier.customers for earlier in in_flight)):
                suppressed |= settle_oldest()
            if suppressed and not errors:
                _skip_blocked(session, campaign, batch, now, counts)  # checked before those answers came
            if batch.messages and not errors:
                batch.future = (executor.submit(provider.send_batch, batch.messages) if executor is not None
                                else _send_now(provider, batch.messages))
                in_flight.append(batch)
                if executor is None:
                    settle_oldest()
            elif batch.sends:  # claimed but not sent: the attempt goes back
                _give_back(batch)
                session.commit()
        while in_flight:
            settle_oldest()
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    if errors:
        raise errors[0]
    return counts


def _prepare(session: Session, campaign: Campaign, sends: list[Send], *, renderer: Renderer, shop: Shop,
             default_from: str, now: dt.datetime, policy: DeliveryPolicy, provider: Provider,
             counts: Counter[str], pool_dry: list[bool]) -> _Batch:
    """Skip the claimed sends whose customer may no longer be mailed, give the rest their coupon pool's
    codes (setting `pool_dry[0]` when the pool ran out), render them; commits each step."""
    # also a journey an exit ended since the step was planned: the exit wins, as at planning
    blocked = _still_allowed(session, campaign, sends) | journey_exits(session, campaign, sends, now)
    ready: list[Send] = []
    for send in sends:
        if send.id in blocked:
            _skip(send, blocked[send.id], now, counts)  # type: ignore[index]
        else:
            variant = campaign.variant_to_send(send.variant, send.customer_id)
            if variant != send.variant:  # assigned only when it changes: an unchanged send needs no flush
                send.variant = variant
            ready.append(send)
    pool_codes: dict[str, str] = {}
    if ready and campaign.coupon is not None and campaign.coupon.pool is not None:
        served, pool_codes = _with_pool_codes(session, campaign, campaign.coupon.pool, ready, now, policy, counts)
        if len(served) < len(ready):
            pool_dry[0] = True
            _hold_for_codes(session, campaign, now, policy, counts)
        ready = served
    contexts = build_contexts(session, campaign, ready, shop, now, pool_codes)
    # Skips are final and codes handed out are the sends' for good before anything is rendered; no
    # transaction (on SQLite: no write lock) is held while rendering.
    session.commit()
    batch = _Batch([], [])
    with renderer.pinned():  # the batch's templates are checked for edits once, not for every email
        for send, context in zip(ready, contexts, strict=True):
            try:
                message = campaign.message_for(send.variant, send.step)
                rendered = renderer.render(message, context, default_from=default_from)
            except LifecycleError as exc:
                failure = SendResult.permanent(f"render failed: {exc.with_hint()}")
                counts[_record_unsent(send, failure, now, policy, provider.name)] += 1
                continue
            headers = message_headers(campaign.id, send.id, context["unsubscribe_url"])
            to = context["customer"]["email"]
            batch.messages.append(OutgoingMessage.from_rendered(
                rendered, idempotency_key=idempotency_key(send), campaign_id=campaign.id, send_id=send.id, to=to,
                headers=headers, date=now.replace(tzinfo=dt.UTC)))
            batch.sends.append(send)
    session.commit()  # render failures are final before the provider is called
    return batch


def _skip(send: Send, reason: SkipReason, now: dt.datetime, counts: Counter[str]) -> None:
    send.status, send.skip_reason = SendStatus.SKIPPED, reason
    send.claim_token = send.lease_until = None
    send.updated_at = now
    counts[f"skipped:{reason}"] += 1


def _skip_blocked(session: Session, campaign: Campaign, batch: _Batch, now: dt.datetime,
                  counts: Counter[str]) -> None:
    """Take out of a rendered batch the sends whose customer was suppressed since it was checked."""
    blocked = _still_allowed(session, campaign, batch.sends)
    if not blocked:
        return
    kept = [(send, message) for send, message in zip(batch.sends, batch.messages, strict=True)
            if send.id not in blocked]
    for send in batch.sends:
        if send.id in blocked:
            _skip(send, blocked[send.id], now, counts)  # type: ignore[index]
    batch.sends, batch.messages = [s for s, _ in kept], [m for _, m in kept]
    session.commit()


def _give_back(batch: _Batch) -> None:
    """Nothing of the batch went out: its sends are planned again, the attempt not counted."""
    for send in batch.sends:
        send.status, send.attempts, send.claim_token, send.lease_until = (
            SendStatus.PLANNED, send.attempts - 1, None, None)


def _settle(session: Session, campaign: Campaign, batch: _Batch, now: dt.datetime, policy: DeliveryPolicy,
            provider: Provider, counts: Counter[str], default_zone: ZoneInfo) -> bool:
    """Wait for a batch's answer and record it: each send's result, and the addresses rejected for good
    (True when there were any)."""
    assert batch.future is not None
    try:
        results = batch.future.result()
    except ProviderError:
        count_provider_error(provider.name, "unusable")
        _give_back(batch)
        session.commit()
        raise
    to_send, messages = batch.sends, batch.messages
    if len(results) != len(messages):
        # Which of them went out is unknowable: fail them all rather than risk sending twice.
        error = f"provider {provider.name} returned {len(results)} results for {len(messages)} messages"
        for send in to_send:
            _record_unsent(send, SendResult.permanent(error), now, policy, provider.name)
        session.commit()
        raise ProviderError(error, "this is a bug in the provider plugin; the batch is recorded as failed")
    rejected: list[NewSuppression] = []
    accepted: list[dict[str, object]] = []
    for send, message, result in zip(to_send, messages, results, strict=True):
        if result.outcome is Outcome.ACCEPTED:
            accepted.append({"send_id": send.id, "message_id": result.provider_message_id})
            continue
        count_provider_error(provider.name, result.outcome.value)
        counts[_record_unsent(send, result, now, policy, provider.name)] += 1
        if result.suppress is not None:
            rejected.append(NewSuppression(message.to, result.suppress, customer_id=send.customer_id,
                                           detail=f"{(result.error or provider.name)[:500]} "
                                                  f"(campaign {campaign.id}, send {send.id})"))
    if accepted:  # the common outcome as one executemany, not an ORM update of each row
        session.execute(_RECORD_SENT, [{**row, "now": now, "provider": provider.name} for row in accepted])
        counts["sent"] += len(accepted)
    retry_in_window(session, campaign, to_send, default_zone)  # a retry waits out quiet hours, as a first attempt
    # In the same transaction as the results: once they are recorded, no later batch or
    # campaign can plan or send to a rejected address.
    added = add_suppressions(session, rejected, now, source=provider_rejection(provider.name))
    session.commit()
    if added:
        log.warning("%s: %d address(es) suppressed after %s rejected them for good",
                    campaign.id, len(added), provider.name)
    return bool(rejected)
