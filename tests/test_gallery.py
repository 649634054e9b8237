"""The preview gallery: a static site a marketer can browse, share and open on a phone."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from browserkit import chromium, console_errors, is_blank, needs_chromium
from shopkit import ROOT, utc

from runner.gallery import MANIFEST, write_gallery

AT = dt.datetime(2026, 11, 23, 12)


def _gallery(app, campaigns_dir: Path, out: Path, *ids: str) -> list[dict]:
    for name in ids:
        shutil.copy(ROOT / "campaigns" / f"{name}.yaml", campaigns_dir / f"{name}.yaml")
    return write_gallery(app.preview(AT, app.campaigns(AT)), out, AT)


def test_each_email_gets_a_page_with_frames_text_and_headers(app, shop, campaigns_dir, tmp_path):
    ada = shop.customer("ada@example.com", first_name="Ada")
    shop.order(ada, utc(2026, 11, 23, 9))
    bob = shop.customer("bob@example.com", consent=False)
    shop.order(bob, utc(2026, 11, 23, 9))
    entries = _gallery(app, campaigns_dir, tmp_path / "pv", "thank-you")
    assert {(e["email"], e["status"]) for e in entries} == {("ada@example.com", "send"),
                                                            ("bob@example.com", "no_consent")}
    (sent,) = [e for e in entries if e["file"]]
    page = (tmp_path / "pv" / sent["file"]).read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert page.count("<iframe") == 2 and 'width="375"' in page and "sandbox" in page
    assert "List-Unsubscribe-Post" in page and "List-Unsubscribe=One-Click" in page
    assert "ada@example.com" in page and sent["subject"] in page
    index = (tmp_path / "pv" / "index.html").read_text()
    assert 'data-status="no_consent"' in index and '<option>thank-you</option>' in index
    assert '<meta name="viewport"' in index


def test_content_is_escaped_in_the_pages(app, shop, campaigns_dir, tmp_path):
    eve = shop.customer("eve@example.com", first_name='<script>alert("x")</script>')
    shop.order(eve, utc(2026, 11, 23, 9))
    entries = _gallery(app, campaigns_dir, tmp_path / "pv", "thank-you")
    page = (tmp_path / "pv" / entries[0]["file"]).read_text()
    assert "<script>alert" not in page.split("<script>")[0]  # the email's HTML sits escaped in srcdoc
    assert 'srcdoc="' in page and "&lt;" in page


def test_a_new_preview_removes_only_what_the_last_one_wrote(app, shop, campaigns_dir, tmp_path):
    out = tmp_path / "pv"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 23, 9))
    first = _gallery(app, campaigns_dir, out, "thank-you")
    old_page = out / first[0]["file"]
    assert old_page.is_file() and json.loads((out / MANIFEST).read_text())
    (campaigns_dir / "thank-you.yaml").unlink()
    assert _gallery(app, campaigns_dir, out, "winback") == []
    assert not old_page.exists() and not old_page.parent.exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "index.html").is_file()


def test_progress_is_reported_per_occurrence(app, shop, campaigns_dir, tmp_path):
    for n in range(3):
        shop.order(shop.customer(f"c{n}@example.com"), utc(2026, 11, 23, 9))
    shutil.copy(ROOT / "campaigns" / "thank-you.yaml", campaigns_dir)
    seen: list[int] = []
    write_gallery(app.preview(AT, app.campaigns(AT)), tmp_path / "pv", AT, progress=seen.append)
    assert seen == [1, 2, 3]


@needs_chromium
def test_chromium_shows_the_index_and_an_email_page_without_errors(app, shop, campaigns_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name in ("ada", "bob"):
        shop.order(shop.customer(f"{name}@example.com", consent=name == "ada"), utc(2026, 11, 23, 9))
    entries = _gallery(app, campaigns_dir, tmp_path / "pv", "thank-you")
    with chromium(tmp_path / "profile", width=390, height=900) as browser:  # a phone's width
        browser.get((tmp_path / "pv" / "index.html").as_uri())
        assert browser.title.startswith("Preview at")
        Select(browser.find_element(By.ID, "status")).select_by_visible_text("no_consent")
        visible = [row for row in browser.find_elements(By.CSS_SELECTOR, "#occurrences tbody tr") if row.is_displayed()]
        assert [row.get_attribute("data-status") for row in visible] == ["no_consent"]
        assert not is_blank(browser.get_screenshot_as_png())
        assert console_errors(browser) == []
        (sent,) = [e for e in entries if e["file"]]
        browser.get((tmp_path / "pv" / sent["file"]).as_uri())
        assert browser.title == sent["subject"]
        frames = browser.find_elements(By.TAG_NAME, "iframe")
        assert [frame.get_attribute("width") for frame in frames] == ["700", "375"]
        browser.switch_to.frame(frames[1])
        assert "Ada" in browser.find_element(By.TAG_NAME, "body").text
        browser.switch_to.default_content()
        png = browser.get_screenshot_as_png()
        (tmp_path / "email.png").write_bytes(png)
        assert not is_blank(png)
        assert console_errors(browser) == []
