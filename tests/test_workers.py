"""Several `lifecycle run` workers on one PostgreSQL store, sending to a Postmark stand-in on a socket.

Each campaign must be evaluated by one worker at a time (the evaluation lease; the workers log
when they take and give it back), every worker must dispatch (a worker that finds a campaign
being evaluated elsewhere sends what the other plans through its dispatch job), and every due
send must reach the stand-in exactly once, counted by its X-Send-ID header.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from postmark_sink import PostmarkSink
from shopkit import ROOT, bulk_shop
from sqlalchemy import func, select

from runner.models import Send, SendStatus
from runner.store import Store

POSTGRES_URL = os.environ.get("LIFECYCLE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL not configured: set LIFECYCLE_TEST_POSTGRES_URL")

WORKERS = 3
CUSTOMERS = 1500
CAMPAIGNS = ("thank-you", "thank-you-again")  # two campaigns on one schedule: one job, evaluated together
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+: (.*)$")
LEASE_LINE = re.compile(r"campaign (\S+): evaluation lease (\w+) (taken|given back)$")
SENT_LINE = re.compile(r"(?:tick|dispatch) campaign=\S+ (?:due=\d+ )?sent=(\d+)")


@pytest.fixture
def store() -> Iterator[Store]:
    assert POSTGRES_URL
    store = Store(POSTGRES_URL)
    store.drop()
    store.init()
    yield store
    store.close()


def worker_env(tmp_path: Path, sink: PostmarkSink) -> dict[str, str]:
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    text = (ROOT / "campaigns" / "thank-you.yaml").read_text().replace('schedule: "*/10 * * * *"',
                                                                     'schedule: "* * * * *"')
    for campaign_id in CAMPAIGNS:
        (campaigns / f"{campaign_id}.yaml").write_text(text.replace("id: thank-you", f"id: {campaign_id}"))
    return os.environ | {
        "LIFECYCLE_DATABASE_URL": str(POSTGRES_URL), "LIFECYCLE_CAMPAIGNS_DIR": str(campaigns),
        "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"), "LIFECYCLE_SECRET_KEY": "test-signing-key",
        "LIFECYCLE_PROVIDER": "postmark", "LIFECYCLE_POSTMARK_SERVER_TOKEN": sink.token,
        "LIFECYCLE_POSTMARK_BASE_URL": sink.url, "LIFECYCLE_SERVE_WITH_DAEMON": "false",
        "LIFECYCLE_BATCH_SIZE": "50", "LIFECYCLE_DISPATCH_CONCURRENCY": "4", "LIFECYCLE_DISPATCH_INTERVAL": "1",
    }


def settled(store: Store, total: int) -> bool:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).where(Send.status == SendStatus.SENT)).scalar() == total


def wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the workers did not send everything in time"
        time.sleep(0.2)


def read_log(path: Path) -> list[tuple[dt.datetime, str]]:
    lines = []
    for line in path.read_text().splitlines():
        if match := LOG_LINE.match(line):
            lines.append((dt.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f"), match[2]))
    return lines


def leases(logs: list[list[tuple[dt.datetime, str]]]) -> dict[str, list[tuple[dt.datetime, dt.datetime, int]]]:
    """Per campaign, every evaluation as (lease taken, given back, worker)."""
    held: dict[str, list[tuple[dt.datetime, dt.datetime, int]]] = defaultdict(list)
    for worker, lines in enumerate(logs):
        taken: dict[str, dt.datetime] = {}
        for at, message in lines:
            if match := LEASE_LINE.search(message):
                campaign_id, token, what = match.groups()
                if what == "taken":
                    taken[token] = at
                else:
                    held[campaign_id].append((taken.pop(token), at, worker))
        assert not taken, f"worker {worker} took a lease it never gave back"
    return held


def test_three_run_workers_on_postgresql_evaluate_each_campaign_one_at_a_time_and_send_each_email_once(
        tmp_path: Path, store: Store) -> None:
    placed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=3)  # thank-you fell due an hour ago
    bulk_shop(store, CUSTOMERS, placed)
    total = CUSTOMERS * len(CAMPAIGNS)
    with PostmarkSink(latency=0.02) as sink:
        env = worker_env(tmp_path, sink)
        logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
        workers = [subprocess.Popen([sys.executable, "-m", "runner.cli", "--verbose", "run"], env=env, cwd=tmp_path,
                                    stdout=subprocess.DEVNULL, stderr=log.open("w")) for log in logs]
        try:
            wait_for(lambda: settled(store, total) or any(w.poll() is not None for w in workers), timeout=240)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=60) for worker in workers]
        accepted = Counter(send_ids(sink))

    texts = [log.read_text() for log in logs]
    assert codes == [0] * WORKERS, texts[codes.index(next(c for c in codes if c != 0))][-3000:]
    with store.engine.connect() as connection:
        ledger = dict(connection.execute(select(Send.id, Send.status)).all())
    assert len(ledger) == total and set(ledger.values()) == {SendStatus.SENT}  # none lost
    assert set(accepted) == {str(i) for i in ledger} and set(accepted.values()) == {1}  # each exactly once

    parsed = [read_log(log) for log in logs]
    evaluations = leases(parsed)
    assert set(evaluations) == set(CAMPAIGNS)
    for campaign_id, spans in evaluations.items():
        spans.sort()
        for (_, given_back, first), (taken, _, second) in pairwise(spans):
            assert taken >= given_back, f"{campaign_id}: workers {first} and {second} evaluated it at once"
    sent_by = [sum(int(m[1]) for _, line in lines if (m := SENT_LINE.search(line))) for lines in parsed]
    assert sum(sent_by) == total
    assert all(sent_by), f"a worker dispatched nothing: {sent_by}"
    skipped = [line for lines in parsed for _, line in lines if "evaluated=no" in line]
    assert all("another tick is evaluating this campaign" in line for line in skipped)


def test_a_worker_killed_mid_dispatch_leaves_its_batches_to_the_claim_lease(tmp_path: Path, store: Store) -> None:
    """Three ticks at one instant; one is killed with SIGKILL while it has batches with the provider.
    The others finish what they can claim; a tick after the lease sends the killed worker's rows:
    nothing lost, and a repeat only where the stand-in took a message the killed worker never recorded."""
    at = dt.datetime(2026, 11, 20, 12, 0)
    bulk_shop(store, CUSTOMERS)  # placed 2026-11-20 09:00: due at 11:00
    total = CUSTOMERS * len(CAMPAIGNS)
    with PostmarkSink(latency=0.05) as sink:
        env = worker_env(tmp_path, sink)

        def tick(when: dt.datetime) -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, "-m", "runner.cli", "tick", "--at", f"{when.isoformat()}+00:00"],
                                    env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        workers = [tick(at) for _ in range(WORKERS)]
        wait_for(lambda: sink.accepted_count >= total // 4, timeout=120)
        # A tick that found both campaigns being evaluated has sent what was planned then and exited;
        # one still running is sending.
        killed = next(worker for worker in workers if worker.poll() is None)
        killed.kill()
        codes = [worker.wait(timeout=120) for worker in workers]
        with store.engine.connect() as connection:
            left = dict(connection.execute(select(Send.id, Send.claim_token).where(
                Send.status == SendStatus.SENDING)).all())
        taken_before = Counter(send_ids(sink))
        assert tick(at + dt.timedelta(minutes=5)).wait(timeout=120) == 0
        assert Counter(send_ids(sink)) == taken_before, "claimed rows were taken again within their lease"
        assert tick(at + dt.timedelta(minutes=11)).wait(timeout=120) == 0
        accepted = Counter(send_ids(sink))

    assert sorted(codes) == [-signal.SIGKILL] + [0] * (WORKERS - 1)
    # the killed worker's claims: its batches with the provider (concurrency 4) and the one it was rendering
    assert 0 < len(left) <= (4 + 1) * 50 and len(set(left.values())) <= 4 + 1
    with store.engine.connect() as connection:
        ledger = dict(connection.execute(select(Send.id, Send.status)).all())
    assert len(ledger) == total and set(ledger.values()) == {SendStatus.SENT}  # none lost
    assert set(accepted) == {str(i) for i in ledger}
    repeated = {send_id for send_id, n in accepted.items() if n > 1}
    assert repeated <= {str(i) for i in left} and len(repeated) <= 4 * 50 and set(accepted.values()) <= {1, 2}


def send_ids(sink: PostmarkSink) -> list[str]:
    """The X-Send-ID of every message the stand-in accepted, in arrival order."""
    return [next(h["Value"] for h in m["Headers"] if h["Name"] == "X-Send-ID") for m in sink.accepted]
