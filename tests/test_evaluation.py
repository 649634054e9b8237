"""Evaluation state: a campaign's first sighting fixes its window; one tick at a time evaluates a campaign."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from shopkit import ShopBuilder, utc
from test_engine import install, ledger

import runner.app
from runner.app import App
from runner.campaign_state import EVALUATION_LEASE, campaign_state, take_evaluation
from runner.daemon import Daemon
from runner.engine import plan, store_time_zones, window_for
from runner.providers.file import FileProvider


class Killed(BaseException):
    """The process dying where it is (nothing after this point runs its normal course)."""


def tick(app: App, at: dt.datetime) -> dict:
    provider = FileProvider(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]))
    return app.tick(at, app.campaigns(at), provider).rows()[0]


def test_a_first_tick_killed_before_it_plans_loses_no_occurrence(app: App, shop: ShopBuilder, campaigns_dir,
                                                                  monkeypatch: pytest.MonkeyPatch):
    install(campaigns_dir, "thank-you")  # 2h after each order, expires after 2 days
    ada = shop.customer("ada@example.com")
    before_first = shop.order(ada, utc(2026, 11, 20, 9, 0))   # due 11-20 11:00: the first tick should have sent it
    while_down = shop.order(ada, utc(2026, 11, 21, 10, 0))    # due 11-21 12:00, while nothing ran
    on_return = shop.order(ada, utc(2026, 11, 25, 9, 0))      # due 11-25 11:00

    def killed(*_args: object) -> None:
        raise Killed

    monkeypatch.setattr(runner.app, "plan", killed)
    with pytest.raises(Killed):
        tick(app, utc(2026, 11, 20, 12, 0))  # the campaign's very first tick dies before planning
    monkeypatch.undo()

    tick(app, utc(2026, 11, 25, 12, 0))  # back days later
    found = {s.occurrence_key: (s.status, s.skip_reason) for s in ledger(app)}
    assert found == {f"order:{before_first}": ("skipped", "expired"),
                     f"order:{while_down}": ("skipped", "expired"),
                     f"order:{on_return}": ("sent", None)}


def test_a_tick_killed_before_it_reaches_a_campaign_loses_none_of_its_occurrences(
        app: App, shop: ShopBuilder, campaigns_dir, monkeypatch: pytest.MonkeyPatch):
    install(campaigns_dir, "birthday", "thank-you")  # planned in this order (priority 40, then 30)
    ada = shop.customer("ada@example.com")
    order = shop.order(ada, utc(2026, 11, 18, 12, 0))  # thank-you due 11-18 14:00, expires 2 days later

    def killed(*_args: object, **_kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr(runner.app, "plan", killed)
    with pytest.raises(Killed):  # dies planning birthday, before it reaches thank-you
        tick(app, utc(2026, 11, 20, 12, 0))
    monkeypatch.undo()

    tick(app, utc(2026, 11, 20, 14, 30))  # the next tick: the email is now more than 2 days overdue
    found = {s.occurrence_key: (s.status, s.skip_reason) for s in ledger(app) if s.campaign_id == "thank-you"}
    assert found == {f"order:{order}": ("skipped", "expired")}


def test_the_daemon_records_every_campaign_it_loads_as_seen(app: App, campaigns_dir):
    install(campaigns_dir, "replenishment", "thank-you")
    Daemon(app, clock=lambda: utc(2026, 11, 20, 12, 0)).load()  # before any campaign's first run
    with app.store.reading() as session:
        seen = {c: state.first_seen_at for c in ("replenishment", "thank-you")
                if (state := campaign_state(session, c)) is not None}
    assert seen == {"replenishment": dt.datetime(2026, 11, 20, 12), "thank-you": dt.datetime(2026, 11, 20, 12)}


def test_a_new_campaign_still_does_not_dig_up_history(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "thank-you")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 10, 1, 9, 0))
    recent = shop.order(ada, utc(2026, 11, 20, 9, 0))
    assert tick(app, utc(2026, 11, 20, 12, 0))["sent"] == 1
    assert [s.occurrence_key for s in ledger(app)] == [f"order:{recent}"]
    with app.store.reading() as session:
        state = campaign_state(session, "thank-you")
    assert state is not None and state.first_seen_at == state.last_evaluated_at == dt.datetime(2026, 11, 20, 12)
    assert state.evaluation_lease_token is None and state.evaluation_lease_until is None


def test_a_campaign_another_tick_is_evaluating_is_skipped_until_its_lease_runs_out(app: App, shop: ShopBuilder,
                                                                                   campaigns_dir):
    install(campaigns_dir, "thank-you")
    ada, bob = shop.customer("ada@example.com"), shop.customer("bob@example.com")
    shop.order(ada, utc(2026, 11, 20, 9, 0))
    now = dt.datetime(2026, 11, 20, 12, 0)
    campaign = app.campaigns(now)[0]
    with app.store.reading() as session:
        zones = store_time_zones(session)
    plan(app.store, campaign, window_for(campaign, now, None, dt.UTC, zones))  # ada's email is planned
    shop.order(bob, utc(2026, 11, 20, 9, 30))
    with app.store.session() as session:  # a worker takes the lease and dies (kill -9: it never gives it back)
        assert take_evaluation(session, "thank-you", now).held

    busy = tick(app, utc(2026, 11, 20, 12, 1))
    assert busy["evaluated"] is False and busy["due"] == 0
    assert busy["note"].startswith("another tick is evaluating this campaign (its lease runs until 2026-11-20 12:10")
    assert busy["sent"] == 1  # what was planned is still dispatched
    assert [s.status for s in ledger(app)] == ["sent"]

    back = tick(app, utc(2026, 11, 20, 12, 0) + EVALUATION_LEASE)
    assert back["evaluated"] is True and back["note"] is None
    assert back["due"] == 1 and back["sent"] == 1  # bob's, found once the lease ran out
    assert [s.status for s in ledger(app)] == ["sent", "sent"]


def test_one_evaluation_lease_at_a_time(app: App):
    now = dt.datetime(2026, 11, 20, 12, 0)
    with app.store.session() as session:
        first = take_evaluation(session, "thank-you", now)
        second = take_evaluation(session, "thank-you", now + EVALUATION_LEASE - dt.timedelta(seconds=1))
        third = take_evaluation(session, "thank-you", now + EVALUATION_LEASE)
    assert first.held and not second.held and third.held
    assert second.state.evaluation_lease_token == first.token and third.token != first.token
    assert first.state.first_seen_at == third.state.first_seen_at == now


