"""A real browser on the unsubscribe page: headless Chromium opens the link, presses the button, and the
customer is suppressed. Uses Debian's chromium and chromium-driver (`.ci/run` installs them when it can)."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from shopkit import ShopBuilder
from sqlmodel import select
from webkit import KEY, serving, web_context

from runner.models import Customer, Suppression
from runner.store import Store
from runner.unsubscribe import sign

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): "
           "apt-get install chromium chromium-driver, or run .ci/run as root")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=800,600",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def is_blank(png: bytes) -> bool:
    """True when every pixel of the screenshot has the same colour."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        low, high = image.convert("L").getextrema()
    return low == high


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
