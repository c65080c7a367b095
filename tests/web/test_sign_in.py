"""Signing in, out and being timed out, in a real browser (Debian's Chromium)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tests.web.conftest import backend_url
from tests.web.flows import sign_in
from tests.web.live import WebGateway, web_gateway

FAILED = "Aanmelden is niet gelukt"


def actions(live: WebGateway, actor: str) -> list[tuple[str, str]]:
    return [(e["action"], e["outcome"]) for e in live.audit(actor)]


def test_first_sign_in_with_totp_replaces_the_one_time_password(
    page: Any, live: WebGateway
) -> None:
    person = live.person("coordinator", changed=False)
    sign_in(page, person)
    page.wait_for_url("**/login/password")
    assert page.locator("html").get_attribute("lang") == "nl"
    new = page.get_by_label("Nieuw wachtwoord")
    again = page.get_by_label("Herhaal het nieuwe wachtwoord")
    # too short: an error summary at the top links to the field
    new.fill("kort")
    again.fill("kort")
    page.get_by_role("button", name="Wachtwoord opslaan en verder").click()
    summary = page.get_by_role("alert")
    assert "minstens 12 tekens" in summary.inner_text()
    assert summary.get_by_role("link").get_attribute("href") == "#new_password"
    assert page.get_by_label("Nieuw wachtwoord").get_attribute("aria-invalid") == "true"
    # the one-time password itself is refused too
    page.get_by_label("Nieuw wachtwoord").fill(person.password)
    page.get_by_label("Herhaal het nieuwe wachtwoord").fill(person.password)
    page.get_by_role("button", name="Wachtwoord opslaan en verder").click()
    assert "ander wachtwoord" in page.get_by_role("alert").inner_text()
    page.get_by_label("Nieuw wachtwoord").fill("een-eigen-wachtwoord")
    page.get_by_label("Herhaal het nieuwe wachtwoord").fill("een-eigen-wachtwoord")
    page.get_by_role("button", name="Wachtwoord opslaan en verder").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_role("heading", level=1).inner_text() == f"Welkom, {person.name}"
    menu = page.get_by_role("navigation", name="Hoofdmenu")
    assert menu.get_by_role("link", name="Treffers").is_visible()
    assert menu.get_by_role("link", name="Auditlog").count() == 0
    done = actions(live, person.name)
    assert ("user.sign-in", "success") in done and ("user.password-change", "success") in done
    # the new password works with the next code; the one-time password no longer does
    page.get_by_role("button", name="Afmelden").click()
    page.wait_for_url("**/login")
    time.sleep(max(0.0, 30 - time.time() % 30) + 0.2)  # the code just used may not be used again
    person.password = "een-eigen-wachtwoord"
    sign_in(page, person)
    page.wait_for_url(re.compile(r"/$"))
    for entry in live.audit(person.name):
        assert "een-eigen-wachtwoord" not in json.dumps(entry)


def test_wrong_password_and_lockout_are_audited_and_look_alike(page: Any, live: WebGateway) -> None:
    person = live.person("coordinator")
    for _ in range(5):
        sign_in(page, person, password="not-my-password")
        assert FAILED in page.get_by_role("alert").inner_text()
    # locked: the right password and code get the very same answer
    sign_in(page, person)
    locked = page.get_by_role("alert").inner_text()
    sign_in(page, person, password="whatever")
    assert page.get_by_role("alert").inner_text() == locked
    page.goto("/login")
    page.get_by_label("Gebruikersnaam").fill("niet.bestaand")
    page.get_by_label("Wachtwoord", exact=True).fill("whatever")
    page.get_by_label("Code uit uw authenticator-app").fill("123456")
    page.get_by_role("button", name="Aanmelden").click()
    assert page.get_by_role("alert").inner_text() == locked
    assert "/login" in page.url
    done = actions(live, person.name)
    assert done.count(("user.sign-in", "denied")) == 7
    assert ("user.lockout", "success") in done
    entries = live.audit(person.name)
    reasons = [e["detail"].get("reason") for e in entries if e["action"] == "user.sign-in"]
    assert reasons[:5] == ["password"] * 5 and reasons[5] == "locked"
    assert all("not-my-password" not in json.dumps(e) for e in entries)


def test_a_post_without_the_csrf_token_is_refused_and_audited(page: Any, live: WebGateway) -> None:
    person = live.person("coordinator")
    sign_in(page, person)
    page.wait_for_url(re.compile(r"/$"))
    for form in ({}, {"csrf_token": "forged"}):
        response = page.request.post("/logout", form=form, max_redirects=0)
        assert response.status == 400
        assert response.headers["content-type"].startswith("text/html")
    # still signed in: the forged sign-out did nothing
    page.goto("/")
    assert page.get_by_role("button", name="Afmelden").is_visible()
    assert actions(live, person.name).count(("web.csrf-refused", "denied")) == 2
    # the API and OAuth endpoints take no CSRF token: they answer in their own terms
    token = page.request.post("/oauth/token", form={"grant_type": "client_credentials"})
    assert token.headers["content-type"].startswith("application/json")
    assert token.json()["error"] in {"invalid_client", "invalid_request"}


def test_sign_out_ends_the_session(page: Any, live: WebGateway) -> None:
    person = live.person("privacy-officer")
    sign_in(page, person)
    page.wait_for_url(re.compile(r"/$"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "ketenpoort_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Afmelden").click()
    page.wait_for_url("**/login")
    assert "U bent afgemeld" in page.get_by_role("status").inner_text()
    # the old cookie is worthless: the session is gone on the server
    page.context.add_cookies([cookie])
    page.goto("/")
    page.wait_for_url("**/login")
    assert ("user.sign-out", "success") in actions(live, person.name)


def test_a_role_without_access_gets_403_and_the_denial_is_audited(
    page: Any, live: WebGateway
) -> None:
    person = live.person("privacy-officer")
    sign_in(page, person)
    page.wait_for_url(re.compile(r"/$"))
    response = page.goto("/matches")
    assert response is not None and response.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "Geen toegang"
    denied = [e for e in live.audit(person.name) if e["outcome"] == "denied"]
    assert denied[-1]["action"] == "match.read"
    assert denied[-1]["policy"]["rule"].startswith("deny:")
    assert denied[-1]["resource"] == {"type": "page", "id": "/matches"}
    # a coordinator may
    page.get_by_role("button", name="Afmelden").click()
    coordinator = live.person("coordinator")
    sign_in(page, coordinator)
    page.wait_for_url(re.compile(r"/$"))
    assert page.goto("/matches").status == 200
    assert page.get_by_role("heading", level=1).inner_text() == "Treffers"


def test_pages_carry_the_csp_and_no_inline_script_or_style(page: Any, live: WebGateway) -> None:
    foreign: list[str] = []
    page.on(
        "request",
        lambda request: (
            foreign.append(request.url) if not request.url.startswith(live.base_url) else None
        ),
    )
    person = live.person("coordinator")
    seen: dict[str, tuple[dict[str, str], str]] = {}

    def visit(path: str) -> None:
        response = page.goto(path)
        seen[path] = (response.headers, response.text())

    visit("/login")
    sign_in(page, person)
    page.wait_for_url(re.compile(r"/$"))
    visit("/")
    visit("/matches")
    for path, (headers, html) in seen.items():
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp, path
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp, path
        assert "style-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert headers["cache-control"] == "no-store", path
        # script files of our own only (the session warning), nothing inline
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
        assert all('src="/static/' in attrs and not body for attrs, body in scripts), path
        assert " style=" not in html and "<style" not in html and " on" not in html, path
        assert '<html lang="nl">' in html, path
    assert foreign == []
    # the stylesheet loads (no CSP violation): the primary button is themed
    colour = page.evaluate(
        "getComputedStyle(document.querySelector('.utrecht-button--secondary-action')).color"
    )
    assert colour == "rgb(21, 66, 115)"


def test_english_by_accept_language_and_by_the_switch(browser: Any, live: WebGateway) -> None:
    context = browser.new_context(base_url=live.base_url, locale="en-GB")
    page = context.new_page()
    try:
        page.goto("/login")
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
        page.get_by_role("button", name="Nederlands").click()
        page.wait_for_url("**/login")
        assert page.locator("html").get_attribute("lang") == "nl"
        assert page.get_by_role("heading", level=1).inner_text() == "Aanmelden"
        page.get_by_role("button", name="English").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
        person = live.person("coordinator")
        sign_in(page, person, language="en")
        page.wait_for_url(re.compile(r"/$"))
        assert page.get_by_role("link", name="Skip to content").count() == 1
        assert page.get_by_role("navigation", name="Main menu").is_visible()
    finally:
        context.close()


def test_idle_timeout_ends_the_session(browser: Any, backend: str, tmp_path: Path) -> None:
    for url in backend_url(backend, tmp_path):
        with web_gateway(url, tmp_path / "gw", KETENPOORT_WEB_IDLE_TIMEOUT="2") as live:
            context = browser.new_context(base_url=live.base_url, locale="nl-NL")
            page = context.new_page()
            try:
                person = live.person("coordinator")
                sign_in(page, person)
                page.wait_for_url(re.compile(r"/$"))
                time.sleep(3)
                page.goto("/")
                page.wait_for_url("**/login")
                assert "Uw sessie is verlopen" in page.get_by_role("status").inner_text()
                entries = live.audit(person.name)
                assert entries[-1]["action"] == "user.session-timeout"
                assert entries[-1]["detail"] == {"timeout": "idle"}
            finally:
                context.close()


def test_the_page_warns_before_the_idle_timeout_and_the_session_can_be_kept(
    browser: Any, tmp_path: Path
) -> None:
    """WCAG 2.2.1: a warning before the time-out, and one simple action to stay."""
    url = next(iter(backend_url("sqlite", tmp_path)))
    with web_gateway(url, tmp_path / "gw", KETENPOORT_WEB_IDLE_TIMEOUT="8") as live:
        context = browser.new_context(base_url=live.base_url, locale="nl-NL")
        page = context.new_page()
        try:
            sign_in(page, live.person("coordinator"))
            page.wait_for_url(re.compile(r"/$"))
            warning = page.get_by_role("alert")
            assert warning.count() == 0  # hidden until the last 4 s (half the idle time)
            warning.wait_for(state="visible", timeout=9000)
            assert "Uw sessie eindigt over 1 minuut" in warning.inner_text()
            warning.get_by_role("button", name="Aangemeld blijven").click()
            warning.wait_for(state="hidden")
            time.sleep(5)  # past the first idle limit, not past the one the click set
            page.goto("/matches")
            assert page.url.endswith("/matches")
            # working in a page counts as activity (here every 4 s, half the idle time)
            page.goto("/figures")
            for turn in range(7):
                page.get_by_label("kwartaal" if turn % 2 else "jaar").check()
                time.sleep(2)
            assert page.get_by_role("alert").count() == 0
            page.goto("/matches")
            assert page.url.endswith("/matches")
            # left alone, the page says the session has ended, and it has
            ended = page.get_by_text("Uw sessie is beëindigd")
            ended.wait_for(state="visible", timeout=10000)
            assert page.get_by_role("button", name="Aangemeld blijven").count() == 0
            page.goto("/")
            page.wait_for_url("**/login")
            # the keep-alive address answers only a signed-in person with a CSRF token
            refused = page.request.post(f"{live.base_url}/session")
            assert refused.status in {400, 401}
        finally:
            context.close()
