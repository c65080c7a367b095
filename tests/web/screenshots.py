"""`make screenshots`: PNGs of the web pages (Dutch, 1280 px wide) for the README.

Runs a throw-away gateway on SQLite, signs in as a coordinator and a privacy officer in
Debian's Chromium and saves each page under the folder given (docs/screenshots/).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.web.flows import sign_in
from tests.web.live import CHROMIUM, CHROMIUM_ARGS, web_gateway


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        directory = Path(tmp)
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        with web_gateway(f"sqlite:///{directory / 'ketenpoort.db'}", directory) as live:

            def shot(page: object, name: str) -> None:
                path = target / f"{name}.png"
                page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
                print(path)

            viewport = {"width": 1280, "height": 800}
            context = browser.new_context(base_url=live.base_url, locale="nl-NL", viewport=viewport)
            page = context.new_page()
            page.goto("/login")
            shot(page, "login")
            newcomer = live.person("coordinator", changed=False)
            sign_in(page, newcomer, password="fout-wachtwoord")
            shot(page, "login-failed")
            context.close()

            context = browser.new_context(base_url=live.base_url, locale="nl-NL", viewport=viewport)
            page = context.new_page()
            sign_in(page, newcomer)
            page.wait_for_url("**/login/password")
            page.get_by_label("Nieuw wachtwoord").fill("kort")
            page.get_by_label("Herhaal het nieuwe wachtwoord").fill("kort")
            page.get_by_role("button", name="Wachtwoord opslaan en verder").click()
            shot(page, "new-password")
            page.get_by_label("Nieuw wachtwoord").fill("een-eigen-wachtwoord")
            page.get_by_label("Herhaal het nieuwe wachtwoord").fill("een-eigen-wachtwoord")
            page.get_by_role("button", name="Wachtwoord opslaan en verder").click()
            page.wait_for_url(re.compile(r"/$"))
            shot(page, "start-coordinator")
            page.goto("/matches")
            shot(page, "matches")
            context.close()

            context = browser.new_context(base_url=live.base_url, locale="nl-NL", viewport=viewport)
            page = context.new_page()
            sign_in(page, live.person("privacy-officer"))
            page.wait_for_url(re.compile(r"/$"))
            shot(page, "start-privacy-officer")
            page.goto("/matches")
            shot(page, "forbidden")
            page.keyboard.press("Tab")
            shot(page, "skip-link-focus")
            context.close()

            context = browser.new_context(base_url=live.base_url, locale="en-GB", viewport=viewport)
            page = context.new_page()
            page.goto("/login")
            shot(page, "login-en")
            context.close()
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
