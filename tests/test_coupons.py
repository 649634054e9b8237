"""Unique coupon codes: pools handed out once each (also under concurrent ticks), generated codes, the
Shopify export, imports, the low-pool warning and the preview that consumes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from shopkit import ShopBuilder, utc, write_campaign
from sqlalchemy import select
from test_cli import run, workdir  # noqa: F401 - workdir is a fixture used here

from runner.app import App
from runner.coupons.generated import ALPHABET, generated_code
from runner.coupons.spec import GenerateSpec
from runner.engine import plan, store_time_zones, window_for
from runner.errors import CampaignError, DataImportError, LifecycleError
from runner.models import CouponCode, Send
from runner.providers.base import OutgoingMessage, Provider, SendResult

NOW = utc(2026, 11, 20, 12, 0)
PLACED = utc(2026, 11, 20, 9, 0)  # due at 11:00 with the campaigns' 2h delay
SECRET = "test-coupon-secret"


class Capturing(Provider):
    """Accepts every message and keeps its subject; optionally meets another thread before its first batch."""

    name = "capturing"
    max_batch_size = 5

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.subjects: list[str] = []
        self.barrier = barrier

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if self.barrier is not None:
            barrier, self.barrier = self.barrier, None
            barrier.wait(timeout=30)  # both ticks hold a claimed batch with its codes at this point
        self.subjects.extend(m.subject for m in messages)
        return [SendResult.accepted(f"id-{m.send_id}") for m in messages]


def offer_campaign(folder: Path, campaign_id: str, coupon: str) -> None:
    """An email 2 hours after each order, its subject the email's code."""
    write_campaign(folder, f"""
        id: {campaign_id}
        name: Offer with a unique code
        trigger:
          type: order
          event: placed
          delay: 2h
        message:
          template: winback
          subject: "Your code {{{{ coupon.code }}}}"
          coupon:
            {coupon}
        expire_after: 2d
    """)


def pool_campaign(folder: Path, pool: str = "WINBACK15") -> None:
    offer_campaign(folder, "pool-offer", f"pool: {pool}")


def generated_campaign(folder: Path) -> None:
    offer_campaign(folder, "generated-offer", 'generate: {prefix: "WB-", length: 10, title: "Win-back 15%"}')


def codes_file(tmp_path: Path, codes: list[str], name: str = "codes.csv", header: str | None = "Code") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(([header] if header else []) + codes) + "\n", encoding="utf-8")
    return path


def customers_with_orders(shop: ShopBuilder, count: int, placed: dt.datetime = PLACED) -> None:
    for n in range(count):
        shop.order(shop.customer(f"c{n}@example.com"), placed)


def ledger(app: App) -> list[Send]:
    with app.store.reading() as session:
        return list(session.exec(select(Send).order_by(Send.id)).scalars())


def handed_out(app: App) -> dict[int, str]:
    with app.store.reading() as session:
        return dict(session.execute(select(CouponCode.send_id, CouponCode.code)
                                    .where(CouponCode.send_id.is_not(None))).all())


def subject_codes(subjects: list[str]) -> list[str]:
    return [subject.removeprefix("Your code ") for subject in subjects]


# ---------------------------------------------------------------- pools


