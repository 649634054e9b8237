"""`lifecycle run` as a real process: first run catches up, SIGHUP reloads, SIGTERM stops cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shopkit import ROOT


def wait_for(log: Path, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text() if log.exists() else ""
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged within {timeout}s:\n{content}")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_daemon_runs_reloads_and_stops(tmp_path: Path):
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    lifecycle = [sys.executable, "-m", "runner.cli"]
    subprocess.run([*lifecycle, "demo", "--customers", "200"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    for eml in (tmp_path / "outbox").rglob("*.eml"):
        eml.unlink()
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen([*lifecycle, "run"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        content = wait_for(log, "scheduled 4 campaign(s)")
        content = wait_for(log, "tick campaign=winback")
        assert "tick campaign=thank-you due=0 sent=0" in content  # the demo's tick already sent it all

        bad = tmp_path / "campaigns" / "birthday.yaml"
        bad.write_text(bad.read_text().replace("hour: 9", "hour: 25"))
        daemon.send_signal(signal.SIGHUP)
        content = wait_for(log, "reload refused, keeping the previous campaigns")
        assert "birthday.yaml:9" in content

        bad.write_text(bad.read_text().replace("hour: 25", "hour: 9"))
        (tmp_path / "campaigns" / "winback.yaml").unlink()
        daemon.send_signal(signal.SIGHUP)
        wait_for(log, "scheduled 3 campaign(s): birthday, replenishment, thank-you")

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
        assert "stopped" in log.read_text()
    finally:
        if daemon.poll() is None:
            daemon.kill()
