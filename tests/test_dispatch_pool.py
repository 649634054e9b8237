"""Concurrent provider requests: a worker keeps a few batches with an HTTP provider while it renders
the next, and every send is still recorded once. A real store and a Postmark stand-in on a socket."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from postmark_sink import PostmarkSink
from shopkit import ROOT, bulk_shop, utc
from sqlalchemy import func, select

from runner.app import App
from runner.errors import ProviderError
from runner.models import Send, SendStatus
from runner.providers.base import OutgoingMessage, SendResult
from runner.providers.postmark import PostmarkProvider

NOW = utc(2026, 11, 20, 12, 0)
CUSTOMERS = 120


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


@pytest.fixture
def sink() -> Iterator[PostmarkSink]:
    with PostmarkSink(latency=0.15) as running:  # longer than claiming and rendering a batch, even on a busy machine
        yield running


@pytest.fixture
def due(app: App, campaigns_dir: Path) -> None:
    shutil.copy(ROOT / "campaigns" / "thank-you.yaml", campaigns_dir)
    bulk_shop(app.store, CUSTOMERS)


def configured(app: App, concurrency: int) -> App:
    app.settings = app.settings.with_values(BATCH_SIZE="10", DISPATCH_CONCURRENCY=str(concurrency))
    return app


def statuses(app: App) -> dict[str, int]:
    with app.store.session() as session:
        return dict(session.execute(select(Send.status, func.count()).group_by(Send.status)).all())


def delivered(sink: PostmarkSink) -> Counter[str]:
    """How often the stand-in accepted each send, by its X-Send-ID header."""
    return Counter(next(h["Value"] for h in m["Headers"] if h["Name"] == "X-Send-ID") for m in sink.accepted)


@pytest.mark.parametrize("concurrency, overlapping", [(1, False), (4, True)])
def test_requests_overlap_up_to_the_concurrency_and_each_send_is_recorded_once(
        app: App, due: None, sink: PostmarkSink, concurrency: int, overlapping: bool) -> None:
    app = configured(app, concurrency)
    with PostmarkProvider("sink-token", base_url=sink.url) as provider:
        report = app.tick(NOW, app.campaigns(NOW), provider).rows()[0]
    assert report["sent"] == CUSTOMERS
    assert statuses(app) == {SendStatus.SENT: CUSTOMERS}
    assert sorted(delivered(sink).values()) == [1] * CUSTOMERS
    assert (sink.peak_in_flight > 1) is overlapping
    assert sink.peak_in_flight <= concurrency


def test_an_unusable_provider_mid_pool_records_the_batches_in_flight_and_gives_the_rest_back(
        app: App, due: None, sink: PostmarkSink) -> None:
    app = configured(app, 4)
    sink.fail_next(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
    with PostmarkProvider("sink-token", base_url=sink.url) as provider, pytest.raises(ProviderError):
        app.tick(NOW, app.campaigns(NOW), provider)
    found = statuses(app)
    assert SendStatus.SENDING not in found  # nothing left claimed: what was not sent is planned again
    assert found[SendStatus.SENT] == len(sink.accepted) > 0  # the batches in flight beside it were recorded
    assert found[SendStatus.SENT] + found[SendStatus.PLANNED] == CUSTOMERS
    with app.store.session() as session:
        attempts = set(session.execute(select(Send.attempts).where(Send.status == SendStatus.PLANNED)).scalars())
    assert attempts == {0}  # the refused batch's attempt was given back


class CrashingPostmark(PostmarkProvider):
    """Postmark, but the process dies while its `crash_on`-th request is being made."""

    def __init__(self, *args: Any, crash_on: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crash_on = crash_on
        self.calls = 0
        self.lock = threading.Lock()

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        with self.lock:
            self.calls += 1
            crash = self.calls == self.crash_on
        if crash:
            raise Crash
        return super().send_batch(messages)


def test_a_crash_mid_pool_loses_nothing_and_repeats_at_most_the_batches_in_flight(
        app: App, due: None, sink: PostmarkSink, settings: Any) -> None:
    app = configured(app, 4)
    with CrashingPostmark("sink-token", base_url=sink.url, crash_on=5) as provider, pytest.raises(Crash):
        app.tick(NOW, app.campaigns(NOW), provider)
    assert SendStatus.SENDING in statuses(app)
    later = configured(App(settings), 4)
    with PostmarkProvider("sink-token", base_url=sink.url) as provider:
        later.tick(NOW + dt.timedelta(minutes=11), later.campaigns(NOW), provider)  # the leases ran out
    assert statuses(app) == {SendStatus.SENT: CUSTOMERS}
    counts = delivered(sink)
    assert len(counts) == CUSTOMERS  # none lost
    repeated = sum(n - 1 for n in counts.values())
    assert repeated <= 3 * 10  # at most the other batches in flight when it died, unrecorded


def test_a_retry_after_one_request_was_told_holds_back_the_other_threads_requests() -> None:
    """Thread A is told to wait 5 s; thread B, starting while A waits, waits it out before its request."""
    clock = [0.0]
    events: list[tuple[str, str, float]] = []
    a_waiting, b_done = threading.Event(), threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        to = json.loads(request.read())[0]["To"]
        events.append(("request", to, clock[0]))
        if to == "a@example.com" and sum(1 for e in events if e[:2] == ("request", to)) == 1:
            return httpx.Response(429, headers={"Retry-After": "5"}, json={"ErrorCode": 429, "Message": "slow down"})
        return httpx.Response(200, json=[{"ErrorCode": 0, "MessageID": f"id-{to}", "Message": "OK"}])

    def sleep(seconds: float) -> None:
        who = threading.current_thread().name
        events.append(("sleep", who, seconds))
        if who == "a":  # A sleeps out its Retry-After only once B has had its turn
            a_waiting.set()
            b_done.wait(5)
        clock[0] += seconds

    provider = PostmarkProvider("token", base_url="https://pm.test", client=httpx.Client(
        transport=httpx.MockTransport(handler)), sleep=sleep, clock=lambda: clock[0])

    def send(to: str) -> Callable[[], None]:
        return lambda: provider.send_batch([message(to)])

    a = threading.Thread(target=send("a@example.com"), name="a")
    a.start()
    assert a_waiting.wait(5)
    b = threading.Thread(target=lambda: (send("b@example.com")(), b_done.set()), name="b")
    b.start()
    b.join(5)
    a.join(5)
    b_sleeps = [seconds for kind, who, seconds in events if kind == "sleep" and who == "b"]
    assert b_sleeps and b_sleeps[0] == pytest.approx(5.0)  # the rest of A's pause, before B's request
    b_request = next(i for i, e in enumerate(events) if e[:2] == ("request", "b@example.com"))
    assert events.index(("sleep", "b", b_sleeps[0])) < b_request


def message(to: str) -> OutgoingMessage:
    return OutgoingMessage(idempotency_key=f"k-{to}", campaign_id="c", send_id=1, to=to, from_="s@example.com",
                           subject="Hi", html="<p>Hi</p>", text="Hi", date=dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
