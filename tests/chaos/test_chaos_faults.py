"""A few thousand emails through a Postmark that fails in every way it can, tick after tick until settled.

One run (the module's fixture) deals 5xx answers, 429s with a short and a long Retry-After,
connection resets, stalls past the client's timeout and 200s that are an HTML page among the
first requests, and answers ErrorCode 406 for a sample of the recipients. Ticks run 40 s
apart (in `--at` time) until nothing is planned or in flight; each test checks one promise.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from chaoskit import NOW, ChaosShop, Figures, Key, Ledger, Row, Ticks, lost
from sqlalchemy import select
from standin import Fault, FaultMix, ProviderStandIn, Request

from runner.models import SendStatus, Suppression
from runner.store import Store

pytestmark = pytest.mark.chaos

CLIENT_TIMEOUT = 1.0
TICK_STEP = dt.timedelta(seconds=40)
HTTP_SETTINGS = {
    "LIFECYCLE_HTTP_TIMEOUT": f"{CLIENT_TIMEOUT:g}",
    "LIFECYCLE_HTTP_MAX_RETRIES": "2",
    "LIFECYCLE_HTTP_MAX_RETRY_WAIT": "5",  # a longer Retry-After goes back to the ledger
    "LIFECYCLE_RETRY_BASE_SECONDS": "1",
}


@dataclass(frozen=True)
class FaultRun:
    shop: ChaosShop
    standin: ProviderStandIn
    ticks: Ticks
    rows: dict[Key, Row]
    suppressed: set[str]
    inactive: frozenset[str]

    def tick_of(self, request: Request) -> dt.datetime:
        return self.ticks.instant_at(request.arrived)


def inactive_sample(shop: ChaosShop, rng: random.Random) -> frozenset[str]:
    """Recipients Postmark will call inactive: most of them due more than one email, so a second campaign
    (or a second line of an order) would try them again."""
    sends = Counter(due.email for due in shop.to_send.values())
    several = sorted(email for email, count in sends.items() if count > 1)
    once = sorted(email for email, count in sends.items() if count == 1)
    return frozenset(rng.sample(several, 30) + rng.sample(once, 10))


@pytest.fixture(scope="module")
def fault_run(chaos_shop: ChaosShop, tmp_path_factory: pytest.TempPathFactory, seed: int,
              figures: Figures) -> Iterator[FaultRun]:
    folder = tmp_path_factory.mktemp("faults")
    store = chaos_shop.copy_store(folder)
    ledger = Ledger(store)
    inactive = inactive_sample(chaos_shop, random.Random(seed))
    mix = FaultMix(seed=seed, among=28, server_error=3, throttle=3, throttle_long=2, reset=2, stall=2, html=3,
                   retry_after=1.0, long_retry_after=100.0, stall_seconds=CLIENT_TIMEOUT + 0.5,
                   late_after=CLIENT_TIMEOUT / 2, inactive=inactive)
    with ProviderStandIn(mix) as standin:
        ticks = Ticks(folder, chaos_shop.settings(store, **standin.settings(), **HTTP_SETTINGS))
        ticks.settle(NOW, TICK_STEP, ledger, most=20)
    store_handle = Store(ledger.url, read_only=True)
    with store_handle.session() as session:
        suppressed = set(session.execute(select(Suppression.email)).scalars())
    store_handle.close()
    figures.messages += len(standin.delivered)
    figures.faults.update(standin.faults)
    figures.retried += standin.retried_attempts()
    yield FaultRun(chaos_shop, standin, ticks, ledger.rows(), suppressed, inactive)


def test_every_due_email_is_sent_or_recorded(fault_run: FaultRun, figures: Figures) -> None:
    problems = lost(fault_run.shop, fault_run.rows)
    figures.lost += len(problems)
    assert not problems, f"{len(problems)} lost, e.g. {problems[:5]}"
    dealt = fault_run.standin.mix.deal()
    assert Counter(map(str, filter(None, dealt))) <= fault_run.standin.faults, "every fault dealt was met"
    for err in fault_run.ticks.workdir.glob("tick-*.err"):
        text = err.read_text()
        assert "Traceback" not in text and "[SQL:" not in text, text[:2000]


def test_only_what_the_provider_accepted_is_recorded_as_sent(fault_run: FaultRun) -> None:
    """A 200 that is an HTML page (or any answer without Postmark's per-message results) delivers nothing."""
    assert fault_run.standin.faults[Fault.HTML] > 0
    delivered = fault_run.standin.delivered
    not_delivered = [key for key, row in fault_run.rows.items() if row.status == SendStatus.SENT
                     and row.provider_message_id not in delivered.get(row.id, [])]
    assert not not_delivered, f"{len(not_delivered)} recorded as sent that the provider never accepted"


def test_retry_after_is_honoured_within_a_send_and_by_the_ledger(fault_run: FaultRun, figures: Figures) -> None:
    """Whoever waits, the send's own retry (wall time) or the ledger (tick time), waits at least as asked."""
    measured = {"send": 0, "ledger": 0}
    for request in fault_run.standin.requests:
        if request.retry_after is None:
            continue
        again = fault_run.standin.next_carrying(request)
        assert again is not None, "throttled messages were never tried again"
        asked, then, later = request.retry_after, fault_run.tick_of(request), fault_run.tick_of(again)
        if later == then:
            waited = again.arrived - request.arrived
            measured["send"] += 1
        else:
            waited = (later - then).total_seconds()
            measured["ledger"] += 1
        figures.retry_after.append((asked, waited))
        assert waited >= asked, f"Retry-After {asked:g} s, tried again after {waited:.2f} s"
    assert measured["send"] and measured["ledger"], measured


def test_addresses_rejected_as_inactive_are_suppressed_and_not_tried_again(fault_run: FaultRun) -> None:
    """Postmark's 406 means the recipient is inactive: suppress the address; no campaign mails it again."""
    first_rejection: dict[str, int] = {}
    for request in fault_run.standin.requests:
        if not request.late:  # an answer that came too late was never read
            for address in request.rejected:
                first_rejection.setdefault(address, request.number)
    assert len(first_rejection) > 10, "too few rejections to tell"
    tried_again = {to for request in fault_run.standin.requests for to in request.to
                   if to in first_rejection and request.number > first_rejection[to]}
    assert not tried_again, f"{len(tried_again)} rejected addresses were sent to again"
    assert set(first_rejection) <= fault_run.suppressed, "a rejected address was not suppressed"
    for key, row in fault_run.rows.items():
        if row.email in first_rejection:
            assert row.status in (SendStatus.FAILED, SendStatus.SKIPPED), (key, row)


def test_a_delivery_repeats_only_when_its_answer_came_too_late(fault_run: FaultRun) -> None:
    """Postmark has no idempotency key: a request answered after the client gave up may deliver twice."""
    late = {send_id for request in fault_run.standin.requests if request.late for send_id in request.send_ids}
    duplicates = fault_run.standin.duplicates()
    assert set(duplicates) <= late

