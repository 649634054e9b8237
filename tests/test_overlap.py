"""Overlapping ticks (cron beside the daemon): real `lifecycle tick` processes at once on one SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shopkit import ROOT, bulk_shop
from sqlalchemy import func, select

from runner.models import Send
from runner.store import Store

TICK_AT = "2026-11-20T12:00:00+00:00"  # thank-you is due 2h after each order


def test_three_ticks_at_once_on_one_sqlite_store_all_succeed_and_send_each_email_once(tmp_path: Path):
    customers = 2000
    env = os.environ | {
        "LIFECYCLE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "LIFECYCLE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
        "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"),
        "LIFECYCLE_OUTBOX_DIR": str(tmp_path / "outbox"),
        "LIFECYCLE_SECRET_KEY": "test-signing-key",
        "LIFECYCLE_PROVIDER": "file",
    }
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "thank-you.yaml").write_text((ROOT / "campaigns" / "thank-you.yaml").read_text())
    store = Store(env["LIFECYCLE_DATABASE_URL"])
    store.init()
    bulk_shop(store, customers)

    ticks = [subprocess.Popen([sys.executable, "-m", "runner.cli", "tick", "--at", TICK_AT, "--json"], env=env,
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [(t.wait(timeout=300), t.stdout.read(), t.stderr.read()) for t in ticks]  # type: ignore[union-attr]

    for code, _out, err in results:
        assert code == 0, err[-2000:]
        assert "INSERT" not in err and "SELECT" not in err
    reports = [json.loads(out)[0] for _code, out, _err in results]
    assert sum(r["due"] for r in reports) == customers
    assert sum(r["sent"] for r in reports) == customers
    assert sum(1 for r in reports if r["evaluated"]) >= 1
    with store.engine.connect() as connection:
        keys = connection.execute(select(Send.occurrence_key, func.count()).group_by(Send.occurrence_key)).all()
        statuses = connection.execute(select(Send.status, func.count()).group_by(Send.status)).all()
    assert len(keys) == customers and {count for _key, count in keys} == {1}
    assert statuses == [("sent", customers)]
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == customers
    store.close()
