"""Journeys: steps in order, each sent at most once, stopped by the exits the campaign declares."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from shopkit import ROOT, ShopBuilder, utc, write_campaign
from sqlalchemy import func, select, update
from test_cli import AT, run, workdir  # noqa: F401 - workdir is a fixture used here

from runner.app import App
from runner.models import Customer, Event, Send, SendStatus
from runner.providers.base import SendResult
from runner.providers.file import FileProvider
from runner.settings import Settings
from runner.store import Store

LAST_ORDER = utc(2026, 1, 1, 12, 0)
DAY = dt.timedelta(days=1)


def day(n: int, hours: int = 0) -> dt.datetime:
    """`n` days (and `hours`) after the last order."""
    return LAST_ORDER + n * DAY + dt.timedelta(hours=hours)


def install_journey(campaigns_dir: Path) -> None:
    shutil.copy(ROOT / "campaigns" / "winback-journey.yaml", campaigns_dir)


def outbox(app: App) -> Path:
    return Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])


def tick(app: App, at: dt.datetime, provider: FileProvider | None = None) -> dict:
    campaigns = app.campaigns(at, [c.id for c in app.campaigns(at, enabled=False)])  # the disabled journey too
    report = app.tick(at, campaigns, provider or FileProvider(outbox(app)))
    return {row["campaign"]: row for row in report.rows()}


def ledger(app: App) -> list[Send]:
    with app.store.session() as session:
        return list(session.exec(select(Send).order_by(Send.id)).scalars())


def steps(app: App) -> list[tuple[int | None, str, str | None]]:
    return [(s.step, s.status, s.skip_reason) for s in ledger(app)]


def emails(app: App) -> list[str]:
    return sorted(p.read_text() for p in outbox(app).rglob("*.eml"))


@pytest.fixture
def lapsed(shop: ShopBuilder) -> int:
    ada = shop.customer("ada@example.com")
    shop.order(ada, LAST_ORDER)
    return ada


class FailingProvider(FileProvider):
    """Answers every message with a temporary failure: the send stays planned, to be retried."""

    def send_batch(self, messages):  # type: ignore[no-untyped-def]
        return [SendResult.retryable("HTTP 503") for _ in messages]


def test_the_shipped_journey_sends_its_three_steps_at_60_90_and_120_days(
        app: App, campaigns_dir: Path, lapsed: int):
    install_journey(campaigns_dir)
    assert tick(app, day(60, -1))["winback-journey"]["due"] == 0
    assert tick(app, day(60))["winback-journey"]["sent"] == 1
    assert tick(app, day(90, -1))["winback-journey"]["due"] == 0
    assert tick(app, day(90))["winback-journey"]["sent"] == 1
    assert tick(app, day(120))["winback-journey"]["sent"] == 1
    assert tick(app, day(150))["winback-journey"]["due"] == 0
    rows = ledger(app)
    journey = f"lapse:{lapsed}:20260101120000"
    assert [(r.step, r.occurrence_key, r.status) for r in rows] == [
        (1, journey, "sent"), (2, f"{journey}#2", "sent"), (3, f"{journey}#3", "sent")]
    assert rows[1].reason.startswith("step 2 of 3: 30d after the journey began")
    mails = emails(app)
    assert [sum(code in m for m in mails) for code in ("COMEBACK10", "COMEBACK15", "COMEBACK20")] == [1, 1, 1]
    assert sum("last reminder from us" in m for m in mails) == 1  # step 3 of 3 reads `step.number`


def test_a_step_never_overtakes_its_predecessor(app: App, campaigns_dir: Path, lapsed: int):
    install_journey(campaigns_dir)
    failing = FailingProvider(outbox(app))
    tick(app, day(60), failing)
    tick(app, day(90), failing)  # step 2 would be due, but step 1 is still waiting for its retry
    assert steps(app) == [(1, "planned", None)]
    tick(app, day(95))  # step 1 finally goes out
    assert steps(app) == [(1, "sent", None)]
    tick(app, day(95, 1))  # step 2 was due at day 90: it follows at once, never before step 1
    first, second = ledger(app)
    assert second.status == "sent" and second.sent_at > first.sent_at
    assert second.due_at == first.sent_at


def test_an_order_between_steps_stops_the_rest_and_records_why(
        app: App, shop: ShopBuilder, campaigns_dir: Path, lapsed: int):
    install_journey(campaigns_dir)
    tick(app, day(60))
    shop.order(lapsed, day(75))
    row = tick(app, day(90))["winback-journey"]
    assert row["sent"] == 0 and row["skipped"] == {"exit_ordered": 1}
    tick(app, day(120))
    assert steps(app) == [(1, "sent", None), (2, "skipped", "exit_ordered")]
    assert ledger(app)[1].reason == "journey ended before step 2 of 3: the customer ordered since the journey began"
    (result,) = app.campaign_results(day(0), day(130), dt.timedelta(days=5))
    assert [(s.step, s.sent, s.skipped) for s in result.steps] == [(1, 1, 0), (2, 0, 1)]


def test_an_order_after_a_step_was_planned_stops_it_at_dispatch(
        app: App, shop: ShopBuilder, campaigns_dir: Path, lapsed: int):
    install_journey(campaigns_dir)
    tick(app, day(60))
    tick(app, day(90), FailingProvider(outbox(app)))  # step 2 planned, waiting for its retry
    assert steps(app) == [(1, "sent", None), (2, "planned", None)]
    shop.order(lapsed, day(90, 2))
    row = tick(app, day(91))["winback-journey"]
    assert row["sent"] == 0 and row["skipped"] == {"exit_ordered": 1}
    tick(app, day(120))
    assert steps(app) == [(1, "sent", None), (2, "skipped", "exit_ordered")]
    assert ledger(app)[1].reason == "journey ended before step 2 of 3: the customer ordered since the journey began"
    assert sum("15% off" in m for m in emails(app)) == 0


def test_a_cancelled_order_after_a_step_was_planned_does_not_stop_it(
        app: App, shop: ShopBuilder, campaigns_dir: Path, lapsed: int):
    install_journey(campaigns_dir)
    tick(app, day(60))
    tick(app, day(90), FailingProvider(outbox(app)))
    shop.order(lapsed, day(90, 2), cancelled=True)
    assert tick(app, day(91))["winback-journey"]["sent"] == 1


def test_a_cancelled_order_does_not_stop_the_journey(app: App, shop: ShopBuilder, campaigns_dir: Path, lapsed: int):
    install_journey(campaigns_dir)
    tick(app, day(60))
    shop.order(lapsed, day(75), cancelled=True)
    assert tick(app, day(90))["winback-journey"]["sent"] == 1


JOURNEY = """
id: clicks
name: Two steps, stopped by a click when declared
trigger: {{type: lapsed, after: 60d}}
message:
  template: winback
  subject: "Step {{{{ step.number }}}} of {{{{ step.count }}}}"
