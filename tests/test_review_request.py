"""The shipped review request: the `order` trigger on delivery, and a review link per product from
LIFECYCLE_REVIEW_URL."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path

import pytest
from shopkit import ShopBuilder, utc
from test_engine import install, ledger, tick

from runner.app import App
from runner.errors import ConfigError
from runner.settings import REVIEW_URL, Settings


def text_parts(app: App) -> list[str]:
    outbox = Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])
    return [part.get_payload(decode=True).decode() for path in sorted(outbox.rglob("*.eml"))
            for part in message_from_bytes(path.read_bytes()).walk() if part.get_content_type() == "text/plain"]


def test_due_five_days_after_delivery_once(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "review-request")
    ada = shop.customer("ada@example.com")
    delivered = shop.order(ada, utc(2026, 11, 10, 9, 0), delivered_at=utc(2026, 11, 13, 14, 30))
    shop.order(ada, utc(2026, 11, 11, 9, 0))  # not delivered yet: never due
    shop.order(ada, utc(2026, 11, 9, 9, 0), delivered_at=utc(2026, 11, 13, 14, 30), cancelled=True)
    assert tick(app, utc(2026, 11, 18, 14, 29))["review-request"]["due"] == 0
    assert tick(app, utc(2026, 11, 18, 14, 30))["review-request"]["sent"] == 1
    assert tick(app, utc(2026, 11, 18, 15, 30))["review-request"]["due"] == 0
    (sent,) = ledger(app)
    assert (sent.occurrence_key, sent.reason) == (f"order:{delivered}", "order #1001 delivered 5 days ago")


def test_each_product_links_to_its_review_page(app: App, shop: ShopBuilder, campaigns_dir):
    app.settings = app.settings.with_values(REVIEW_URL="https://reviews.example.com/write?sku={sku}")
    install(campaigns_dir, "review-request")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 10, 9, 0), [("COFFEE 1KG/DARK", 1), ("MUG-STONEWARE", 2), ("MUG-STONEWARE", 1)],
               delivered_at=utc(2026, 11, 12, 9, 0))
    assert tick(app, utc(2026, 11, 17, 9, 0))["review-request"]["sent"] == 1
    (text,) = text_parts(app)
    assert "- Coffee 1Kg/Dark: https://reviews.example.com/write?sku=COFFEE%201KG%2FDARK" in text
    assert text.count("https://reviews.example.com/write?sku=MUG-STONEWARE") == 1  # one link per product
    assert "arrived on November 12, 2026" in text


def test_by_default_the_link_is_the_product_page(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "review-request")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 10, 9, 0), [("MUG-STONEWARE", 1)], delivered_at=utc(2026, 11, 12, 9, 0))
    tick(app, utc(2026, 11, 17, 9, 0))
    (text,) = text_parts(app)
    assert "- Mug-Stoneware: https://shop.example.com/MUG-STONEWARE" in text


@pytest.mark.parametrize("value", ["https://shop.example.com/products/{handle}/reviews", "shop.example.com/{sku}",
                                   "{product_url#reviews"])
def test_a_review_url_pattern_the_program_cannot_fill_is_refused(value: str):
    with pytest.raises(ConfigError) as refused:
        Settings({"LIFECYCLE_REVIEW_URL": value})[REVIEW_URL]
    assert str(refused.value).startswith(f"LIFECYCLE_REVIEW_URL={value!r} is invalid: ")


def test_review_url_patterns_that_work():
    for value in ("https://shop.example.com/products/{sku}/reviews", "{product_url}#reviews", "{product_url}"):
        assert Settings({"LIFECYCLE_REVIEW_URL": value})[REVIEW_URL] == value
