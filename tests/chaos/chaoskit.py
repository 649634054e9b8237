"""The chaos suite's shop, its oracle of what is due, `lifecycle tick` subprocesses and the ledger as they leave it.

The shop is the project's own demo generator (5,000 customers, seed 7, history ending at NOW);
the campaigns are the shipped ones with windows of weeks instead of days, so one tick at NOW
has a few thousand emails to send. What is due is computed once from the fresh store with the
engine's own read-only query: every due occurrence must end up in the ledger, sent or recorded.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shopkit import ROOT, write_campaign
from sqlalchemy import select
from standin import Fault

from runner.app import App
from runner.campaign_state import EVALUATION_LEASE
from runner.demo.shop import generate_shop
from runner.dispatch import DeliveryPolicy
from runner.engine import find_occurrences, store_time_zones, window_for
from runner.models import Customer, Send, SendStatus
from runner.recommend import refresh_affinity
from runner.settings import Settings
from runner.store import Store, utc_naive

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
CUSTOMERS = 5000
SHOP_SEED = 7
SECRET_KEY = "chaos-signing-key"
BATCH_SIZE = 100  # LIFECYCLE_BATCH_SIZE
CONCURRENCY = 4  # LIFECYCLE_DISPATCH_CONCURRENCY: with BATCH_SIZE, the most one kill can leave in flight
# What a killed tick held (its claimed sends, a campaign it was evaluating) is free again this much later.
LEASE = max(DeliveryPolicy().lease, EVALUATION_LEASE)
TICK_TIMEOUT = 120  # seconds before a tick that hangs fails the test
LIFECYCLE = Path(sys.executable).with_name("lifecycle")  # the console script pip installed
FAILPOINT = Path(__file__).with_name("failpoint")

# The shipped campaigns and templates, with windows of weeks so that one tick has thousands to send.
CAMPAIGNS = (
    """
    id: thank-you
    name: Post-purchase thank-you
    kind: marketing
    trigger: {type: order, event: placed, delay: 2h}
    message:
      template: thank_you
      subject: "Thank you for your order {{ order.number }}, {{ customer.first_name or 'friend' }}"
    expire_after: 30d
    """,
    """
    id: replenishment
    name: Replenishment reminder
    trigger:
      type: replenishment
      cycles: {"COFFEE-*-1KG": 60d, "COFFEE-*": 21d, "TEA-*": 30d, "FILTER-*": 50d}
      lead: 3d
    message:
      template: replenishment
      subject: "Running low on {{ line.name }}?"
      params: {discount_code: REFILL5}
    expire_after: 30d
    """,
    """
    id: winback
    name: Win-back
    trigger: {type: lapsed, after: 90d}
    audience:
      - {field: order_count, gte: 1}
    message:
      template: winback
      subject: "We miss you, {{ customer.first_name or 'friend' }}"
      params: {discount_code: COMEBACK15, discount_percent: 15}
    expire_after: 60d
    """,
    """
    id: birthday
    name: Birthday offer
    trigger: {type: birthday, hour: 9}
    message:
      template: birthday
      subject: "Happy birthday, {{ customer.first_name or 'friend' }}!"
      params: {discount_code: BIRTHDAY20, discount_percent: 20}
    expire_after: 1d
    """,
)

Key = tuple[str, str]  # (campaign id, occurrence key)


@dataclass(frozen=True)
class Due:
    """One occurrence due at NOW on the fresh store: to send (skip_reason None) or to record as skipped."""

    email: str
    skip_reason: str | None


@dataclass(frozen=True)
class ChaosShop:
    """The built store (copied for each test), its campaign folder and what is due at NOW."""

    db: Path
    campaigns: Path
    due: dict[Key, Due]

    @property
    def to_send(self) -> dict[Key, Due]:
        return {key: due for key, due in self.due.items() if due.skip_reason is None}

    def copy_store(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(self.db, folder / "store.db"))

    def settings(self, store: Path, **values: str) -> dict[str, str]:
        """The environment of a tick on `store`: this shop's campaigns, batches of BATCH_SIZE, and `values`."""
        return {"LIFECYCLE_DATABASE_URL": f"sqlite:///{store}", "LIFECYCLE_CAMPAIGNS_DIR": str(self.campaigns),
                "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"), "LIFECYCLE_SECRET_KEY": SECRET_KEY,
                "LIFECYCLE_OUTBOX_DIR": str(store.parent / "outbox"), "LIFECYCLE_BATCH_SIZE": str(BATCH_SIZE),
                "LIFECYCLE_DISPATCH_CONCURRENCY": str(CONCURRENCY), **values}