steps:
  - {{}}
  - after: 10d
exit: {exit}
"""


@pytest.mark.parametrize(("exit", "expected"), [("[clicked]", ("skipped", "exit_clicked")),
                                                ("[ordered]", ("sent", None))])
def test_a_click_on_the_previous_email_exits_when_that_exit_is_declared(
        app: App, campaigns_dir: Path, lapsed: int, exit: str, expected: tuple):
    write_campaign(campaigns_dir, JOURNEY.format(exit=exit))
    tick(app, day(60))
    (first,) = ledger(app)
    with app.store.session() as session:
        session.add(Event(provider="file", provider_event_id="e-1", type="clicked", send_id=first.id,
                          customer_id=lapsed, email="ada@example.com", occurred_at=day(61).replace(tzinfo=None),
                          received_at=day(61).replace(tzinfo=None)))
        session.commit()
    tick(app, day(70))
    assert steps(app)[1][1:] == expected


def test_a_click_after_the_next_step_was_planned_stops_it_at_dispatch(
        app: App, campaigns_dir: Path, lapsed: int):
    write_campaign(campaigns_dir, JOURNEY.format(exit="[clicked]"))
    tick(app, day(60))
    tick(app, day(70), FailingProvider(outbox(app)))  # step 2 planned, waiting for its retry
    first, second = ledger(app)
    assert second.status == "planned"
    with app.store.session() as session:
        session.add(Event(provider="file", provider_event_id="e-1", type="clicked", send_id=first.id,
                          customer_id=lapsed, email="ada@example.com", occurred_at=day(70, 1).replace(tzinfo=None),
                          received_at=day(70, 1).replace(tzinfo=None)))
        session.commit()
    assert tick(app, day(71))["clicks"]["skipped"] == {"exit_clicked": 1}
    assert steps(app)[1][1:] == ("skipped", "exit_clicked")
    assert ledger(app)[1].reason == "journey ended before step 2 of 2: the customer clicked step 1's email"


def test_a_restart_between_steps_sends_nothing_twice(settings: Settings, app: App, campaigns_dir: Path, lapsed: int):
    install_journey(campaigns_dir)
    tick(app, day(60))
    app.store.close()
    for at in (day(90), day(90), day(90, 1), day(120), day(120)):  # each tick a new process on the same store
        restarted = App(settings)
        try:
            tick(restarted, at)
        finally:
            restarted.store.close()
    assert steps(app) == [(1, "sent", None), (2, "sent", None), (3, "sent", None)]
    assert len(emails(app)) == 3


def test_a_step_skipped_without_consent_does_not_end_the_journey(
        app: App, shop: ShopBuilder, campaigns_dir: Path):
    install_journey(campaigns_dir)
    bob = shop.customer("bob@example.com", consent=False)
    shop.order(bob, LAST_ORDER)
    tick(app, day(60))
    with app.store.session() as session:  # he subscribes after the first step
        session.execute(update(Customer).where(Customer.id == bob).values(accepts_marketing=True))
        session.commit()
    tick(app, day(90))
    assert steps(app) == [(1, "skipped", "no_consent"), (2, "sent", None)]


def test_a_suppressed_customer_gets_no_step_and_each_is_recorded(app: App, shop: ShopBuilder, campaigns_dir: Path):
    install_journey(campaigns_dir)
    eve = shop.customer("eve@example.com")
    shop.order(eve, LAST_ORDER)
    shop.suppress("eve@example.com")
    for at in (day(60), day(90), day(120)):
        tick(app, at)
    assert steps(app) == [(n, "skipped", "suppressed") for n in (1, 2, 3)]
    assert emails(app) == []


def test_preview_shows_the_step_of_each_due_email(app: App, campaigns_dir: Path, lapsed: int):
    install_journey(campaigns_dir)
    tick(app, day(60))
    campaigns = app.campaigns(day(90), ["winback-journey"])
    (item,) = list(app.preview(day(90), campaigns))
    assert item.occurrence.step == 2
    assert item.email is not None and "15% off" in item.email.subject
    assert item.occurrence.occurrence_key.endswith("#2")
    assert steps(app) == [(1, "sent", None)]  # preview writes nothing



def test_the_preview_gallery_and_summary_count_each_step(app: App, campaigns_dir: Path, lapsed: int,
                                                        tmp_path: Path, capsys):
    from runner.cli.output import print_preview_summary
    from runner.gallery import write_gallery

    install_journey(campaigns_dir)
    tick(app, day(60))
    entries = write_gallery(app.preview(day(90), app.campaigns(day(90), ["winback-journey"])), tmp_path / "pv",
                            day(90))
    assert [(e["campaign"], e["step"], e["status"]) for e in entries] == [("winback-journey", 2, "send")]
    assert "step 2" in (tmp_path / "pv" / "index.html").read_text()
    print_preview_summary(entries)
    assert [" ".join(line.split()) for line in capsys.readouterr().out.splitlines() if "step" in line] == [
        "step 2 1"]


def test_send_test_sends_the_step_asked_for(app: App, campaigns_dir: Path, lapsed: int):
    from runner.errors import LifecycleError

    install_journey(campaigns_dir)
    campaign = app.campaigns(day(0), ["winback-journey"])[0]
    provider = FileProvider(outbox(app))
    assert "10% off" in app.send_test(day(0), campaign, "me@example.com", provider)[1]  # the first step
    assert "20% off" in app.send_test(day(0, 1), campaign, "me@example.com", provider, "ada@example.com",
                                      step=3)[1]
    assert sum("last reminder from us" in m for m in emails(app)) == 1
    with pytest.raises(LifecycleError, match="has no step 4") as refused:
        app.send_test(day(0), campaign, "me@example.com", provider, step=4)
    assert refused.value.hint == "it has 3 step(s)"


def test_a_step_planned_before_the_journey_lost_it_is_sent_with_the_last_steps_message(
        app: App, campaigns_dir: Path, lapsed: int):
    install_journey(campaigns_dir)
    tick(app, day(60))
    tick(app, day(90))
    tick(app, day(120), FailingProvider(outbox(app)))  # step 3 planned, waiting for a retry
    path = campaigns_dir / "winback-journey.yaml"
    path.write_text(SHIPPED[:SHIPPED.index("  - after: 60d")] + SHIPPED[SHIPPED.index("# Any order"):])
    assert tick(app, day(121))["winback-journey"]["sent"] == 1
    assert steps(app)[2] == (3, "sent", None)
    assert sum("COMEBACK15" in m for m in emails(app)) == 2


def test_a_campaign_without_steps_records_no_step(app: App, campaigns_dir: Path, lapsed: int):
    shutil.copy(ROOT / "campaigns" / "winback.yaml", campaigns_dir)
    tick(app, day(90))
    tick(app, day(120))
    assert [(s.step, s.status) for s in ledger(app)] == [(None, SendStatus.SENT)]


# ---------------------------------------------------------------- the file format

SHIPPED = (ROOT / "campaigns" / "winback-journey.yaml").read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(("change", "at", "message", "hint"), [
    (lambda t: t.replace("  - after: 30d", "  - aftr: 30d"), "  - aftr: 30d",
     "unknown key 'aftr'", "did you mean 'after'?"),
    (lambda t: t.replace("    from: trigger", "    from: first", 1), "    from: first",
     "steps.1.from: unknown value 'first'", "valid values: previous, trigger"),
    (lambda t: t.replace("  - {}  ", "  - {after: 1d}"), "  - {after: 1d}",
     "steps.0.after: the first step goes out when the trigger fires", "set the wait in the trigger"),
    (lambda t: t.replace("steps:", "variants: [{name: a}, {name: b}]\nsteps:"), "variants:",
     "variants: a journey cannot also be an A/B test", "give each step its own subject"),
    (lambda t: t[:t.index("steps:")] + t[t.index("# Any order"):], "exit:",
     "exit: only a journey (a campaign with `steps:`) has later steps to stop", "add `steps:`"),
    (lambda t: t.replace("exit: [ordered]", "exit: [bought]"), "exit: [bought]",
     "exit.0: unknown value 'bought'", "valid values: ordered, clicked"),
])
def test_a_mistake_in_steps_or_exit_is_refused_at_its_line(tmp_path: Path, change, at, message, hint):
    from runner.campaigns import parse_campaign

    text = change(SHIPPED)
    assert text != SHIPPED
    path = tmp_path / "winback-journey.yaml"
    path.write_text(text, encoding="utf-8")
    campaign, problems = parse_campaign(path)
    assert campaign is None
    (problem,) = problems
    assert (problem.line, problem.message) == (line_of(text, at), message)
    assert hint is None or (problem.hint is not None and hint in problem.hint)


def test_validate_renders_every_step_and_reports_a_mistake_at_the_step_line(app: App, campaigns_dir: Path):
    text = SHIPPED.replace("{{ params.discount_percent }}% off, this week only",
                           "{{ params.nothing.here }}% off, this week only")
    (campaigns_dir / "winback-journey.yaml").write_text(text, encoding="utf-8")
    _, problems = app.problems(day(0))
    (problem,) = problems
    assert problem.line == line_of(text, "nothing.here")
    assert problem.message.startswith("steps.2.subject:")


# ---------------------------------------------------------------- the demo shop

def test_the_demo_shop_runs_the_journey_when_it_replaces_the_single_winback(workdir: Path, capsys):  # noqa: F811
    journey, single = workdir / "campaigns" / "winback-journey.yaml", workdir / "campaigns" / "winback.yaml"
    journey.write_text(journey.read_text().replace("\nenabled: false\n", "\nenabled: true\n"))
    single.write_text(single.read_text().replace("\nenabled: true\n", "\nenabled: false\n"))
    assert run(capsys, "demo", "--customers", "250", "--at", AT)[0] == 0
    start = dt.datetime.fromisoformat(AT)
    for days in (1, 30, 31, 32, 60, 61, 62):
        assert run(capsys, "tick", "--at", (start + days * DAY).isoformat())[0] == 0
    store = Store(f"sqlite:///{workdir / 'lifecycle.db'}")
    try:
        with store.session() as session:
            sent = session.execute(select(Send.step, func.count()).where(
                Send.campaign_id == "winback-journey", Send.status == SendStatus.SENT).group_by(Send.step)).all()
    finally:
        store.close()
    assert {step for step, count in sent if count} == {1, 2, 3}
    assert not list((workdir / "outbox").glob("winback/*.eml"))


# ---------------------------------------------------------------- simulate

def test_simulate_replays_a_journeys_first_step_as_ticks_record_it(app: App, shop: ShopBuilder, campaigns_dir: Path):
    from runner.simulation.grid import TickGrid

    first_step = "  - {}                       # day 60: the message as above\n"
    assert first_step in SHIPPED
    (campaigns_dir / "winback-journey.yaml").write_text(  # the first step's own audience leaves Bob out
        SHIPPED.replace(first_step, "  - audience: [{field: first_name, ne: Bob}]\n"), encoding="utf-8")
    for n, first_name in enumerate(["Ada", "Bob", "Cy"]):
        customer = shop.customer(f"{first_name.lower()}@example.com", first_name=first_name, consent=n != 2)
        shop.order(customer, LAST_ORDER + n * 7 * DAY)
    grid = TickGrid(day(55).replace(tzinfo=None), day(110).replace(tzinfo=None), DAY)
    campaigns = app.campaigns(grid.start, ["winback-journey"])
    simulated = {(o.occurrence_key, o.outcome, o.tick_at) for o in app.simulate(grid, campaigns)}
    for at in grid.ticks():
        app.tick(at, campaigns, FileProvider(outbox(app)))
    first_steps = {(s.occurrence_key, s.skip_reason or "sent", s.created_at) for s in ledger(app) if s.step == 1}
    assert simulated == first_steps and len(simulated) == 2
    assert {s.step for s in ledger(app)} == {1, 2}  # the ticks went on to step 2, which simulate leaves out


def test_simulate_says_it_replays_only_a_journeys_first_step(workdir: Path, capsys):  # noqa: F811
    assert run(capsys, "init")[0] == 0
    code, _, err = run(capsys, "simulate", "--from", "2026-03-01", "--to", "2026-03-02", "--campaign",
                       "winback-journey", "--format", "json")
    assert code == 0
    assert "note: winback-journey is a journey: only its first step is simulated" in err
