"""Crash safety and retries: a real store, the real file provider, failures injected around it."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from shopkit import ROOT, ShopBuilder, utc
from sqlalchemy import select

from runner.app import App
from runner.dispatch import claim
from runner.engine import plan, store_time_zones, window_for
from runner.models import Send
from runner.providers.base import OutgoingMessage, Provider, SendResult
from runner.providers.file import FileProvider


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


class CrashingProvider(FileProvider):
    """The file provider, crashing before or after it writes the batch."""

    def __init__(self, outbox: Path, when: str) -> None:
        super().__init__(outbox)
        self.when = when

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if self.when == "before":
            raise Crash
        super().send_batch(messages)
        raise Crash  # accepted by the provider, but never recorded


class ScriptedProvider(FileProvider):
    """The file provider, answering with scripted failures first."""

    def __init__(self, outbox: Path, script: list[SendResult | None]) -> None:
        super().__init__(outbox)
        self.script = script
        self.calls = 0

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.calls += 1
        scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            return [scripted for _ in messages]
        return super().send_batch(messages)


@pytest.fixture
def outbox(app: App) -> Path:
    return Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])


@pytest.fixture
def two_orders(app: App, shop: ShopBuilder, campaigns_dir: Path) -> None:
    shutil.copy(ROOT / "campaigns" / "thank-you.yaml", campaigns_dir)
    for name in ("ada", "bob"):
        shop.order(shop.customer(f"{name}@example.com"), utc(2026, 11, 20, 9, 0))


def ledger(app: App) -> list[Send]:
    with app.store.session() as session:
        return list(session.exec(select(Send).order_by(Send.id)).scalars())


def emls(outbox: Path) -> list[Path]:
    return sorted(outbox.rglob("*.eml"))


NOW = utc(2026, 11, 20, 12, 0)


def test_crash_after_planning_before_sending_sends_exactly_once_after_restart(app, two_orders, outbox, settings):
    campaign = app.campaigns(NOW)[0]
    with app.store.reading() as session:
        zones = store_time_zones(session)
    plan(app.store, campaign, window_for(campaign, NOW.replace(tzinfo=None), None, dt.UTC, zones))
    assert {s.status for s in ledger(app)} == {"planned"}  # the process dies here
    restarted = App(settings)
    report = restarted.tick(NOW + dt.timedelta(minutes=1), restarted.campaigns(NOW), FileProvider(outbox))
    assert report.rows()[0]["sent"] == 2
    assert [s.status for s in ledger(app)] == ["sent", "sent"]
    assert len(emls(outbox)) == 2


@pytest.mark.parametrize("when", ["before", "after"])
def test_crash_around_the_provider_call_sends_exactly_once_after_restart(app, two_orders, outbox, settings, when):
    with pytest.raises(Crash):
        app.tick(NOW, app.campaigns(NOW), CrashingProvider(outbox, when))
    assert {s.status for s in ledger(app)} == {"sending"}
    restarted = App(settings)
    # within the lease nothing is claimed again: the crashed process might still be alive
    early = restarted.tick(NOW + dt.timedelta(minutes=5), restarted.campaigns(NOW), FileProvider(outbox))
    assert early.rows()[0]["sent"] == 0
    late = restarted.tick(NOW + dt.timedelta(minutes=11), restarted.campaigns(NOW), FileProvider(outbox))
    assert late.rows()[0]["sent"] == 2
    assert [s.status for s in ledger(app)] == ["sent", "sent"]
    assert [s.attempts for s in ledger(app)] == [2, 2]
    assert len(emls(outbox)) == 2  # same idempotency keys: the file provider did not write twice


def test_a_send_that_crashes_every_attempt_is_failed_not_retried_forever(app, two_orders, outbox):
    app.settings = app.settings.with_values(MAX_ATTEMPTS="2")
    crashing = CrashingProvider(outbox, "before")
    for minutes in (0, 11):  # two attempts, each cut off; the second after the first lease ran out
        with pytest.raises(Crash):
            app.tick(NOW + dt.timedelta(minutes=minutes), app.campaigns(NOW), crashing)
    assert {(s.status, s.attempts) for s in ledger(app)} == {("sending", 2)}
    report = app.tick(NOW + dt.timedelta(minutes=22), app.campaigns(NOW), FileProvider(outbox)).rows()[0]
    assert (report["failed"], report["sent"]) == (2, 0)
    assert {s.status for s in ledger(app)} == {"failed"}
    assert all("interrupted" in (s.last_error or "") for s in ledger(app))
    assert emls(outbox) == []


def test_retryable_failure_backs_off_then_succeeds(app, two_orders, outbox):
    provider = ScriptedProvider(outbox, [SendResult.retryable("HTTP 503", retry_after=None)])
    first = app.tick(NOW, app.campaigns(NOW), provider).rows()[0]
    assert first["retrying"] == 2 and first["sent"] == 0
    rows = ledger(app)
    assert all(r.status == "planned" and r.attempts == 1 and r.last_error == "HTTP 503" for r in rows)
    wait = rows[0].next_attempt_at - NOW.replace(tzinfo=None)
    assert dt.timedelta(minutes=5) <= wait <= dt.timedelta(minutes=6, seconds=15)  # base 300 s plus jitter
    assert app.tick(NOW + dt.timedelta(minutes=1), app.campaigns(NOW), provider).rows()[0]["sent"] == 0
    later = app.tick(NOW + dt.timedelta(minutes=7), app.campaigns(NOW), provider).rows()[0]
    assert later["sent"] == 2 and provider.calls == 2


def test_retry_after_from_the_provider_is_honoured(app, two_orders, outbox):
    provider = ScriptedProvider(outbox, [SendResult.retryable("HTTP 429", retry_after=3600)])
    app.tick(NOW, app.campaigns(NOW), provider)
    assert ledger(app)[0].next_attempt_at >= NOW.replace(tzinfo=None) + dt.timedelta(hours=1)


def test_attempts_are_bounded_then_failed(app, two_orders, outbox):
    app.settings = app.settings.with_values(MAX_ATTEMPTS="2")
    provider = ScriptedProvider(outbox, [SendResult.retryable("HTTP 500")] * 5)
    app.tick(NOW, app.campaigns(NOW), provider)
    report = app.tick(NOW + dt.timedelta(hours=1), app.campaigns(NOW), provider).rows()[0]
    assert report["failed"] == 2
    assert {(r.status, r.attempts, r.last_error) for r in ledger(app)} == {("failed", 2, "HTTP 500")}
    assert app.tick(NOW + dt.timedelta(days=1), app.campaigns(NOW), provider).rows()[0]["sent"] == 0


def test_permanent_failure_is_recorded_and_never_retried(app, two_orders, outbox):
    provider = ScriptedProvider(outbox, [SendResult.permanent("422 invalid recipient")])
    assert app.tick(NOW, app.campaigns(NOW), provider).rows()[0]["failed"] == 2
    assert app.tick(NOW + dt.timedelta(hours=2), app.campaigns(NOW), provider).rows()[0]["sent"] == 0
    assert {r.last_error for r in ledger(app)} == {"422 invalid recipient"}
    assert provider.calls == 1


def test_one_rejected_recipient_does_not_hold_back_the_batch(app, two_orders, outbox):
    class OneBad(FileProvider):
        def send_batch(self, messages):
            good = super().send_batch([m for m in messages if not m.to.startswith("ada")])
            return [SendResult.permanent("bad mailbox") if m.to.startswith("ada") else good.pop(0)
                    for m in messages]

    row = app.tick(NOW, app.campaigns(NOW), OneBad(outbox)).rows()[0]
    assert row["sent"] == 1 and row["failed"] == 1


def test_messages_carry_campaign_and_send_ids_and_one_click_unsubscribe(app, two_orders, outbox):
    import email
    from email import policy

    app.tick(NOW, app.campaigns(NOW), FileProvider(outbox))
    first = ledger(app)[0]
    message = email.message_from_bytes(emls(outbox)[0].read_bytes(), policy=policy.default)
    assert message["X-Campaign-ID"] == "thank-you"
    assert message["X-Send-ID"] in {str(s.id) for s in ledger(app)}
    assert message["List-Unsubscribe"].startswith("<http") and "/unsubscribe/" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert {part.get_content_type() for part in message.walk()} >= {"text/plain", "text/html"}
    assert first.provider == "file"


class RefusingProvider(Provider):
    name = "refusing"

    def send_batch(self, messages):
        from runner.errors import ProviderError

        raise ProviderError("bad credentials", "set the API key")


def test_an_unusable_provider_gives_the_attempt_back(app, two_orders):
    from runner.errors import ProviderError

    with pytest.raises(ProviderError):
        app.tick(NOW, app.campaigns(NOW), RefusingProvider())
    assert {(r.status, r.attempts) for r in ledger(app)} == {("planned", 0)}


class ShortProvider(FileProvider):
    """A provider plugin with a bug: it writes the batch but answers for one message only."""

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return super().send_batch(messages)[:1]


def test_a_provider_answering_for_fewer_messages_fails_the_batch_instead_of_resending_it(app, two_orders, outbox):
    from runner.errors import ProviderError

    with pytest.raises(ProviderError, match="returned 1 results for 2 messages"):
        app.tick(NOW, app.campaigns(NOW), ShortProvider(outbox))
    assert {r.status for r in ledger(app)} == {"failed"}
    later = app.tick(NOW + dt.timedelta(hours=1), app.campaigns(NOW), FileProvider(outbox)).rows()[0]
    assert later["sent"] == 0 and len(emls(outbox)) == 2


def test_a_claim_takes_at_most_one_batch(app, shop, campaigns_dir):
    shutil.copy(ROOT / "campaigns" / "thank-you.yaml", campaigns_dir)
    for name in ("ada", "bob", "cy"):
        shop.order(shop.customer(f"{name}@example.com"), utc(2026, 11, 20, 9, 0))
    now = NOW.replace(tzinfo=None)
    campaign = app.campaigns(NOW)[0]
    with app.store.reading() as session:
        zones = store_time_zones(session)
    plan(app.store, campaign, window_for(campaign, now, None, dt.UTC, zones))
    with app.store.session() as session:
        policy = app.policy()
        batches = [[s.id for s in claim(session, campaign.id, now, replace(policy, batch_size=1))] for _ in range(4)]
    assert [len(batch) for batch in batches] == [1, 1, 1, 0]
    assert len({i for batch in batches for i in batch}) == 3