def build_shop(folder: Path) -> ChaosShop:
    """Generate the shop into `folder` and find what is due at NOW (a read: the ledger stays empty)."""
    db = folder / "template.db"
    campaigns = folder / "campaigns"
    for text in CAMPAIGNS:
        write_campaign(campaigns, text)
    app = App(Settings({"LIFECYCLE_DATABASE_URL": f"sqlite:///{db}", "LIFECYCLE_CAMPAIGNS_DIR": str(campaigns),
                        "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"), "LIFECYCLE_SECRET_KEY": SECRET_KEY}))
    try:
        app.store.init()
        generate_shop(app.store, customers=CUSTOMERS, now=NOW, seed=SHOP_SEED)
        now = utc_naive(NOW)
        due: dict[Key, Due] = {}
        with app.store.session() as session:
            refresh_affinity(session, now)
            zones = store_time_zones(session)
            shop = app.shop()
            for campaign in app.campaigns(NOW):
                window = window_for(campaign, now, None, shop.default_zone, zones, shop.currency)
                for occ in find_occurrences(session, campaign, window):
                    due[(campaign.id, occ.occurrence_key)] = Due(
                        occ.email, occ.skip_reason.value if occ.skip_reason else None)
    finally:
        app.store.close()  # the last connection checkpoints the WAL into the file that is copied
    return ChaosShop(db=db, campaigns=campaigns, due=due)


@dataclass
class Figures:
    """What the suite measured, summed over its scenarios."""

    seed: int
    messages: int = 0  # distinct emails delivered
    lost: int = 0
    # provider -> for each kill: (messages the provider took that the killed tick never recorded, repeats)
    kills: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)  # injected, by kind
    retried: int = 0  # messages that reached the provider again after an earlier attempt
    retry_after: list[tuple[float, float]] = field(default_factory=list)  # (seconds asked, seconds waited)
    overlapping: int = 0  # ticks run at once on one store
    seconds: float = 0.0

    def line(self) -> str:
        kills = sum(len(v) for v in self.kills.values())
        per_kill = ", ".join(f"{provider} {' '.join(f'{taken}/{repeats}' for taken, repeats in each)}"
                             for provider, each in sorted(self.kills.items()))
        faults = " ".join(f"{kind}={self.faults[kind]}" for kind in map(str, Fault) if self.faults[kind])
        honoured = sum(1 for asked, waited in self.retry_after if waited >= asked)
        return (f"chaos (seed {self.seed}): {self.messages:,} messages delivered, {self.lost} lost; "
                f"{kills} kills (unrecorded/repeated per kill: {per_kill or '-'}); faults {faults or '-'}; "
                f"{self.retried:,} messages retried; Retry-After honoured {honoured}/{len(self.retry_after)}; "
                f"{self.overlapping} overlapping ticks; {self.seconds:.0f} s")


# ---------------------------------------------------------------- ticks


