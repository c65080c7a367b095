"""`make screenshots`: PNGs of the web pages (Dutch, 1280 px wide) for the README.

Builds a throw-away demo instance (partners, signals, matches) on a free port, signs in
as its coordinator, privacy officer and the school's professional in Debian's Chromium
and saves each page under the folder given (docs/screenshots/).
"""

from __future__ import annotations

import re
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from gateway.actors import Actor, cli_actor
from gateway.app import create_app
from gateway.db import Database
from gateway.demo.people import Person as DemoPerson
from gateway.demo.people import people
from gateway.demo.run import DemoInstance, build, client_for, run_scenario, start_server
from gateway.keys import KeyStore, load_master_key
from gateway.services import close_app
from gateway.users.service import add_user
from tests.web.flows import find_person_in_audit_log, sign_in, verify_the_log
from tests.web.live import CHROMIUM, CHROMIUM_ARGS, Person


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _newcomer(instance: DemoInstance) -> Person:
    """A coordinator who has not yet replaced the one-time password."""
    database = Database(instance.settings.database_url)
    keys = KeyStore(
        instance.settings.keys_dir,
        load_master_key(instance.settings.keys_dir, instance.settings.master_key, create=False),
    )
    try:
        with database.transaction() as session:
            user = add_user(session, keys, name="s.de.boer", role="coordinator", actor=cli_actor())
    finally:
        database.dispose()
    return Person(user.name, user.role, user.one_time_password, user.totp_secret)


def _perpetrator_case(instance: DemoInstance, coordinator: str) -> tuple[str, str]:
    """A case of the demo's signals about a possible perpetrator (four eyes to read)."""
    from sqlalchemy import select

    from gateway.cases.service import NewCase
    from gateway.signals.models import SignalRow

    app = create_app(settings=instance.settings)
    svc = app.extensions["ketenpoort"]
    actor = Actor(type="user", id=coordinator, role="coordinator", organisation="meldpunt")
    try:
        with svc.db.transaction() as session:
            signal_ids = tuple(
                session.execute(
                    select(SignalRow.id)
                    .where(
                        SignalRow.category == "possible-perpetrator", SignalRow.status == "active"
                    )
                    .order_by(SignalRow.pk)
                ).scalars()
            )
            case = svc.cases.cases.create(
                session, actor, NewCase("Ronselen bij station Hengelo", signal_ids=signal_ids)
            )
    finally:
        close_app(app)
    return case.id, signal_ids[0]


def _four_eyes_pages(context: Any, shot: Any, instance: DemoInstance, a: Person, b: Person) -> None:
    """Reading a signal with a purpose; the approvals page; the read once approved.
    (`b` signed in before: the next TOTP code, since a code counts once.)"""
    case_id, signal_id = _perpetrator_case(instance, a.name)
    payload = f"/cases/{case_id}/signals/{signal_id}/payload"
    purpose = "Voorbereiden van het casusoverleg"
    first, second = context(), context()
    try:
        page_a, page_b = first.new_page(), second.new_page()
        sign_in(page_a, a)
        page_a.wait_for_url(re.compile(r"/$"))
        page_a.goto(payload)
        shot(page_a, "payload")
        page_a.get_by_label(purpose).check()
        page_a.get_by_role("button", name="Goedkeuring aanvragen").click()
        page_a.wait_for_url("**/payload")
        sign_in(page_b, b, code=b.code(1))
        page_b.wait_for_url(re.compile(r"/$"))
        page_b.goto("/approvals")
        shot(page_b, "approvals")
        page_b.get_by_role("button", name="Goedkeuren").first.click()
        page_b.wait_for_url("**/approvals")
        page_a.goto(payload)
        page_a.get_by_label(purpose).check()
        page_a.get_by_role("button", name="Melding inzien").click()
        page_a.locator("#payload-content").wait_for()
        shot(page_a, "payload-read")
    finally:
        first.close()
        second.close()


def probe(instance: DemoInstance, person: DemoPerson) -> None:
    """A partner probing whether a person is known: five submissions, each withdrawn."""
    partner = client_for(instance, "gemeente-enschede")
    for n in range(5):
        created = partner.submit_signal(
            f"GEME-2026-PROBE-{n}", "concern", person.subject(), {"summary": "Proef."}
        )
        partner.withdraw(created["id"])


def subject_report(page: Any, person: DemoPerson) -> None:
    page.goto("/subject-report")
    page.get_by_label("Burgerservicenummer (BSN)").fill(person.bsn)
    page.get_by_label("Achternaam").fill(person.family_name)
    page.get_by_label("Geboortedatum").fill(person.date_of_birth)
    page.get_by_role("button", name="Rapport tonen").click()
    page.get_by_role("heading", name="Rapport", exact=True).wait_for()


