"""The `lifecycle` command as a user runs it: real files in a temporary working directory."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from shopkit import ROOT

from runner.cli import main

AT = "2026-11-23T10:00:00Z"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shop's working directory: campaigns/ and templates/ copied in, defaults for everything else."""
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("LIFECYCLE_")]:
        monkeypatch.delenv(name)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def digest(path: Path) -> str:
    """The database file and its write-ahead log: a write lands in one of them."""
    wal = path.with_name(path.name + "-wal")
    return hashlib.sha256(path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")).hexdigest()


def test_demo_then_preview_changes_nothing_in_the_store(workdir: Path, capsys):
    code, out, _ = run(capsys, "demo", "--customers", "400", "--at", AT)
    assert code == 0, out
    assert "thank-you" in out and "outbox" in out
    assert list((workdir / "outbox").rglob("*.eml"))
    db = workdir / "lifecycle.db"
    before = digest(db)
    code, out, err = run(capsys, "preview", "--at", "2026-11-24T10:00:00Z", "--out", "pv", "--json")
    assert code == 0, err
    entries = json.loads(out)
    assert entries and {"campaign", "email", "occurrence", "reason", "skip_reason", "file"} <= set(entries[0])
    assert (workdir / "pv" / "index.html").is_file()
    rendered = [e for e in entries if e["file"]]
    assert rendered and (workdir / "pv" / rendered[0]["file"]).read_text().startswith("<!")
    assert digest(db) == before


def test_preview_for_one_customer_and_campaign(workdir: Path, capsys):
    run(capsys, "demo", "--customers", "300", "--at", AT)
    code, out, _ = run(capsys, "preview", "--at", "2026-12-20T10:00:00Z", "--campaign", "winback", "--json")
    entries = json.loads(out)
    assert code == 0 and entries and {e["campaign"] for e in entries} == {"winback"}
    assert {e["variant"] for e in entries} == {"we-miss-you", "offer-first"}  # the shipped A/B test
    one = entries[0]["email"]
    code, out, _ = run(capsys, "preview", "--at", "2026-12-20T10:00:00Z", "--customer", one, "--json")
    assert {e["email"] for e in json.loads(out)} == {one}


def test_the_shipped_policies_show_in_the_tick_summary_and_the_preview(workdir: Path, capsys):
    code, out, _ = run(capsys, "demo", "--customers", "400", "--at", AT)
    assert code == 0
    header, _, *rows = out.split("with the file provider:")[1].strip().splitlines()
    assert header.split() == ["campaign", "due", "sent", "failed", "retrying", "deferred", "skipped"]
    start = next(n for n, row in enumerate(rows) if row.startswith("birthday"))
    end = next((n for n in range(start + 1, len(rows)) if not rows[n].startswith(" ")), len(rows))

    def cell(column: str, following: str | None) -> str:
        """The birthday row's cell in `column`, its folded lines joined."""
        left, right = header.index(column), header.index(following) if following else None
        return "".join(row[left:right].strip() for row in rows[start:end])

    assert cell("deferred", "skipped") == "quiet_hours=2" and cell("skipped", None) == "sunset=1"
    later = "2026-11-24T08:00:00Z"
    code, out, _ = run(capsys, "preview", "--at", later)
    assert code == 0 and "deferred:quiet_hours" in out.splitlines()[1]
    code, out, _ = run(capsys, "tick", "--at", later, "--json")
    rows = {row["campaign"]: row for row in json.loads(out)}
    assert rows["birthday"]["deferred"] == {"quiet_hours": 1}
    assert rows["thank-you"]["sent"] == 7  # held back at night on the 23rd, sent as each window opened


@pytest.mark.parametrize("at", [AT, "2027-02-28T23:00:00Z", "2028-02-29T06:00:00Z"])
def test_the_demo_exercises_every_shipped_campaign(workdir: Path, capsys, at: str):
    """Every shipped campaign (those off by default turned on) finds occurrences in the demo shop; the
    shop's policies send some of them at the demo's tick and defer others (night, a gap after another
    email) to the next days' ticks."""
    for path in (workdir / "campaigns").glob("[!_]*.yaml"):
        path.write_text(path.read_text().replace("\nenabled: false\n", "\nenabled: true\n"))
    code, out, _ = run(capsys, "demo", "--customers", "250", "--at", at)
    assert code == 0, out
    for days in (1, 2):
        later = dt.datetime.fromisoformat(at) + dt.timedelta(days=days)
        assert run(capsys, "tick", "--at", later.isoformat())[0] == 0
    sent = {path.parent.name for path in (workdir / "outbox").rglob("*.eml")}
    assert sent == {p.stem for p in (workdir / "campaigns").glob("[!_]*.yaml")}


def test_demo_twice_starts_over(workdir: Path, capsys):
    assert run(capsys, "demo", "--customers", "200", "--at", AT)[0] == 0
    assert run(capsys, "demo", "--customers", "200", "--at", AT)[0] == 0


def test_an_interrupted_demo_is_replaced_by_the_next_one(workdir: Path, capsys, monkeypatch):
    import runner.demo.run

    def interrupted(store, **kwargs):
        real_generate(store, **kwargs | {"customers": 50})
        raise KeyboardInterrupt  # the user pressed Ctrl-C half-way through

    real_generate = runner.demo.run.generate_shop
    monkeypatch.setattr(runner.demo.run, "generate_shop", interrupted)
    assert run(capsys, "demo", "--customers", "200", "--at", AT)[0] == 130
    monkeypatch.setattr(runner.demo.run, "generate_shop", real_generate)
    code, out, _ = run(capsys, "demo", "--customers", "200", "--at", AT)
    assert code == 0 and "200 customers" in out


def test_demo_refuses_a_negative_customer_count_before_touching_the_store(workdir: Path, capsys):
    assert run(capsys, "demo", "--customers", "200", "--at", AT)[0] == 0
    before = digest(workdir / "lifecycle.db")
    code, _, err = run(capsys, "demo", "--customers", "-1", "--at", AT)
    assert code == 2 and "--customers" in err
    assert digest(workdir / "lifecycle.db") == before


def test_tick_twice_at_the_same_instant_sends_nothing_new(workdir: Path, capsys):
    run(capsys, "demo", "--customers", "300", "--at", AT)
    code, out, _ = run(capsys, "tick", "--at", AT, "--json")
    assert code == 0
    assert all(row["due"] == 0 and row["sent"] == 0 for row in json.loads(out))


def test_without_a_store_the_error_is_one_line_with_a_fix(workdir: Path, capsys):
    code, _, err = run(capsys, "tick", "--at", AT)
    assert code == 1
    assert err.splitlines() == ["Error: no lifecycle store at sqlite:///lifecycle.db",
                                "Hint: run `lifecycle init` first"]
    code, _, err = run(capsys, "--verbose", "tick", "--at", AT)
    assert code == 1 and "Traceback" in err


def test_tick_refuses_an_invalid_campaign_set_before_sending(workdir: Path, capsys):
    run(capsys, "init")
    (workdir / "campaigns" / "winback.yaml").write_text(
        (workdir / "campaigns" / "winback.yaml").read_text().replace("after: 90d", "after: 90 days please"))
    code, _, err = run(capsys, "tick", "--at", AT)
    assert code == 1
    assert "campaigns/winback.yaml:9: trigger.after: '90 days please' is not a duration" in err
    assert not (workdir / "outbox").exists()
    code, _, err = run(capsys, "validate")
    assert code == 1 and "winback.yaml:9" in err and "1 problem(s)" in err


def test_validate_names_the_file_and_line_of_a_control_character(workdir: Path, capsys):
    path = workdir / "campaigns" / "winback.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4] = lines[4].replace("Win-back", "Win\x07back")
    path.write_text("".join(lines), encoding="utf-8")
    code, _, err = run(capsys, "validate")
    assert code == 1
    assert "campaigns/winback.yaml:5: YAML error:" in err and "Traceback" not in err


def test_validate_the_shipped_campaigns(workdir: Path, capsys):
    code, out, _ = run(capsys, "validate")
    shipped = len(list((ROOT / "campaigns").glob("[!_]*.yaml")))
    assert code == 0 and f"{shipped} campaign(s) valid" in out


def test_bad_at_is_a_usage_error(workdir: Path, capsys):
    code, _, err = run(capsys, "tick", "--at", "yesterday")
    assert code == 2 and "is not an ISO date-time" in err


def test_send_test_writes_one_marked_email_and_records_nothing(workdir: Path, capsys):
    run(capsys, "demo", "--customers", "200", "--at", AT)
    db = workdir / "lifecycle.db"
    code, _, err = run(capsys, "send-test", "--to", "me@shop.example.com", "--campaign", "birthday")
    assert code == 0, err
    (eml,) = (workdir / "outbox" / "test").glob("*.eml")
    text = eml.read_text()
    assert "To: me@shop.example.com" in text and "Subject: [TEST] Happy birthday" in text
    assert "X-Lifecycle-Test: yes" in text
    before = digest(db)
    run(capsys, "send-test", "--to", "me@shop.example.com", "--campaign", "thank-you",
        "--customer", "customer-00001@example.com")
    assert digest(db) == before


@pytest.mark.parametrize("campaign", ["vip-milestone", "anniversary"])
def test_send_test_of_a_campaign_whose_template_reads_its_triggers_facts(workdir: Path, capsys, campaign: str):
    run(capsys, "demo", "--customers", "200", "--at", AT)
    for customer in ([], ["--customer", "customer-00001@example.com"]):
        code, _, err = run(capsys, "send-test", "--to", "me@shop.example.com", "--campaign", campaign, *customer)
        assert code == 0, err
        (eml,) = (workdir / "outbox" / "test").glob("*.eml")
        eml.unlink()  # two test sends in one second are one file


def test_a_test_send_in_a_euro_shop_shows_euros(workdir: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LIFECYCLE_SHOP_CURRENCY", "EUR")
    vip = workdir / "campaigns" / "vip-milestone.yaml"  # an amount instead of the segment and the count
    vip.write_text(re.sub(r"segment: vip.*", "spent: [500]", vip.read_text()).replace("orders: [5]", "orders: []"))
    run(capsys, "init")
    assert run(capsys, "send-test", "--to", "me@shop.example.com", "--campaign", "vip-milestone")[0] == 0
    (eml,) = (workdir / "outbox" / "test").glob("*.eml")
    assert "more than =E2=82=AC500.00" in eml.read_text()  # €500.00, quoted-printable


def test_every_command_has_help(workdir: Path, capsys):
    from runner.cli import cli

    names = list(cli.commands) + [f"import {n}" for n in cli.commands["import"].commands]  # type: ignore[attr-defined]
    for name in names:
        code, out, _ = run(capsys, *name.split(), "--help")
        assert code == 0 and "Usage:" in out, name


def test_log_lines_stay_one_line_and_tracebacks_need_verbose():
    import logging

    from runner.cli.base import OneLineFormatter

    try:
        raise ValueError("bad value\n[SQL: SELECT secret FROM t]")
    except ValueError:
        record = logging.LogRecord("lifecycle.web", logging.ERROR, __file__, 1, "request %s failed", ("GET /",),
                                   exc_info=__import__("sys").exc_info())
    quiet = OneLineFormatter("%(levelname)s %(message)s", verbose=False).format(record)
    assert quiet == "ERROR request GET / failed (ValueError: bad value)"
    loud = OneLineFormatter("%(levelname)s %(message)s", verbose=True).format(record)
    assert "Traceback" in loud and loud.count("\n") > 2


def test_verbose_works_after_the_command_too(workdir: Path, capsys):
    (workdir / "campaigns" / "winback.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    code, _, err = run(capsys, "validate", "--verbose")
    assert code == 1 and "winback.yaml" in err
    code, _, err = run(capsys, "tick", "-v")
    assert code == 1 and "Traceback" in err
    code, _, err = run(capsys, "tick")
    assert code == 1 and "Traceback" not in err


def test_import_lists_every_bad_row_then_the_error(workdir: Path, capsys):
    run(capsys, "init")
    before = digest(workdir / "lifecycle.db")
    bad = workdir / "customers.csv"
    bad.write_text("First Name,Last Name,Email,Accepts Marketing\n"
                   "Ada,Lovelace,eve\x00@example.com,yes\n"
                   "Bob,Ok,bob@example.com,no\n"
                   "Cy,Press,cy@example.com,maybe\n", encoding="utf-8")

    code, out, err = run(capsys, "import", "customers", str(bad))

    assert code == 1 and out == ""
    problems = [line for line in err.splitlines() if line.startswith(str(bad))]
    assert problems == [
        f"{bad}: row 2, column 'Email': 'eve\\x00@example.com' contains a control character (U+0000) at character 4",
        f"{bad}: row 4, column 'Accepts Marketing': 'maybe' is not yes or no (hint: correct that cell in the file (or "
        "export it from Shopify again) and run the import again)",
    ]
    assert err.splitlines()[-2:] == [
        f"Error: {problems[0]}; nothing was imported (and 1 more problem(s))",
        "Hint: delete it from that cell (or export the file from Shopify again) and run the import again: control "
        "characters are invisible in most editors and break emails",
    ]
    assert digest(workdir / "lifecycle.db") == before


def test_import_orders_warns_when_the_orders_are_not_in_the_shops_currency(workdir: Path, capsys,
                                                                            monkeypatch: pytest.MonkeyPatch):
    run(capsys, "init")
    monkeypatch.setenv("LIFECYCLE_SHOP_CURRENCY", "EUR")

    code, _, err = run(capsys, "import", "orders", str(ROOT / "tests" / "fixtures" / "shopify_orders.csv"))

    assert code == 0, err
    assert "warning: 3 of 6 orders are in USD (2) and NZD (1), not in the shop's currency EUR" in err


def test_an_orders_import_records_the_vip_threshold_then_refresh_affinity_another(workdir: Path, capsys):
    run(capsys, "init")
    assert run(capsys, "import", "orders", str(ROOT / "tests" / "fixtures" / "shopify_orders.csv"))[0] == 0
    code, out, _ = run(capsys, "refresh-affinity", "--at", AT)
    assert code == 0 and out.splitlines()[1].startswith("VIP spend threshold recorded in ")
    with sqlite3.connect(workdir / "lifecycle.db") as conn:  # the import's (now), then the one at AT
        rows = conn.execute("SELECT segment, percentile, computed_at FROM segment_threshold").fetchall()
    assert len(rows) == 2 and {(r[0], r[1]) for r in rows} == {("vip", 90.0)} and AT[:10] in {r[2][:10] for r in rows}


def test_reimporting_the_same_orders_file_leaves_the_store_file_untouched(workdir: Path, capsys):
    orders = str(ROOT / "tests" / "fixtures" / "shopify_orders.csv")
    run(capsys, "init")
    assert run(capsys, "import", "orders", orders)[0] == 0
    before = digest(workdir / "lifecycle.db")

    code, out, _ = run(capsys, "import", "orders", orders)

    assert code == 0 and "orders:" not in out  # no order created or updated
    assert digest(workdir / "lifecycle.db") == before


def test_a_single_campaign_problem_is_one_error_line_and_its_own_hint(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no campaigns/ here
    code, _, err = run(capsys, "tick")
    assert code != 0
    assert err.splitlines() == ["Error: campaigns: campaigns folder not found",
                                "Hint: set LIFECYCLE_CAMPAIGNS_DIR or run from the folder that holds campaigns/"]


def test_refresh_affinity_rebuilds_the_often_bought_with_table(workdir: Path, capsys):
    assert run(capsys, "init")[0] == 0
    code, out, _ = run(capsys, "refresh-affinity", "--at", AT)
    assert code == 0 and out.startswith("Product affinity rebuilt from the orders of the last year in ")
    assert out.splitlines()[1] == "No VIP spend threshold recorded: no customer has ordered yet"
    with sqlite3.connect(workdir / "lifecycle.db") as conn:
        stamp = conn.execute("SELECT value FROM meta WHERE key = 'affinity_refreshed_at'").fetchone()
    assert stamp is not None and stamp[0].startswith(AT[:10])