@dataclass
class Tick:
    """One `lifecycle tick` process and the files its output goes to."""

    process: subprocess.Popen[str]
    err: Path

    def wait(self) -> int:
        return self.process.wait(TICK_TIMEOUT)

    def running(self) -> bool:
        return self.process.poll() is None

    def stopped(self) -> bool:
        """Stopped by SIGSTOP (its state in /proc is T): see failpoint/sitecustomize.py."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "T"

    def stderr(self) -> str:
        return self.err.read_text()

    def assert_ok(self) -> None:
        assert self.wait() == 0, f"tick exited {self.process.returncode}: {self.stderr()[:2000]}"

    def kill_9(self) -> None:
        self.process.kill()  # SIGKILL: no handler, no cleanup, no last commit
        self.wait()


@dataclass
class Ticks:
    """Runs `lifecycle tick` as a real subprocess against one store, with the given settings."""

    workdir: Path
    settings: dict[str, str]
    started: list[tuple[float, dt.datetime]] = field(default_factory=list)  # (time.monotonic(), --at) of each

    def start(self, at: dt.datetime, stop_after_written: int | None = None) -> Tick:
        """A tick at `at`, running; its output goes to files in the work folder.

        With `stop_after_written`, the file provider stops the process once it has written that
        many messages, before the tick records them (failpoint/sitecustomize.py).
        """
        self.started.append((time.monotonic(), at))
        name = self.workdir / f"tick-{len(self.started):02d}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")} | self.settings
        if stop_after_written is not None:
            environ |= {"PYTHONPATH": str(FAILPOINT), "CHAOS_STOP_AFTER_WRITTEN": str(stop_after_written)}
        with open(f"{name}.out", "w") as stdout, open(f"{name}.err", "w") as stderr:
            process = subprocess.Popen([str(LIFECYCLE), "tick", "--at", at.isoformat()], cwd=self.workdir,
                                       env=environ, stdout=stdout, stderr=stderr, text=True)
        return Tick(process, Path(f"{name}.err"))

    def instant_at(self, moment: float) -> dt.datetime:
        """The --at of the tick that was running at time.monotonic() `moment` (ticks one after another)."""
        return max((start, at) for start, at in self.started if start <= moment)[1]

    def run(self, at: dt.datetime) -> None:
        """A tick at `at`, to its end; it must exit 0."""
        self.start(at).assert_ok()

    def settle(self, start: dt.datetime, step: dt.timedelta, ledger: Ledger, most: int = 12) -> None:
        """Tick at start, start + step, ... until no send is planned or in flight, `most` ticks at most."""
        for n in range(most):
            self.run(start + n * step)
            if not ledger.unsettled():
                return
        raise AssertionError(f"still unsettled after {most} ticks: {len(ledger.unsettled())} sends")


def wait_until(condition, timeout: float, poll: float = 0.005) -> bool:  # type: ignore[no-untyped-def]
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


# ---------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class Row:
    """One ledger row, with its customer's address."""

    id: int
    status: str
    skip_reason: str | None
    email: str
    provider_message_id: str | None
    last_error: str | None
    lease_until: dt.datetime | None


class Ledger:
    """The `send` table of a store, read fresh on every call (the ticks write it from other processes)."""

    def __init__(self, db: Path) -> None:
        self.url = f"sqlite:///{db}"

    def rows(self) -> dict[Key, Row]:
        store = Store(self.url, read_only=True)
        try:
            with store.session() as session:
                result = session.execute(
                    select(Send.campaign_id, Send.occurrence_key, Send.id, Send.status, Send.skip_reason,
                           Customer.email, Send.provider_message_id, Send.last_error, Send.lease_until)
                    .join(Customer, Customer.id == Send.customer_id)).all()
        finally:
            store.close()
        return {(r[0], r[1]): Row(*r[2:]) for r in result}

    def unsettled(self) -> dict[Key, Row]:
        return {k: r for k, r in self.rows().items() if r.status in (SendStatus.PLANNED, SendStatus.SENDING)}

    def in_flight(self, at: dt.datetime) -> frozenset[int]:
        """Ids of sends that a tick at `at` claimed and did not record: what it had in flight when it died."""
        lease_until = utc_naive(at) + DeliveryPolicy().lease
        return frozenset(r.id for r in self.rows().values()
                         if r.status == SendStatus.SENDING and r.lease_until == lease_until)


def lost(shop: ChaosShop, rows: dict[Key, Row]) -> list[str]:
    """What the promise "nothing due is dropped" forbids: due occurrences missing from the ledger or not
    recorded as sent, failed with an error, or skipped with a reason."""
    problems = []
    for key, due in shop.due.items():
        row = rows.get(key)
        if row is None:
            problems.append(f"{key}: due, not in the ledger")
        elif row.status == SendStatus.SKIPPED and not row.skip_reason:
            problems.append(f"{key}: skipped without a reason")
        elif row.status == SendStatus.FAILED and not row.last_error:
            problems.append(f"{key}: failed without an error")
        elif row.status not in (SendStatus.SENT, SendStatus.FAILED, SendStatus.SKIPPED):
            problems.append(f"{key}: left {row.status}")
        elif due.skip_reason is not None and row.status != SendStatus.SKIPPED:
            problems.append(f"{key}: should be skipped ({due.skip_reason}), is {row.status}")
    return problems
