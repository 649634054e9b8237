"""`lifecycle run` as a real process: first run catches up, serves the web service beside the scheduler,
SIGHUP reloads, SIGTERM stops both cleanly."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from shopkit import ROOT


def wait_for(log: Path, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text() if log.exists() else ""
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged within {timeout}s:\n{content}")


LIFECYCLE = [sys.executable, "-m", "runner.cli"]


def demo_shop(tmp_path: Path) -> dict[str, str]:
    """A demo store whose first tick is done, in tmp_path; the environment to run `lifecycle` there."""
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env["LIFECYCLE_HTTP_PORT"] = "0"  # any free port: tests run side by side
    subprocess.run([*LIFECYCLE, "demo", "--customers", "200"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    for eml in (tmp_path / "outbox").rglob("*.eml"):
        eml.unlink()
    return env


def metric(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_daemon_runs_reloads_and_stops(tmp_path: Path):
    env = demo_shop(tmp_path)
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen([*LIFECYCLE, "run"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        content = wait_for(log, "scheduled 8 campaign(s)")
        content = wait_for(log, "tick campaign=winback")
        assert "tick campaign=thank-you due=0 sent=0" in content  # the demo's tick already sent it all

        url = re.search(r"web service listening on (http://127\.0\.0\.1:\d+/)", content).group(1)  # type: ignore[union-attr]
        health = httpx.get(url + "healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok",
                                                             "checks": {"database": "ok", "scheduler": "ok"}})
        metrics = httpx.get(url + "metrics").text
        assert metric(metrics, "lifecycle_tick_duration_seconds_count", campaign="winback") == 1
        assert metric(metrics, "lifecycle_sends", campaign="winback", status="sent")  # the demo's sends

        bad = tmp_path / "campaigns" / "birthday.yaml"
        bad.write_text(bad.read_text().replace("hour: 9", "hour: 25"))
        daemon.send_signal(signal.SIGHUP)
        content = wait_for(log, "reload refused, keeping the previous campaigns")
        assert "birthday.yaml:9" in content

        bad.write_text(bad.read_text().replace("hour: 25", "hour: 9"))
        (tmp_path / "campaigns" / "winback.yaml").unlink()
        daemon.send_signal(signal.SIGHUP)
        wait_for(log, "scheduled 7 campaign(s): abandoned-checkout, anniversary, birthday, replenishment, "
                      "review-request, thank-you, vip-milestone")

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
        assert "web service stopped" not in log.read_text()  # that is `lifecycle serve`'s line
        assert log.read_text().rstrip().endswith("stopped")
        with pytest.raises(httpx.ConnectError):  # SIGTERM stopped the web service too
            httpx.get(url + "healthz")
    finally:
        if daemon.poll() is None:
            daemon.kill()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_daemon_without_the_web_service(tmp_path: Path):
    env = demo_shop(tmp_path) | {"LIFECYCLE_SERVE_WITH_DAEMON": "false"}
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen([*LIFECYCLE, "run"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(log, "running; SIGHUP reloads campaigns")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert "web service" not in log.read_text() and "uvicorn" not in log.read_text()


def test_a_taken_port_stops_the_daemon_before_it_sends(tmp_path: Path):
    env = demo_shop(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        env["LIFECYCLE_HTTP_PORT"] = str(taken.getsockname()[1])
        result = subprocess.run([*LIFECYCLE, "run"], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 1
    assert f"Error: the web service cannot listen on 127.0.0.1:{env['LIFECYCLE_HTTP_PORT']}" in result.stderr
    assert "Hint: set LIFECYCLE_HTTP_HOST/LIFECYCLE_HTTP_PORT" in result.stderr
    assert "tick campaign=" not in result.stderr and "Traceback" not in result.stderr


def test_alive_while_the_scheduler_runs_and_no_stop_was_asked(app):  # type: ignore[no-untyped-def]
    from runner.daemon import Daemon

    daemon = Daemon(app, clock=lambda: datetime.now(UTC))
    assert not daemon.alive()
    daemon.scheduler.start()
    try:
        assert daemon.alive()
        daemon.stop()
        assert not daemon.alive()
    finally:
        daemon.scheduler.shutdown()


def test_campaigns_sharing_a_schedule_are_one_job_so_priority_applies_between_them(app, campaigns_dir):
    from shopkit import utc, write_campaign

    from runner.daemon import Daemon

    for campaign_id, schedule in (("thanks", "*/10 * * * *"), ("cross-sell", "*/10 * * * *"),
                                  ("winback", "0 9 * * *")):
        write_campaign(campaigns_dir, f"""
            id: {campaign_id}
            name: {campaign_id}
            trigger: {{type: order}}
            message: {{template: thank_you, subject: "Hello"}}
            schedule: "{schedule}"
        """)
    daemon = Daemon(app, clock=lambda: utc(2026, 11, 2, 10, 0))
    daemon.load()
    campaign_jobs = [job for job in daemon.scheduler.get_jobs() if job.func == daemon.run_campaigns]
    assert sorted(job.args[0] for job in campaign_jobs) == [["cross-sell", "thanks"], ["winback"]]


@pytest.mark.parametrize("interval, scheduled", [("30", True), ("0", False)])
def test_the_dispatch_job_sends_what_is_planned_between_schedules(app, campaigns_dir, interval, scheduled, caplog):
    """A worker that skipped an evaluation (another worker held it) sends what the other plans, in its dispatch job."""
    from shopkit import ShopBuilder, utc

    from runner.daemon import Daemon
    from runner.engine import plan, store_time_zones, window_for
    from runner.providers.file import FileProvider

    now = utc(2026, 11, 20, 12, 0)
    shutil.copy(ROOT / "campaigns" / "thank-you.yaml", campaigns_dir)
    shop = ShopBuilder(app.store)
    for name in ("ada", "bob"):
        shop.order(shop.customer(f"{name}@example.com"), utc(2026, 11, 20, 9, 0))
    app.settings = app.settings.with_values(DISPATCH_INTERVAL=interval)
    campaign = app.campaigns(now)[0]
    with app.store.reading() as session:
        zones = store_time_zones(session)
    plan(app.store, campaign, window_for(campaign, now.replace(tzinfo=None), None, UTC, zones))  # another worker
    daemon = Daemon(app, clock=lambda: now)
    daemon.load()
    assert any(job.id == "dispatch" for job in daemon.scheduler.get_jobs()) is scheduled
    outbox = Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])
    daemon.provider = FileProvider(outbox)
    with caplog.at_level("INFO", logger="lifecycle.daemon"):
        daemon.dispatch_due()
    assert len(list(outbox.rglob("*.eml"))) == 2
    assert "dispatch campaign=thank-you sent=2 failed=0 retrying=0" in caplog.messages
