"""Three `lifecycle tick` at once on one SQLite store (cron beside the daemon, a common mistake) are harmless."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaoskit import NOW, ChaosShop, Figures, Ledger, Ticks, lost
from standin import ProviderStandIn

from runner.models import SendStatus

pytestmark = pytest.mark.chaos

OVERLAPPING = 3


def test_three_overlapping_ticks_all_succeed_and_send_everything_once(
        chaos_shop: ChaosShop, tmp_path: Path, figures: Figures) -> None:
    store = chaos_shop.copy_store(tmp_path)
    ledger = Ledger(store)
    with ProviderStandIn() as standin:
        ticks = Ticks(tmp_path, chaos_shop.settings(store, **standin.settings()))
        running = [ticks.start(NOW) for _ in range(OVERLAPPING)]
        for tick in running:
            tick.wait()
    figures.overlapping += OVERLAPPING
    for tick in running:
        stderr = tick.stderr()
        assert "[SQL:" not in stderr and "INSERT INTO" not in stderr, "an error message shows SQL"
        tick.assert_ok()

    rows = ledger.rows()
    problems = lost(chaos_shop, rows)
    figures.lost += len(problems)
    assert not problems, f"{len(problems)} lost, e.g. {problems[:5]}"
    assert not standin.duplicates(), "a message went out twice"
    sent = {row.id for row in rows.values() if row.status == SendStatus.SENT}
    assert sent == set(standin.delivered) and len(sent) == len(chaos_shop.to_send)
    figures.messages += len(sent)
