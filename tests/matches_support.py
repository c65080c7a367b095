"""Signals about one person from two partners, and the match the report desk then sees.

Shared by the matching API, the match pages and the pseudonym rotation tests (the
`desk` fixture in tests/conftest.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient

from tests.signals.test_api import body

ANNA = {
    "familyName": "van den Berg",
    "givenNames": "Anna Maria",
    "dateOfBirth": "2010-04-07",
}


@dataclass(frozen=True)
class MatchDesk:
    """Two partners that report (police, care) and the report desk that reads matches."""

    client: FlaskClient
    police: dict[str, str]
    care: dict[str, str]
    meldpunt: dict[str, str]

    def submit(
        self,
        headers: dict[str, str],
        subject: dict[str, Any] | None = None,
        reference: str = "BVH-2026-00123",
        category: str = "possible-victim",
    ) -> str:
        """A signal by the partner with `headers` (the default test subject unless named)."""
        sent = body(self.client, headers, reference, category)
        if subject is not None:
            sent["subject"] = subject
        response = self.client.post("/v1/signals", json=sent, headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        return str(response.get_json()["id"])

    def matches(self) -> list[dict[str, Any]]:
        """The report desk's matches (the API read also drains the matching outbox)."""
        response = self.client.get("/v1/matches", headers=self.meldpunt)
        assert response.status_code == 200, response.get_data(as_text=True)
        items: list[dict[str, Any]] = response.get_json()["items"]
        return items

    def two_signals(
        self, subject: dict[str, Any] = ANNA, other: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], str, str]:
        """The police and care report `subject` (care as `other`, if given): their one match."""
        first = self.submit(self.police, subject)
        second = self.submit(self.care, subject if other is None else other)
        (match,) = self.matches()
        return match, first, second
