"""Template contexts from a real store: each amount in its own currency, the reader's locale and language,
and recommendations that leave out what the customer already bought."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from shopkit import ROOT, ShopBuilder, utc, write_campaign
from sqlalchemy import event
from sqlmodel import select

from runner.app import App
from runner.context import build_contexts
from runner.engine import find_occurrences, store_time_zones, window_for
from runner.recommend import refresh_affinity
from runner.results import PreviewItem
from runner.store import utc_naive

WINBACK_DUE = utc(2026, 4, 1, 12, 0)  # 90 days after the orders of 1 January


def previews(app: App, at: dt.datetime) -> dict[tuple[str, str], PreviewItem]:
    """What a tick at `at` would send, by (campaign, address), with a fresh affinity table."""
    with app.store.session() as session:
        refresh_affinity(session, utc_naive(at))
    return {(item.occurrence.campaign_id, item.occurrence.email): item
            for item in app.preview(at, app.campaigns(at))}


def install(campaigns_dir: Path, *ids: str) -> None:
    for campaign_id in ids:
        shutil.copy(ROOT / "campaigns" / f"{campaign_id}.yaml", campaigns_dir)


def buyers(shop: ShopBuilder, currency: str = "USD") -> None:
    """Customers whose orders make an affinity table: coffee sells best, then filters, mugs, grinders."""
    for n, lines in enumerate([["COFFEE", "FILTER", "MUG"], ["COFFEE", "GRINDER"], ["COFFEE", "FILTER"],
                               ["MUG", "GRINDER", "COFFEE"]]):
        shop.order(shop.customer(f"buyer{n}@example.com"), utc(2025, 12, 1 + n, 10, 0),
                   [(sku, 1) for sku in lines], currency=currency)


# ---------------------------------------------------------------- currencies

def test_a_euro_shop_with_default_settings_shows_euros_in_win_back_and_thank_you(
        app: App, shop: ShopBuilder, campaigns_dir: Path) -> None:
    """The shop currency setting is left at USD, the orders are in euros: every email shows euros."""
    install(campaigns_dir, "thank-you")
    write_campaign(campaigns_dir, """
        id: winback
        name: Win-back
        trigger: {type: lapsed, after: 90d}
        message:
          template: winback
          subject: "You spent {{ customer.total_spent }} with us"
          params: {discount_code: BACK, discount_percent: 10}
    """)
    buyers(shop, "EUR")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 1, 1, 12, 0), [("MUG", 1)], currency="EUR")
    shop.order(ada, utc(2026, 1, 1, 12, 0), [("MUG", 1)], currency="EUR", cancelled=True)  # does not count
    bob = shop.customer("bob@example.com")
    shop.order(bob, WINBACK_DUE - dt.timedelta(hours=2), [("MUG", 1)], currency="EUR")

    found = previews(app, WINBACK_DUE)
    winback = found[("winback", "ada@example.com")].email
    thank_you = found[("thank-you", "bob@example.com")].email
    assert winback is not None and thank_you is not None
    assert winback.subject == "You spent €25.00 with us"
    for email in (winback, thank_you):
        assert "€12.50" in email.html and "€12.50" in email.text  # recommended products' prices
        assert "$" not in email.html and "$" not in email.text


def test_a_customer_who_ordered_in_two_currencies_is_shown_the_latest_one(
        app: App, shop: ShopBuilder, campaigns_dir: Path) -> None:
    write_campaign(campaigns_dir, """
        id: winback
        name: Win-back
        trigger: {type: lapsed, after: 90d}
        message: {template: winback, subject: "{{ customer.total_spent }} in {{ customer.currency }}"}
    """)
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2025, 6, 1, 12, 0), currency="GBP")
    shop.order(ada, utc(2025, 9, 1, 12, 0), currency="EUR")
    shop.order(ada, utc(2026, 1, 1, 12, 0), currency="EUR")
    email = previews(app, WINBACK_DUE)[("winback", "ada@example.com")].email
    assert email is not None and email.subject == "€50.00 in EUR"  # never £25 + €50 added up


# ---------------------------------------------------------------- locales and languages

@pytest.fixture
def french_templates(app: App, tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", folder)
    (folder / "winback.fr.html").write_text(
        '{% extends "base.html" %}\n{% from "_macros.html" import products %}\n'
        "{% block content %}<p>Vous nous manquez depuis le {{ customer.last_order_at|date }}.</p>\n"
        "{{ products(recommendations, shop.url) }}{% endblock %}\n", encoding="utf-8")
    app.settings = app.settings.with_values(TEMPLATES_DIR=str(folder))
    app.__dict__.pop("renderer", None)  # built again from the new settings
    return folder


def test_each_customer_reads_their_own_language_and_formats(
        app: App, shop: ShopBuilder, campaigns_dir: Path, french_templates: Path) -> None:
    install(campaigns_dir, "winback")
    buyers(shop, "EUR")
    for email, locale in [("fr@example.com", "fr_FR"), ("qc@example.com", "fr_CA"), ("de@example.com", "de_DE"),
                          ("en@example.com", None), ("odd@example.com", "klingon")]:
        shop.order(shop.customer(email, locale=locale), utc(2026, 1, 1, 12, 0), [("TEA", 1)], currency="EUR")
    found = {email: item.email for (_, email), item in previews(app, WINBACK_DUE).items()}

    for french in ("fr@example.com", "qc@example.com"):  # fr_CA has no template of its own: French it is
        assert "Vous nous manquez depuis le 1 janvier 2026." in found[french].html
        assert "12,50\xa0€" in found[french].html
    german = found["de@example.com"]  # no German template: the default one, in German formats
    assert "We miss you" in german.html and "1. Januar 2026" in german.html and "12,50\xa0€" in german.html
    for default in ("en@example.com", "odd@example.com"):  # unknown locales read the shop's
        assert "We miss you" in found[default].html and "January 1, 2026" in found[default].html
        assert "€12.50" in found[default].html


def test_the_shop_locale_is_the_default_for_customers_without_one(
        app: App, shop: ShopBuilder, campaigns_dir: Path, french_templates: Path) -> None:
    app.settings = app.settings.with_values(SHOP_LOCALE="fr_BE")
    install(campaigns_dir, "winback")
    shop.order(shop.customer("ada@example.com"), utc(2026, 1, 1, 12, 0), currency="EUR")
    shop.order(shop.customer("en@example.com", locale="en_GB"), utc(2026, 1, 1, 12, 0), currency="EUR")
    found = {email: item.email for (_, email), item in previews(app, WINBACK_DUE).items()}
    assert "Vous nous manquez depuis le 1 janvier 2026." in found["ada@example.com"].html
    assert "We miss you" in found["en@example.com"].html and "1 January 2026" in found["en@example.com"].html


# ---------------------------------------------------------------- recommendations

def recommended(item: PreviewItem) -> list[str]:
    assert item.email is not None
    return [sku for sku in ("COFFEE", "FILTER", "MUG", "GRINDER", "TEA") if f"/{sku}" in item.email.html]


def test_recommendations_leave_out_what_the_customer_bought(app: App, shop: ShopBuilder,
                                                            campaigns_dir: Path) -> None:
    install(campaigns_dir, "winback", "thank-you")
    buyers(shop)
    ada = shop.customer("ada@example.com")  # her only order: coffee and filter papers
    shop.order(ada, utc(2026, 1, 1, 12, 0), [("COFFEE", 1), ("FILTER", 1)])
    bob = shop.customer("bob@example.com")  # bought a mug last month; today coffee
    shop.order(bob, WINBACK_DUE - dt.timedelta(days=30), [("MUG", 1)])
    shop.order(bob, WINBACK_DUE - dt.timedelta(hours=2), [("COFFEE", 1)])
    found = previews(app, WINBACK_DUE)
    assert recommended(found[("winback", "ada@example.com")]) == ["MUG", "GRINDER"]
    assert recommended(found[("thank-you", "bob@example.com")]) == ["FILTER", "GRINDER"]


def test_a_campaign_may_recommend_what_was_bought(app: App, shop: ShopBuilder, campaigns_dir: Path) -> None:
    write_campaign(campaigns_dir, """
        id: winback
        name: Win-back with favourites
        trigger: {type: lapsed, after: 90d, recommend_bought: true}
        message: {template: winback, subject: "Your favourites"}
    """)
    buyers(shop)
    shop.order(shop.customer("ada@example.com"), utc(2026, 1, 1, 12, 0), [("COFFEE", 1), ("FILTER", 1)])
    assert recommended(previews(app, WINBACK_DUE)[("winback", "ada@example.com")]) == ["COFFEE", "FILTER", "MUG"]


def test_replenishment_recommends_what_was_bought_unless_it_says_otherwise(
        app: App, shop: ShopBuilder, campaigns_dir: Path) -> None:
    write_campaign(campaigns_dir, """
        id: refill
        name: Refill
        trigger: {type: replenishment, cycles: {"TEA": 30d}}
        message: {template: replenishment, subject: "Tea?"}
    """)
    write_campaign(campaigns_dir, """
        id: refill-new
        name: Refill, something new
        trigger: {type: replenishment, cycles: {"TEA": 30d}, recommend_bought: false}
        message: {template: replenishment, subject: "Tea?"}
    """)
    buyers(shop)
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 1, 1, 12, 0), [("COFFEE", 1)])
    shop.order(ada, utc(2026, 3, 1, 12, 0), [("TEA", 1)])
    found = previews(app, utc(2026, 3, 31, 12, 0))
    assert "COFFEE" in recommended(found[("refill", "ada@example.com")])
    assert "COFFEE" not in recommended(found[("refill-new", "ada@example.com")])


def test_contexts_cost_the_same_queries_for_one_customer_or_many(app: App, shop: ShopBuilder,
                                                                 campaigns_dir: Path) -> None:
    install(campaigns_dir, "winback")
    buyers(shop)
    for n in range(12):
        shop.order(shop.customer(f"c{n}@example.com"), utc(2026, 1, 1, 12, 0), [("TEA", 1), ("COFFEE", 1)])
    (campaign,) = app.campaigns(WINBACK_DUE)
    now, shop_ = utc_naive(WINBACK_DUE), app.shop()
    with app.store.session() as session:
        refresh_affinity(session, now)
        window = window_for(campaign, now, None, shop_.default_zone, store_time_zones(session))
        items = list(find_occurrences(session, campaign, window))
        assert len(items) == 12
        statements: list[str] = []
        event.listen(app.store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        build_contexts(session, campaign, items[:1], shop_, now)
        one = len(statements)
        statements.clear()
        build_contexts(session, campaign, items, shop_, now)
        assert len(statements) == one


def test_a_tick_leaves_the_affinity_table_to_its_own_job(app: App, shop: ShopBuilder, campaigns_dir: Path):
    """The rebuild reads a year of order lines: the daemon runs it on its own schedule (or cron runs
    `lifecycle refresh-affinity`), never inside a tick."""
    from runner.daemon import Daemon
    from runner.models import ProductAffinity
    from runner.providers.file import FileProvider

    install(campaigns_dir, "thank-you")
    buyers(shop)
    at = utc(2026, 1, 5, 12, 0)
    app.tick(at, app.campaigns(at), FileProvider(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])))
    with app.store.session() as session:
        assert session.exec(select(ProductAffinity)).all() == []
    assert app.refresh_affinity(at, only_if_stale=True) is True
    assert app.refresh_affinity(at + dt.timedelta(hours=23), only_if_stale=True) is False  # built today
    with app.store.session() as session:
        pair = session.get(ProductAffinity, ("COFFEE", "FILTER"))
        assert pair is not None and pair.orders == 2

    daemon = Daemon(app, clock=lambda: at)
    daemon.load()
    jobs = {job.id: job for job in daemon.scheduler.get_jobs()}
    assert str(jobs["refresh-affinity"].trigger) == "cron[month='*', day='*', day_of_week='*', hour='3', minute='30']"
    assert jobs["refresh-affinity-if-stale"].kwargs == {"only_if_stale": True}
