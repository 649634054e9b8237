"""kill -9 of a real `lifecycle tick` at random points while it dispatches a few thousand emails.

Round k starts a tick at NOW + k * ROUND_STEP, as cron would after a crash: by then the leases
of the tick killed before it (on the sends it had claimed, on a campaign it was evaluating) have
run out, so each round also resends what the last kill left in flight. The kill comes once the
provider has taken a random number more messages: every other time at once (before the tick can
record what the provider took; for the file provider, a failpoint stops the tick there), the other
times a random 0-400 ms later, so it lands anywhere: rendering, mid-request, recording, claiming.
Then ticks run until the ledger is settled: nothing due may be lost, and each repeat must be a
message the provider took from a killed tick's batch in flight.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from chaoskit import BATCH_SIZE, CONCURRENCY, LEASE, NOW, ChaosShop, Figures, Key, Ledger, Row, Ticks, lost, wait_until
from standin import ProviderStandIn

from runner.models import SendStatus

pytestmark = pytest.mark.chaos

KILLS = 4
ROUND_STEP = LEASE + LEASE / 10
SETTLE_STEP = LEASE / 10


@dataclass(frozen=True)
class Kill:
    in_flight: frozenset[int]  # sends the killed tick had claimed and not recorded
    taken: int  # how many of them the provider took from it: each is sent again unless the provider deduplicates


def kill_rounds(ticks: Ticks, ledger: Ledger, total: int, progress: Callable[[], int],
                taken: Callable[[], Counter[int]], rng: random.Random, poll: float = 0.005,
                failpoint: bool = False) -> list[Kill]:
    """KILLS ticks, each killed with SIGKILL at a random point of its dispatch of `total` messages.

    `progress` counts the messages the provider has taken so far, polled every `poll` seconds to
    place the kill; `taken` counts them by send id. With `failpoint` (the file provider, whose
    writes a poll of the outbox sees too late to land in the window by luck), every other tick
    stops itself right after a batch is written and before it is recorded, and is killed there.
    """
    stride = total // (KILLS + 2)  # room for every kill to land before the last message is sent
    kills = []
    for round_ in range(KILLS):
        at = NOW + round_ * ROUND_STEP
        before = taken()
        count = rng.randint(BATCH_SIZE // 2, stride)
        # Every other kill lands as soon as the provider has taken a request, before the tick can
        # record it: the window where a repeat is possible. The others land anywhere in a batch.
        if failpoint and round_ % 2 == 0:
            tick = ticks.start(at, stop_after_written=count)
            wait_until(lambda: tick.stopped() or not tick.running(), timeout=120, poll=poll)  # noqa: B023
        else:
            target = progress() + count
            tick = ticks.start(at)
            # B023 is about late binding: the lambda is called here, within this iteration
            wait_until(lambda: progress() >= target or not tick.running(), timeout=120, poll=poll)  # noqa: B023
            time.sleep(0 if round_ % 2 == 0 else rng.uniform(0, 0.4))
        assert tick.running(), f"the tick ended before the kill: raise the margin ({tick.stderr()[:500]})"
        tick.kill_9()
        in_flight = ledger.in_flight(at)
        after = taken()
        kills.append(Kill(in_flight, sum(after[i] - before[i] for i in in_flight)))
    return kills


def settle_after_kills(ticks: Ticks, ledger: Ledger) -> None:
    """Ticks after the last kill's leases ran out, until nothing is planned or in flight."""
    ticks.settle(NOW + KILLS * ROUND_STEP, SETTLE_STEP, ledger)


def assert_nothing_lost(shop: ChaosShop, ledger: Ledger, figures: Figures) -> dict[Key, Row]:
    rows = ledger.rows()
    problems = lost(shop, rows)
    figures.lost += len(problems)
    assert not problems, f"{len(problems)} lost, e.g. {problems[:5]}"
    return rows


def test_kill_9_mid_dispatch_to_postmark_loses_nothing_and_repeats_at_most_the_batch_in_flight(
        chaos_shop: ChaosShop, tmp_path: Path, seed: int, figures: Figures) -> None:
    store = chaos_shop.copy_store(tmp_path)
    ledger = Ledger(store)
    with ProviderStandIn() as standin:
        ticks = Ticks(tmp_path, chaos_shop.settings(store, **standin.settings()))
        kills = kill_rounds(ticks, ledger, len(chaos_shop.to_send), lambda: standin.deliveries, standin.taken,
                            random.Random(seed))
        settle_after_kills(ticks, ledger)

    rows = assert_nothing_lost(chaos_shop, ledger, figures)
    sent = {row.id: row for row in rows.values() if row.status == SendStatus.SENT}
    not_delivered = [i for i, row in sent.items() if row.provider_message_id not in standin.delivered.get(i, [])]
    assert not not_delivered, f"{len(not_delivered)} recorded as sent with no matching delivery"
    assert set(standin.delivered) <= set(sent), "delivered but not recorded as sent"

    assert any(kill.in_flight for kill in kills), "no kill caught a batch in flight: nothing was tested"
    # claimed by the killed tick: its batches with the provider, and the one it was rendering
    assert all(kill.taken <= len(kill.in_flight) <= BATCH_SIZE * (CONCURRENCY + 1) for kill in kills)
    assert all(kill.taken <= BATCH_SIZE * CONCURRENCY for kill in kills)
    repeats = sum(standin.duplicates().values())
    assert repeats == sum(kill.taken for kill in kills), "a repeat that no kill explains, or a kill's batch lost"

    figures.messages += len(standin.delivered)
    figures.kills.setdefault("postmark", []).extend((kill.taken, kill.taken) for kill in kills)
    figures.retried += standin.retried_attempts()


def test_kill_9_mid_dispatch_to_the_file_provider_repeats_nothing(
        chaos_shop: ChaosShop, tmp_path: Path, seed: int, figures: Figures) -> None:
    store = chaos_shop.copy_store(tmp_path)
    outbox = tmp_path / "outbox"
    ledger = Ledger(store)
    ticks = Ticks(tmp_path, chaos_shop.settings(store, LIFECYCLE_PROVIDER="file"))
    written: dict[Path, tuple[int, int]] = {}  # each .eml file as first seen: (inode, mtime)
    rewritten: set[Path] = set()

    def taken() -> Counter[int]:
        """Send ids with an .eml file (named <campaign>-<send id>-<digest>.eml), noting any file written again."""
        ids: Counter[int] = Counter()
        for path in outbox.glob("*/*.eml"):
            stat = path.stat()
            if written.setdefault(path, (stat.st_ino, stat.st_mtime_ns)) != (stat.st_ino, stat.st_mtime_ns):
                rewritten.add(path)
            ids[int(path.name.removesuffix(".eml").rsplit("-", 2)[1])] += 1
        return ids

    # Listing the outbox takes a while: poll less often, not to slow the tick down.
    kills = kill_rounds(ticks, ledger, len(chaos_shop.to_send), lambda: taken().total(), taken,
                        random.Random(seed + 1), poll=0.05, failpoint=True)
    settle_after_kills(ticks, ledger)
    taken()

    rows = assert_nothing_lost(chaos_shop, ledger, figures)
    sent = [row for row in rows.values() if row.status == SendStatus.SENT]
    assert {Path(row.provider_message_id or "") for row in sent} == set(written), "one .eml per email sent"
    assert not rewritten, f"{len(rewritten)} emails written twice"
    assert any(kill.taken for kill in kills), "no kill left a written email unrecorded: nothing was tested"

    figures.messages += len(written)
    figures.kills.setdefault("file", []).extend((kill.taken, 0) for kill in kills)
