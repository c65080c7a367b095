"""Pseudonym key rotation: every stored element moved to the new key, in batches,
resumable after a crash, with matching correct (held, never wrong) while it runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from gateway.actors import cli_actor
from gateway.audit.models import AuditEntryRow
from gateway.keys import KeyPurpose
from gateway.lifecycle.pseudonym_rotation import rotate_pseudonym_key
from gateway.pseudonyms import Pseudonymiser
from gateway.signals.models import PseudonymRotationRow, SignalPseudonymRow
from tests.lifecycle.test_rotation import _cli, _rotate
from tests.matches_support import MatchDesk
from tests.signals.test_api import BSN, SUBJECT


def _rows(app: Flask) -> list[tuple[str, bytes, str]]:
    with app.extensions["ketenpoort"].db.session() as session:
        rows = session.execute(
            select(SignalPseudonymRow.family, SignalPseudonymRow.element, SignalPseudonymRow.key_id)
        ).all()
        return [(f, bytes(e), k) for f, e, k in rows]


def _same_person(desk: MatchDesk, reference: str) -> str:
    """A care signal about the police signal's person (same BSN, another spelling)."""
    return desk.submit(
        desk.care, {**SUBJECT, "bsn": BSN, "familyName": "Berg"}, reference, "concern"
    )


def _key_rotations(app: Flask) -> list[dict[str, Any]]:
    with app.extensions["ketenpoort"].db.session() as session:
        rows = session.execute(select(AuditEntryRow).where(AuditEntryRow.action == "key.rotate"))
        return [json.loads(r.data)["detail"] for r in rows.scalars()]


def test_signals_submitted_during_the_rotation_match_the_old_ones(
    app: Flask, desk: MatchDesk
) -> None:
    svc = app.extensions["ketenpoort"]
    old = svc.keys.active(KeyPurpose.PSEUDONYM).kid
    first = desk.submit(desk.police)
    assert desk.matches() == []
    stored = _rows(app)
    assert len(stored) >= 3 and {k for _, _, k in stored} == {old}
    during: list[str] = []
    seen: dict[str, Any] = {}

    def submit_between(moved: int) -> None:
        # The new key is in use at once: the blind clients' key, and new pseudonyms.
        seen.setdefault("oprf", desk.client.get("/v1/oprf/key").get_json()["keyId"])
        during.append(_same_person(desk, f"JH-{moved}"))
        assert desk.matches() == []  # matching waits; it never misses

    result = rotate_pseudonym_key(
        svc.db, svc.keys, actor=cli_actor(), batch_size=1, after_batch=submit_between
    )
    new = result["kid"]
    assert new != old and result["retired"] == [old] and not result["resumed"]
    assert seen["oprf"] == new and svc.keys.active(KeyPurpose.PSEUDONYM).kid == new
    assert len(during) == len(stored)  # one batch per row
    # Every row is under the new key, and equals a fresh pseudonym under it.
    rows = _rows(app)
    assert {k for _, _, k in rows} == {new}
    fresh = Pseudonymiser.from_key_store(svc.keys, new).linkage_pseudonyms(SUBJECT)
    # (the care signals name the same person: the same pseudonyms)
    assert {(f, e) for f, e, _ in rows} <= {(f, e) for f, vs in fresh.items() for e in vs}
    # Matching then runs: one match of the old signal and every new one.
    (match,) = desk.matches()
    assert {s["id"] for s in match["signals"]} == {first, *during}
    details = _key_rotations(app)
    assert [d["phase"] for d in details] == ["started", "finished"]
    assert details[1]["rows"] == len(stored) and details[0]["retired"] == [old]
    # A second rotation moves everything again, and matching still holds.
    again = _rotate(app, "pseudonym")
    assert again["kid"] != new and again["rows"] == len(rows)
    later = _same_person(desk, "JH-after")
    (match,) = desk.matches()
    assert later in {s["id"] for s in match["signals"]}


def test_a_crashed_rotation_resumes_and_matching_waits_for_it(app: Flask, desk: MatchDesk) -> None:
    svc = app.extensions["ketenpoort"]
    old = svc.keys.active(KeyPurpose.PSEUDONYM).kid
    first = desk.submit(desk.police)
    count = len(_rows(app))

    def crash(moved: int) -> None:
        if moved >= 2:
            raise RuntimeError("the operator's terminal closed")

    with pytest.raises(RuntimeError):
        rotate_pseudonym_key(svc.db, svc.keys, actor=cli_actor(), batch_size=2, after_batch=crash)
    new = svc.keys.active(KeyPurpose.PSEUDONYM).kid
    assert new != old
    assert desk.client.get("/v1/oprf/key").get_json()["keyId"] == new
    kids = [k for _, _, k in _rows(app)]
    assert kids.count(new) == 2 and kids.count(old) == count - 2  # half-way
    second = _same_person(desk, "JH-1")  # accepted during the interruption
    assert desk.matches() == []
    resumed = _rotate(app, "pseudonym")  # the same command resumes
    assert resumed["kid"] == new and resumed["resumed"] and resumed["rows"] == count
    assert {k for _, _, k in _rows(app)} == {new}
    with svc.db.session() as session:
        (rotation,) = session.execute(select(PseudonymRotationRow)).scalars()
        assert rotation.finished_at is not None and rotation.moved == count
    (match,) = desk.matches()
    assert {s["id"] for s in match["signals"]} == {first, second}
    assert _cli(app, "audit", "verify", "--no-progress", "--json").exit_code == 0
