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