def test_two_concurrent_ticks_hand_out_each_code_once_and_hold_back_the_rest(app, shop, campaigns_dir, settings,
                                                                              tmp_path):
    pool_campaign(campaigns_dir)
    customers_with_orders(shop, 30)
    pool = [f"POOL-{n:03d}" for n in range(12)]
    app.import_coupons("WINBACK15", codes_file(tmp_path, pool), NOW)
    campaign = app.campaigns(NOW)[0]
    with app.store.reading() as session:
        zones = store_time_zones(session)
    # planned first, so that both ticks find the same 30 sends to deliver at once
    assert plan(app.store, campaign, window_for(campaign, NOW.replace(tzinfo=None), None, dt.UTC, zones))["due"] == 30

    barrier = threading.Barrier(2)
    providers = [Capturing(barrier), Capturing(barrier)]
    reports, errors = [], []

    def tick(provider: Capturing) -> None:
        ticking = App(settings)  # its own engine and connections, as another process would have
        try:
            reports.append(ticking.tick(NOW, ticking.campaigns(NOW), provider))
        except Exception as exc:
            errors.append(exc)
        finally:
            ticking.store.close()

    threads = [threading.Thread(target=tick, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and not barrier.broken
    assert all(p.subjects for p in providers)  # both ticks sent a share

    sent_codes = subject_codes([s for p in providers for s in p.subjects])
    assert sorted(sent_codes) == pool  # every code once, none twice
    rows = ledger(app)
    given = handed_out(app)
    sent = [r for r in rows if r.status == "sent"]
    assert len(sent) == 12 and sorted(given.values()) == pool and set(given) == {r.id for r in sent}
    held = [r for r in rows if r.status != "sent"]
    assert {(r.status, r.skip_reason) for r in held} == {("planned", "no_coupon")} and len(held) == 18
    assert sum(r.counts["pool-offer"]["deferred:no_coupon"] for r in reports) == 18
    assert any("coupon pool WINBACK15 is empty" in w for r in reports for w in r.warnings)

    # once expired, the sends still without a code are skipped with the reason
    late = app.tick(NOW + dt.timedelta(days=3), app.campaigns(NOW), Capturing())
    assert late.rows()[0]["skipped"] == {"no_coupon": 18}
    assert {(r.status, r.skip_reason) for r in ledger(app) if r.status != "sent"} == {("skipped", "no_coupon")}


def test_codes_imported_after_the_pool_ran_dry_go_to_the_sends_held_back(app, shop, campaigns_dir, tmp_path):
    pool_campaign(campaigns_dir)
    customers_with_orders(shop, 3)
    app.import_coupons("WINBACK15", codes_file(tmp_path, ["FIRST"]), NOW)
    provider = Capturing()
    first = app.tick(NOW, app.campaigns(NOW), provider).rows()[0]
    assert (first["sent"], first["deferred"]) == (1, {"no_coupon": 2})
    app.import_coupons("WINBACK15", codes_file(tmp_path, ["FIRST", "SECOND", "THIRD"]), NOW)
    # held back until the retry instant, then sent with the new codes
    assert app.tick(NOW + dt.timedelta(minutes=1), app.campaigns(NOW), provider).rows()[0]["sent"] == 0
    later = app.tick(NOW + dt.timedelta(minutes=10), app.campaigns(NOW), provider).rows()[0]
    assert later["sent"] == 2
    assert sorted(subject_codes(provider.subjects)) == ["FIRST", "SECOND", "THIRD"]


def test_a_dry_pool_holds_the_campaigns_other_sends_at_once_instead_of_claiming_them_one_by_one(
        app, shop, campaigns_dir, tmp_path):
    from sqlalchemy import event

    pool_campaign(campaigns_dir)
    customers_with_orders(shop, 10)
    app.import_coupons("WINBACK15", codes_file(tmp_path, ["ONLY"]), NOW)
    provider = Capturing()
    provider.max_batch_size = 1  # one send a claim, as with a provider that takes one message a call
    claims: list[str] = []
    event.listen(app.store.engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: claims.append(statement)
                 if "attempts=(send.attempts +" in statement else None)  # the claim's UPDATE
    report = app.tick(NOW, app.campaigns(NOW), provider).rows()[0]
    assert (report["sent"], report["deferred"]) == (1, {"no_coupon": 9})
    assert len(claims) == 2  # the send that took the code, the one that found none; the rest held in bulk
    assert {(r.status, r.skip_reason, r.attempts) for r in ledger(app) if r.status != "sent"} == {
        ("planned", "no_coupon", 0)}


class Crash(BaseException):
    """Stands for the process dying mid-send."""


class CrashingOnce(Capturing):
    def __init__(self) -> None:
        super().__init__()
        self.crashed = False

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if not self.crashed:
            self.crashed = True
            raise Crash
        return super().send_batch(messages)


def test_a_send_claimed_again_after_a_crash_keeps_its_code(app, shop, campaigns_dir, tmp_path):
    pool_campaign(campaigns_dir)
    customers_with_orders(shop, 1)
    app.import_coupons("WINBACK15", codes_file(tmp_path, ["ONE", "TWO"]), NOW)
    provider = CrashingOnce()
    with pytest.raises(Crash):
        app.tick(NOW, app.campaigns(NOW), provider)
    assert list(handed_out(app).values()) == ["ONE"]
    app.tick(NOW + dt.timedelta(minutes=11), app.campaigns(NOW), provider)  # the lease has run out
    assert provider.subjects == ["Your code ONE"]
    assert list(handed_out(app).values()) == ["ONE"]  # "TWO" is still free


def test_preview_shows_where_the_code_comes_from_and_consumes_nothing(app, shop, campaigns_dir, tmp_path):
    pool_campaign(campaigns_dir)
    customers_with_orders(shop, 3)
    app.import_coupons("WINBACK15", codes_file(tmp_path, ["A1", "A2"]), NOW)
    items = list(app.preview(NOW, app.campaigns(NOW)))
    subjects = [i.email.subject for i in items if i.email]
    assert subjects == ["Your code (from pool WINBACK15: 2 left)", "Your code (from pool WINBACK15: 1 left)"]
    assert [i.occurrence.outcome for i in items if not i.email] == ["deferred:no_coupon"]
    assert handed_out(app) == {} and ledger(app) == []


# ---------------------------------------------------------------- imports


def test_import_reads_a_code_column_ignores_repeats_and_adds_nothing_the_second_time(app, tmp_path):
    path = tmp_path / "shopify.csv"
    path.write_text("Discount,Code,Usage\nWB,AAA1,0\nWB,BBB2,0\nWB,AAA1,0\n", encoding="utf-8")
    first = app.import_coupons("WB", path, NOW)
    assert (first.added, first.repeated, first.already, first.codes, first.left) == (2, 1, 0, 2, 2)
    again = app.import_coupons("WB", path, NOW)
    assert (again.added, again.already) == (0, 2)
    assert again.summary() == ("Pool WB: 0 code(s) added (1 repeated in the file, 2 already in the pool: ignored); "
                               "2 code(s), 2 not handed out yet")


def test_import_refuses_a_pool_name_no_campaign_could_use(app, tmp_path):
    with pytest.raises(LifecycleError, match="'win back' is not a pool name"):
        app.import_coupons("win back", codes_file(tmp_path, ["A1"]), NOW)


def test_import_without_a_code_header_reads_the_first_column_from_the_first_row(app, tmp_path):
    result = app.import_coupons("P", codes_file(tmp_path, ["X-1", "X-2", "X-3"], header=None), NOW)
    assert (result.added, result.codes) == (3, 3)


def test_import_errors_name_each_bad_row_and_write_nothing(app, tmp_path):
    app.import_coupons("OTHER", codes_file(tmp_path, ["TAKEN"], name="other.csv"), NOW)
    path = codes_file(tmp_path, ["GOOD", "TWO WORDS", "TAKEN", "X" * 256])
    with pytest.raises(DataImportError) as caught:
        app.import_coupons("P", path, NOW)
    error = caught.value
    assert "\n" not in str(error)
    assert str(error) == (f"{path}: row 3, column 'Code': 'TWO WORDS' has a space in it: a discount code is one word; "
                          "nothing was imported (and 2 more problem(s))")
    assert [p.row for p in error.problems] == [3, 4, 5]
    assert "already in pool OTHER" in error.problems[1].reason
    assert "longer than 255" in error.problems[2].reason
    assert [p.pool for p in app.coupon_pools(NOW, [])] == ["OTHER"]  # nothing of this file was written


def test_import_refuses_codes_of_the_file_that_differ_only_in_case(app, tmp_path):
    path = codes_file(tmp_path, ["SAVE-1", "SAVE-2", "save-1", "SAVE-2"])
    with pytest.raises(DataImportError) as caught:
        app.import_coupons("P", path, NOW)
    (problem,) = caught.value.problems
    assert problem.row == 4
    assert problem.reason == "'save-1' differs only in case from 'SAVE-1' in row 2"
    assert "whatever their case" in problem.hint
    assert app.coupon_pools(NOW, []) == []  # nothing was written


@pytest.mark.parametrize("pool", ["P", "OTHER"])
def test_import_refuses_a_code_that_differs_only_in_case_from_one_in_the_store(app, tmp_path, pool):
    app.import_coupons(pool, codes_file(tmp_path, ["Save-1", "KEEP"], name="first.csv"), NOW)
    path = codes_file(tmp_path, ["NEW-1", *(f"C{n}" for n in range(1500)), "SAVE-1", "keep"])
    with pytest.raises(DataImportError) as caught:
        app.import_coupons("P", path, NOW)
    assert [(p.row, p.reason) for p in caught.value.problems] == [
        (1503, f"'SAVE-1' differs only in case from 'Save-1', already in pool {pool}"),
        (1504, f"'keep' differs only in case from 'KEEP', already in pool {pool}")]
    assert [(p.pool, p.codes) for p in app.coupon_pools(NOW, [])] == [(pool, 2)]  # nothing of this file was written


# ---------------------------------------------------------------- the warning


@pytest.mark.parametrize(("codes", "recent", "old", "below", "warning"), [
    (100, 20, 0, "50", None),
    (45, 0, 0, "50", "coupon pool P has 45 code(s) left, fewer than LIFECYCLE_COUPON_WARN_BELOW=50 (pool-offer)"),
    (70, 40, 0, "10", "coupon pool P has 30 code(s) left, fewer than the 40 handed out in the last 7 day(s)"),
    (70, 0, 40, "10", None),  # handed out before the last 7 days: not the current pace
    (0, 0, 0, "50", "coupon pool P is empty"),
])
def test_a_pool_running_low_is_warned_about(app, shop, campaigns_dir, tmp_path, codes, recent, old, below, warning):
    app.settings = app.settings.with_values(COUPON_WARN_BELOW=below)
    pool_campaign(campaigns_dir, pool="P")
    if codes:
        app.import_coupons("P", codes_file(tmp_path, [f"C{n}" for n in range(codes)]), NOW)
    for count, days, prefix in ((old, 9, "old"), (recent, 1, "recent")):
        for n in range(count):
            shop.order(shop.customer(f"{prefix}{n}@example.com"), NOW - dt.timedelta(days=days, hours=3))
        app.tick(NOW - dt.timedelta(days=days), app.campaigns(NOW), Capturing())
    assert len(handed_out(app)) == recent + old
    warnings = app.coupon_warnings(NOW, app.campaigns(NOW))
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warnings[0].startswith(warning)


# ---------------------------------------------------------------- generated codes


def test_generated_codes_are_deterministic_distinct_and_unambiguous():
    spec = GenerateSpec(prefix="WB-", length=10)
    codes = [generated_code(b"secret", spec, "winback", f"lapse:{n}") for n in range(20_000)]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(f"WB-[{ALPHABET}]{{10}}", code) for code in codes)
    assert not set("01IO") & set("".join(c[3:] for c in codes))
    assert generated_code(b"secret", spec, "winback", "lapse:7") == codes[7]
    assert generated_code(b"other", spec, "winback", "lapse:7") != codes[7]
    assert generated_code(b"secret", spec, "birthday", "lapse:7") != codes[7]


@pytest.fixture
def with_secret(app: App) -> App:
    app.settings = app.settings.with_values(COUPON_SECRET=SECRET)
    return app


def test_generated_codes_are_sent_and_exported_for_shopify(with_secret, shop, campaigns_dir, tmp_path):
    app = with_secret
    generated_campaign(campaigns_dir)
    customers_with_orders(shop, 3)
    shop.order(shop.customer("later@example.com"), NOW - dt.timedelta(hours=1))  # due at 13:00
    provider = Capturing()
    assert app.tick(NOW, app.campaigns(NOW), provider).rows()[0]["sent"] == 3
    spec = GenerateSpec(prefix="WB-", length=10)
    expected = [generated_code(SECRET.encode(), spec, "generated-offer", r.occurrence_key) for r in ledger(app)]
    assert sorted(subject_codes(provider.subjects)) == sorted(expected)
    assert handed_out(app) == {}  # nothing stored: the code is a function of the send

    out = tmp_path / "discount-codes.csv"
    assert app.export_coupons(NOW, app.campaigns(NOW), out) == 3
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Title", "Command", "Code"]
    assert rows[1:] == [["Win-back 15%", "MERGE", code] for code in expected]

    assert app.export_coupons(NOW, app.campaigns(NOW), out, due_within=dt.timedelta(hours=2)) == 4
    assert app.export_coupons(NOW, app.campaigns(NOW), out, since=NOW + dt.timedelta(minutes=1)) == 0
    # what the export promised is what the later email carries
    with out.open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [["Title", "Command", "Code"]]
    app.export_coupons(NOW, app.campaigns(NOW), out, due_within=dt.timedelta(hours=2))
    promised = out.read_text(encoding="utf-8").splitlines()[-1].split(",")[-1]
    app.tick(NOW + dt.timedelta(hours=1, minutes=5), app.campaigns(NOW), provider)
    assert subject_codes(provider.subjects)[-1] == promised


def test_a_generating_campaign_without_a_secret_is_refused_with_its_line(app, campaigns_dir):
    generated_campaign(campaigns_dir)
    with pytest.raises(CampaignError):
        app.campaigns(NOW)
    _, problems = app.problems(NOW)
    assert [(p.line, p.message) for p in problems] == [
        (10, "message.coupon.generate: LIFECYCLE_COUPON_SECRET is not set")]


@pytest.mark.parametrize(("coupon", "expected"), [
    ("pool: P\n            generate: {prefix: X-}",
     "7: message.coupon: give exactly one of `pool: NAME` and `generate: {prefix: ..., length: ...}`"),
    ("generate: {length: 4}", "8: message.coupon.generate.length must be between 8 and 24, got 4"),
    ("pool: P\n            size: 3", "9: unknown key 'size' (hint: valid keys here: generate, pool)"),
])
def test_a_malformed_coupon_is_refused_with_its_line(app, campaigns_dir, coupon, expected):
    path = write_campaign(campaigns_dir, f"""
        id: malformed
        name: Malformed
        trigger: {{type: order, event: placed, delay: 2h}}
        message:
          template: winback
          subject: "Hi"
          coupon:
            {coupon}
    """)
    _, problems = app.problems(NOW)
    assert [str(p) for p in problems] == [f"{path}:{expected}"]


# ---------------------------------------------------------------- from the command line


@pytest.fixture
def pool_workdir(workdir: Path) -> Path:  # noqa: F811 - the fixture imported above
    """A shop's working directory with the shipped campaigns and templates, the win-back on a pool."""
    winback = workdir / "campaigns" / "winback.yaml"
    winback.write_text(winback.read_text().replace("\nmessage:\n", "\nmessage:\n  coupon:\n    pool: WINBACK15\n", 1))
    return workdir


def test_the_shipped_winback_on_a_pool_from_the_command_line(pool_workdir: Path, capsys):
    code, out, err = run(capsys, "demo", "--customers", "400", "--at", "2026-11-23T10:00:00Z")
    assert code == 0, err
    assert "warning: coupon pool WINBACK15 is empty: winback" in err
    winback = next(line for line in out.splitlines() if line.startswith("winback "))
    assert "no_coupon=" in winback and " 0 " in winback  # held back, none sent

    (pool_workdir / "codes.csv").write_text("Code\nWB-0001\nWB-0002\nWB-0001\n", encoding="utf-8")
    code, out, err = run(capsys, "coupons", "import", "WINBACK15", "codes.csv")
    assert (code, out.strip()) == (0, "Pool WINBACK15: 2 code(s) added (1 repeated in the file: ignored); "
                                      "2 code(s), 2 not handed out yet")
    code, out, err = run(capsys, "tick", "--at", "2026-11-23T11:00:00Z", "--campaign", "winback", "--json")
    assert code == 0, err
    row = json.loads(out)[0]
    assert row["sent"] == 2 and row["deferred"]["no_coupon"] >= 1
    assert "warning: coupon pool WINBACK15 is empty" in err

    code, out, err = run(capsys, "coupons", "status", "--json", "--at", "2026-11-23T12:00:00Z")
    assert json.loads(out)[0] | {"warning": None} == {"pool": "WINBACK15", "codes": 2, "left": 0, "recent": 2,
                                                      "recent_days": 7, "campaigns": ["winback"], "warning": None}
    code, out, err = run(capsys, "coupons", "status", "--at", "2026-11-23T12:00:00Z")
    assert "WINBACK15" in out and "warning: coupon pool WINBACK15 is empty" in err

    bad = pool_workdir / "bad.csv"
    bad.write_text("Code\nOK-1\nSAVE 15\n", encoding="utf-8")
    code, out, err = run(capsys, "coupons", "import", "WINBACK15", "bad.csv")
    assert code == 1 and err.splitlines()[0] == (
        "Error: bad.csv: row 3, column 'Code': 'SAVE 15' has a space in it: a discount code is one word; "
        "nothing was imported")


def test_export_from_the_command_line_needs_the_secret(workdir: Path, capsys, monkeypatch):  # noqa: F811
    generated_campaign(workdir / "campaigns")
    code, out, err = run(capsys, "validate")
    assert code == 1 and "generated-offer.yaml:10: message.coupon.generate: LIFECYCLE_COUPON_SECRET is not set" in err
    monkeypatch.setenv("LIFECYCLE_COUPON_SECRET", SECRET)
    assert run(capsys, "init")[0] == 0
    code, out, err = run(capsys, "coupons", "export", "--campaign", "generated-offer", "--due-within", "3d",
                         "codes.csv")
    assert (code, out.strip()) == (0, "Wrote 0 code(s) to codes.csv")
    assert (workdir / "codes.csv").read_bytes() == b"Title,Command,Code\r\n"
    code, out, err = run(capsys, "coupons", "export", "--due-within", "soon", "codes.csv")
    assert code == 2 and "'soon' is not a duration" in err
    code, out, err = run(capsys, "settings")
    assert SECRET not in out + err
