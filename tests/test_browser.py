"""A real browser on the unsubscribe page: headless Chromium opens the link, presses the button, and the
customer is suppressed. Uses Debian's chromium and chromium-driver (`.ci/run` installs them when it can)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browserkit import chromium, is_blank, needs_chromium
from shopkit import ShopBuilder
from sqlmodel import select
from webkit import KEY, serving, web_context

from runner.models import Customer, Suppression
from runner.store import Store
from runner.unsubscribe import sign

pytestmark = needs_chromium


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


def test_pressing_unsubscribe_in_chromium_suppresses_the_customer(tmp_path: Path, store: Store, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    customer_id = ShopBuilder(store).customer("ada@example.com")
    with serving(web_context(store)) as server:
        browser.get(f"{server.url}unsubscribe/{sign(KEY, customer_id, 'ada@example.com')}")
        assert browser.title == "Unsubscribe?"
        assert "ada@example.com" in browser.find_element(By.TAG_NAME, "main").text
        png = browser.get_screenshot_as_png()
        (tmp_path / "unsubscribe.png").write_bytes(png)
        assert not is_blank(png)

        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 15).until(expected_conditions.title_is("You're unsubscribed"))
        assert not is_blank(browser.get_screenshot_as_png())

    with store.session() as session:
        assert session.exec(select(Suppression.email, Suppression.reason)).all() == [
            ("ada@example.com", "unsubscribed")]
        assert session.get(Customer, customer_id).accepts_marketing is False  # type: ignore[union-attr]