def main(target: Path) -> None:
    """The demo instance (its partners, signals and matches), then the pages over it."""
    target.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        instance = build(Path(tmp) / "demo", "127.0.0.1", port)
        server = start_server(instance, "127.0.0.1", port)
        try:
            crowd = people(30)
            summary = run_scenario(instance, crowd)
            probe(instance, crowd[7])
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            people_by_role = {u["role"]: u for u in instance.users}

            def person(role: str) -> Person:
                u = people_by_role[role]
                return Person(u["name"], role, u["password"], u["totpSecret"])

            def context(locale: str = "nl-NL") -> Any:
                return browser.new_context(
                    base_url=instance.issuer, locale=locale, viewport={"width": 1280, "height": 800}
                )

            def shot(page: Any, name: str) -> None:
                path = target / f"{name}.png"
                page.screenshot(path=str(path), full_page=True)
                print(path)

            visitor = context()
            page = visitor.new_page()
            page.goto("/login")
            shot(page, "login")
            newcomer = _newcomer(instance)
            sign_in(page, newcomer, password="fout-wachtwoord")
            shot(page, "login-failed")
            visitor.close()

            first = context()
            page = first.new_page()
            sign_in(page, newcomer)
            page.wait_for_url("**/login/password")
            page.get_by_label("Nieuw wachtwoord").fill("kort")
            page.get_by_label("Herhaal het nieuwe wachtwoord").fill("kort")
            page.get_by_role("button", name="Wachtwoord opslaan en verder").click()
            shot(page, "new-password")
            first.close()

            coordinator = context()
            page = coordinator.new_page()
            sign_in(page, person("coordinator"))
            page.wait_for_url(re.compile(r"/$"))
            shot(page, "start-coordinator")
            page.goto("/matches")
            shot(page, "matches")
            # the demo's possible match (the school knew the pupil's name only)
            possible = page.get_by_role("cell", name="mogelijk", exact=True)
            page.get_by_role("row").filter(has=possible).get_by_role("link").first.click()
            page.wait_for_url("**/matches/*")
            shot(page, "match")
            page.get_by_label("Titel van de casus").fill("Meisje ROC Hengelo")
            page.get_by_role("button", name="Casus aanmaken").click()
            page.wait_for_url("**/cases/*")
            page.get_by_label("Nieuwe notitie").fill("Gesprek met de mentor gepland.")
            page.get_by_role("button", name="Notitie toevoegen").click()
            shot(page, "case")
            page.goto("/cases")
            shot(page, "cases")
            page.goto("/figures")
            shot(page, "figures")
            coordinator.close()

            officer = context()
            page = officer.new_page()
            sign_in(page, person("privacy-officer"))
            page.wait_for_url(re.compile(r"/$"))
            shot(page, "start-privacy-officer")
            page.goto("/audit")
            shot(page, "audit")
            find_person_in_audit_log(page, people(30)[0].subject())
            shot(page, "audit-person")
            page.get_by_role("table").get_by_role("link").first.click()
            page.wait_for_url(re.compile(r"/audit/\d+$"))
            shot(page, "audit-entry")
            verify_the_log(page)
            shot(page, "audit-verifications")
            page.goto("/figures?by=quarter")
            shot(page, "figures-privacy-officer")
            subject_report(page, crowd[0])
            shot(page, "subject-report")
            page.goto("/policy")
            shot(page, "policy")
            page.goto("/alerts")
            page.get_by_role("button", name="Regels nu uitvoeren").click()
            shot(page, "alerts")
            page.goto("/matches")
            shot(page, "forbidden")
            page.keyboard.press("Tab")
            shot(page, "skip-link-focus")
            officer.close()

            school = context()
            page = school.new_page()
            sign_in(page, person("professional"))
            page.wait_for_url(re.compile(r"/$"))
            page.goto("/intake")
            walk_in = summary["policeOnlyPerson"]
            page.get_by_label("BSN (burgerservicenummer)").fill(
                walk_in["bsn"][:8] + str((int(walk_in["bsn"][8]) + 1) % 10)
            )
            page.get_by_label("Achternaam").fill(walk_in["familyName"])
            page.get_by_role("button", name="Signaal naar het meldpunt sturen").click()
            shot(page, "intake-errors")
            page.get_by_label("BSN (burgerservicenummer)").fill(walk_in["bsn"])
            page.get_by_label("Voornamen").fill(walk_in["givenNames"])
            page.get_by_label("Geboortedatum").fill(walk_in["dateOfBirth"])
            page.get_by_label("Zorgsignaal").check()
            page.get_by_label("Melding", exact=True).fill(
                "Ze verzuimt veel en wordt na school opgehaald door een oudere man."
            )
            page.get_by_role("button", name="Signaal naar het meldpunt sturen").click()
            page.wait_for_url("**/intake")
            shot(page, "intake")
            school.close()
            coordinators = [
                Person(u["name"], u["role"], u["password"], u["totpSecret"])
                for u in instance.users
                if u["role"] == "coordinator"
            ]
            _four_eyes_pages(context, shot, instance, coordinators[0], person("coordinator"))

            english = context("en-GB")
            page = english.new_page()
            page.goto("/login")
            shot(page, "login-en")
            english.close()
            browser.close()
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    # a SIGTERM (timeout, Ctrl-C in make) still runs the `finally` that stops the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
