"""A real browser on the pages behind email links: headless Chromium opens the unsubscribe link, presses
the button, and the customer is suppressed; it follows a score link at a phone's width, and the score is
recorded. Uses Debian's chromium and chromium-driver (`.ci/run` installs them when it can)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browserkit import chromium, console_errors, is_blank, needs_chromium
from shopkit import ShopBuilder
from sqlmodel import select
from webkit import KEY, serving, web_context

from runner.links.nps import score_token
from runner.links.unsubscribe import sign
from runner.models import Customer, NpsResponse, Send, Suppression
from runner.store import Store

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


def test_a_score_link_in_chromium_at_a_phones_width_records_the_score_and_a_tap_changes_it(
        tmp_path: Path, store: Store) -> None:
    import datetime as dt

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    customer_id = ShopBuilder(store).customer("ada@example.com")
    sent = dt.datetime(2026, 11, 20)
    with store.session() as session:
        send = Send(campaign_id="review-request", occurrence_key="order:1", customer_id=customer_id, due_at=sent,
                    status="sent", created_at=sent, updated_at=sent, sent_at=sent)
        session.add(send)
        session.commit()
    with serving(web_context(store)) as server, chromium(tmp_path / "profile", width=390, height=844) as browser:
        browser.get(f"{server.url}nps/{score_token(KEY, send.id, 6)}")  # type: ignore[arg-type]
        assert browser.title == "Thank you"
        assert "6 out of 10" in browser.find_element(By.TAG_NAME, "main").text
        # no sideways scrolling at a phone's width
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        png = browser.get_screenshot_as_png()
        (tmp_path / "nps.png").write_bytes(png)
        assert not is_blank(png)
        assert console_errors(browser) == []

        browser.find_element(By.LINK_TEXT, "9").click()  # a mis-tap fixed on the page itself
        WebDriverWait(browser, 15).until(lambda b: "9 out of 10" in b.find_element(By.TAG_NAME, "main").text)
        assert expected_conditions.title_is("Thank you")(browser)
        assert console_errors(browser) == []

    with store.session() as session:
        assert session.exec(select(NpsResponse.send_id, NpsResponse.score)).all() == [(send.id, 9)]
