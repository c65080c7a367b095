"""What a person does on the pages, found by role and label as a person would."""

from __future__ import annotations

from typing import Any

from tests.web.live import Person


def sign_in(
    page: Any,
    person: Person,
    *,
    password: str | None = None,
    code: str | None = None,
    language: str = "nl",
) -> None:
    labels = {
        "nl": ("Gebruikersnaam", "Wachtwoord", "Code uit uw authenticator-app", "Aanmelden"),
        "en": ("User name", "Password", "Code from your authenticator app", "Sign in"),
    }[language]
    page.goto("/login")
    page.get_by_label(labels[0]).fill(person.name)
    page.get_by_label(labels[1], exact=True).fill(password or person.password)
    page.get_by_label(labels[2]).fill(code or person.code())
    page.get_by_role("button", name=labels[3]).click()


def find_person_in_audit_log(page: Any, subject: dict[str, str]) -> None:
    """The privacy officer's person filter on /audit: identifiers into the POST form."""
    page.goto("/audit")
    if not page.get_by_label("BSN", exact=True).is_visible():  # folded while a filter is on
        page.get_by_text("Zoeken op identificerende gegevens").click()
    labels = {
        "bsn": "BSN",
        "familyName": "Achternaam",
        "givenNames": "Voornamen",
        "dateOfBirth": "Geboortedatum",
    }
    for field, label in labels.items():
        if field in subject:
            page.get_by_label(label, exact=True).fill(subject[field])
    page.get_by_role("button", name="Regels over deze persoon tonen").click()
    page.wait_for_url("**/audit")


def verify_the_log(page: Any, timeout: float = 60.0) -> str:
    """Start a verification from /audit/verifications and refresh until it is done;
    returns the page's text."""
    import time

    page.goto("/audit/verifications")
    page.get_by_role("button", name="Het log nu controleren").click()
    page.wait_for_url("**/audit/verifications")
    deadline = time.monotonic() + timeout
    while "Er loopt een controle" in page.content() and time.monotonic() < deadline:
        time.sleep(0.3)
        page.get_by_role("link", name="Vernieuwen").first.click()
        page.wait_for_load_state()
    text: str = page.locator("main").inner_text()
    return text
