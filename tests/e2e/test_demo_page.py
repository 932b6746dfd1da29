"""The demo page in a real browser: Playwright drives Debian's Chromium (no browser download)
against a real server and its real redis-server. It picks a user, sees titled recommendations
with their intents and the stage timings, adds an event and sees the list change. The page's
screenshot is written to INTENTREC_TEST_ARTIFACTS (default: the test's tmp folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

USER = "demo-user"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("INTENTREC_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here: apt-get install chromium")
        pytest.skip("no Chromium (apt-get install chromium); CI installs it")
    return found


def test_the_demo_page_recommends_explains_and_follows_a_new_event(
    start_server, catalog, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = _chromium()
    history = [catalog.external_ids[i] for i in (50, 100, 172, 174, 181)]
    titles = set(catalog.titles[1:])
    with start_server() as live:
        with live.client() as client:
            events = [{"user_id": USER, "item_id": item} for item in history]
            assert client.post("/events", json={"events": events}).status_code == 200
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"{live.url}/demo")
                page.get_by_role("button", name=USER).click()  # the picker lists stored users
                rows = page.locator("#recs tbody tr")
                expect(rows).to_have_count(10)
                expect(page.locator("#history li")).to_have_count(len(history))
                shown = rows.locator("td.title").all_inner_texts()
                assert set(shown) <= titles and len(set(shown)) == 10
                assert page.locator("#timings div").count() >= 2  # encode, retrieve, ...
                first = rows.first.get_attribute("data-item-id")
                assert first not in history
                rows.first.locator("button.add-event").click()
                expect(page.locator("#history li")).to_have_count(len(history) + 1)
                expect(page.locator("#history li").first).to_have_attribute("data-item-id", first)
                expect(rows.first).not_to_have_attribute("data-item-id", first)
                assert page.locator("#status").inner_text() == ""
                assert not errors, errors
                artifacts = Path(os.environ.get("INTENTREC_TEST_ARTIFACTS", tmp_path))
                artifacts.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(artifacts / "demo.png"), full_page=True)
            finally:
                browser.close()
