"""A category's `linkage_keys` decide which key families a signal is keyed by: only
those are derived, evaluated (the OPRF is a third of a signal's cost) and stored."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from gateway.config import Settings
from gateway.crypto import oprf
from gateway.pseudonyms import Pseudonymiser
from gateway.signals.models import SignalPseudonymRow
from tests.signals.test_api import SUBJECT, body

ROOT = Path(__file__).resolve().parents[2]
FEW = ["bsn", "name_dob", "del_dob"]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The default policy with `possible-victim` keyed by three families only."""
    text = (ROOT / "policies" / "twente.yaml").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.lstrip().startswith("linkage_keys:"))
    indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
    lines[first] = f"{indent}linkage_keys: [{', '.join(FEW)}]\n"
    policy = tmp_path / "policy.yaml"
    policy.write_text("".join(lines), encoding="utf-8")
    return replace(settings, policy=policy)


def test_only_the_categorys_families_are_stored(app: Flask, police: dict[str, Any]) -> None:
    client = app.test_client()
    response = client.post("/v1/signals", json=body(client, police), headers=police)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert sorted(response.get_json()["linkageKeys"]) == sorted(FEW)
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        stored = set(session.execute(select(SignalPseudonymRow.family)).scalars())
    assert stored == set(FEW)


def test_a_subject_without_any_of_them_is_refused(app: Flask, police: dict[str, Any]) -> None:
    client = app.test_client()
    subject = {"familyName": SUBJECT["familyName"], "givenNames": "Anna"}  # only `names`
    sent = body(client, police)
    sent["subject"] = subject
    response = client.post("/v1/signals", json=sent, headers=police)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["pointer"] == "/subject"


def test_the_pseudonymiser_evaluates_only_the_families_asked_for() -> None:
    p = Pseudonymiser(oprf.random_scalar(), kid="k")
    every = p.linkage_pseudonyms(SUBJECT)
    few = p.linkage_pseudonyms(SUBJECT, families=FEW)
    assert set(few) == set(FEW) < set(every)
    assert all(few[f] == every[f] for f in FEW)
