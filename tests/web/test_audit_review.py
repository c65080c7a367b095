"""The privacy officer's audit pages with Flask's test client: filters, paging, the
subject filter by POST, exports, entry proofs, verification runs and role separation."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from gateway.app import create_app
from gateway.audit.models import AuditEntryRow, AuditVerificationRow
from gateway.audit.runs import check_record, record_text
from gateway.audit.sequencer import verifier_keys
from gateway.config import Settings
from gateway.services import close_app, services_of
from gateway.users.models import UserRow
from tests.signals.test_api import BSN, SUBJECT, body

OFFICER = "p.visser"
COORDINATOR = "c.jansen"


def csrf_token(client: FlaskClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert found, path
    return found.group(1)


def signed_in(app: Flask, name: str, role: str) -> FlaskClient:
    from gateway.actors import cli_actor
    from gateway.users.service import add_user

    svc = services_of(app)
    with svc.db.transaction() as session:
        created = add_user(session, svc.keys, name=name, role=role, actor=cli_actor())
    client = app.test_client()
    client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client, "/login"),
            "username": name,
            "password": created.one_time_password,
            "otp": pyotp.TOTP(created.totp_secret).now(),
        },
    )
    new = "een-eigen-wachtwoord"
    response = client.post(
        "/login/password",
        data={
            "csrf_token": csrf_token(client, "/login/password"),
            "new_password": new,
            "confirm_password": new,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def html(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


def indices(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'href="/audit/(\d+)"', page)]


@pytest.fixture
def world(app: Flask, client: FlaskClient, token_headers: Any) -> dict[str, Any]:
    """Two signals about the demo person, one about someone else, and an officer."""
    police, care = token_headers("police"), token_headers("care")
    first = client.post("/v1/signals", json=body(client, police), headers=police).get_json()
    second = client.post(
        "/v1/signals", json=body(client, care, "JH-9", "concern"), headers=care
    ).get_json()
    other = body(client, police, "BVH-2", bsn="123456782", familyName="Jansen")
    third = client.post("/v1/signals", json=other, headers=police).get_json()
    return {
        "officer": signed_in(app, OFFICER, "privacy-officer"),
        "signals": (first["id"], second["id"]),
        "other": third["id"],
    }


def test_timeline_newest_first_with_filters_and_keyset_paging(
    app: Flask, world: dict[str, Any]
) -> None:
    officer: FlaskClient = world["officer"]
    response = officer.get("/audit")
    assert response.status_code == 200, html(response)
    assert response.headers["Cache-Control"] == "no-store"
    page = html(response)
    shown = indices(page)
    assert shown == sorted(shown, reverse=True) and len(shown) > 5
    # a filter by action and organisation
    creates = html(officer.get("/audit?action=signal.create&organisation=police"))
    rows = indices(creates)
    assert len(rows) == 2
    for index in rows:
        detail = html(officer.get(f"/audit/{index}"))
        assert "signal.create" in detail and "police" in detail
    # outcome, policy rule and purpose (indexed columns filled by the writer)
    with services_of(app).db.session() as session:
        rule = session.scalars(
            select(AuditEntryRow.policy_rule).where(AuditEntryRow.action == "signal.create")
        ).first()
    assert rule
    assert set(indices(html(officer.get(f"/audit?rule={rule}")))) >= set(rows)
    assert indices(html(officer.get("/audit?purpose=nothing-like-this"))) == []
    assert indices(html(officer.get("/audit?outcome=denied&action=signal.create"))) == []
    # a period: today has everything, a day long ago nothing; a bad date is a form error
    assert indices(html(officer.get("/audit?until=2001-01-01"))) == []
    bad = officer.get("/audit?from=yesterday")
    assert bad.status_code == 200 and 'href="#f-from"' in html(bad)
    # keyset paging: the "older" link carries a cursor; pages do not overlap
    from gateway.web import audit as audit_pages

    audit_pages.PAGE_SIZE, size = 3, audit_pages.PAGE_SIZE
    try:
        first = html(officer.get("/audit"))
        link = re.search(r'href="(/audit\?before=[^"]+)" rel="next"', first)
        assert link
        second = html(officer.get(link.group(1).replace("&amp;", "&")))
        a, b = indices(first), indices(second)
        assert len(a) == 3 and len(b) == 3 and min(a) > max(b)
        assert "Nieuwste" in second
    finally:
        audit_pages.PAGE_SIZE = size
    assert officer.get("/audit?before=not-a-cursor").status_code == 400


def test_subject_filter_by_post_keeps_identifiers_out_of_urls_logs_and_the_log(
    app: Flask, world: dict[str, Any]
) -> None:
    officer: FlaskClient = world["officer"]
    token = csrf_token(officer, "/audit")
    response = officer.post(
        "/audit/subject", data={"csrf_token": token, "keep-action": "signal.create", **SUBJECT}
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == "/audit?action=signal.create"
    for value in SUBJECT.values():
        assert value not in location
    page = html(officer.get(location))
    rows = indices(page)
    assert len(rows) == 2  # the two signals about the person, not the third
    assert "2 subjectverwijzingen" in page or "(2 " in page
    # the export of the filtered view honours the person filter too
    jsonl = officer.get("/audit/export?format=jsonl&action=signal.create")
    lines = [json.loads(line) for line in html(jsonl).splitlines()]
    assert {item["entry"]["resource"]["id"] for item in lines} == set(world["signals"])
    # the identifiers are nowhere: not in the audit log, not in the session cookie, not
    # in the stored filter (log lines: the browser test reads the live gateway's log)
    with services_of(app).db.session() as session:
        everything = b"".join(session.scalars(select(AuditEntryRow.data)))
        stored = session.execute(text("SELECT subjects FROM audit_subject_filters")).all()
    for value in (BSN, "Berg", "Sanne", "2009-04-17"):
        assert value.encode() not in everything
        assert all(value not in row[0] for row in stored)
    cookie = officer.get_cookie("ketenpoort_session")
    assert cookie is not None and BSN not in cookie.value
    # clearing the filter shows everything again
    token = csrf_token(officer, "/audit")
    officer.post("/audit/subject/clear", data={"csrf_token": token})
    assert len(indices(html(officer.get("/audit?action=signal.create")))) == 3
    # a BSN failing the 11-test is a message, not a 500, and sets no filter
    token = csrf_token(officer, "/audit")
    bad = officer.post("/audit/subject", data={"csrf_token": token, "bsn": "123456789"})
    assert bad.status_code == 303
    assert "123456789" not in bad.headers["Location"]
    assert len(indices(html(officer.get("/audit?action=signal.create")))) == 3


def test_the_subject_form_refuses_get_and_its_search_is_audited(
    app: Flask, world: dict[str, Any]
) -> None:
    officer: FlaskClient = world["officer"]
    # A GET does no search: it goes back to the page the form lives on, and takes
    # nothing of its query along (identifiers are taken by POST only).
    got = officer.get("/audit/subject?bsn=111222333")
    assert got.status_code == 303 and got.headers["Location"].endswith("/audit")
    token = csrf_token(officer, "/audit")
    officer.post("/audit/subject", data={"csrf_token": token, **SUBJECT})
    officer.get("/audit")
    with services_of(app).db.session() as session:
        actions = [
            json.loads(d)
            for d in session.scalars(
                select(AuditEntryRow.data).where(AuditEntryRow.actor_id == OFFICER)
            )
        ]
    searches = [e for e in actions if e["action"] == "subject.search"]
    assert searches and searches[-1]["outcome"] == "success" and searches[-1]["subjects"]
    reads = [e for e in actions if e["action"] == "audit.read" and e["subjects"]]
    assert reads, [
        (e["action"], e["resource"], e["outcome"], e["subjects"]) for e in actions
    ]  # the filtered read names the person by pseudonyms


def test_exports_in_three_formats_are_streamed_and_audited(
    app: Flask, world: dict[str, Any]
) -> None:
    officer: FlaskClient = world["officer"]
    response = officer.get("/audit/export?format=csv&action=signal.create")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(html(response))))
    assert len(rows) == 3 and {r["action"] for r in rows} == {"signal.create"}
    ldv = officer.get("/audit/export?format=ldv&action=signal.create")
    records = [json.loads(line) for line in html(ldv).splitlines()]
    assert records and all("dpl.core.data_subject_id" in r["attributes"] for r in records)
    assert all(OFFICER not in json.dumps(r) for r in records)  # LDV names no user
    jsonl = officer.get("/audit/export?format=jsonl")
    assert all("leafHash" in json.loads(line) for line in html(jsonl).splitlines())
    assert officer.get("/audit/export?format=xml").status_code == 400
    with services_of(app).db.session() as session:
        exports = [
            json.loads(d)
            for d in session.scalars(
                select(AuditEntryRow.data).where(AuditEntryRow.action == "audit.export")
            )
        ]
    assert {e["detail"]["format"] for e in exports} == {"csv", "ldv", "jsonl"}
    assert all(e["actor"]["id"] == OFFICER for e in exports)


def test_entry_detail_is_verified_against_the_latest_checkpoint(world: dict[str, Any]) -> None:
    officer: FlaskClient = world["officer"]
    index = indices(html(officer.get("/audit?action=signal.create")))[0]
    page = html(officer.get(f"/audit/{index}"))
    found = re.search(r"Geverifieerd tegen het controlepunt van boomgrootte (\d+)", page)
    assert found and int(found.group(1)) > index
    assert officer.get("/audit/99999999").status_code == 404


def test_roles_coordinators_are_refused_and_audited_officer_reads_no_payloads(
    app: Flask, world: dict[str, Any]
) -> None:
    coordinator = signed_in(app, COORDINATOR, "coordinator")
    for path in ("/audit", "/audit/0", "/audit/export?format=csv", "/audit/verifications"):
        assert coordinator.get(path).status_code == 403, path
    token = csrf_token(coordinator, "/")
    assert coordinator.post("/audit/verifications", data={"csrf_token": token}).status_code == 403
    with services_of(app).db.session() as session:
        denied = [
            json.loads(d)
            for d in session.scalars(
                select(AuditEntryRow.data).where(
                    AuditEntryRow.actor_id == COORDINATOR, AuditEntryRow.outcome == "denied"
                )
            )
        ]
    assert {e["action"] for e in denied} >= {"audit.read", "audit.export"}
    # the privacy officer reads the log but may not read payloads or change cases
    from gateway.policy.engine import Resource
    from gateway.users import accounts

    engine = services_of(app).policy.engine
    with services_of(app).db.session() as session:
        user = session.scalars(select(UserRow).where(UserRow.name == OFFICER)).one()
        officer = accounts.actor_of(user)
    for action in ("payload.read", "case.write", "case.share"):
        assert not engine.decide(officer, action, Resource(type="page")).allowed, action
    for action in ("audit.read", "audit.export"):
        assert engine.decide(officer, action, Resource(type="page")).allowed, action


def test_verification_runs_are_signed_and_listed(app: Flask, world: dict[str, Any]) -> None:
    officer: FlaskClient = world["officer"]
    token = csrf_token(officer, "/audit/verifications")
    response = officer.post("/audit/verifications", data={"csrf_token": token})
    assert response.status_code == 303
    runs = services_of(app).verifications
    with services_of(app).db.session() as session:
        run_id = session.scalars(select(AuditVerificationRow.id)).one()
    runs.join(run_id)
    run = runs.get(run_id)
    assert run is not None and run.status == "ok", run
    assert run.started_by == OFFICER and run.tree_size and run.root_hash
    assert run.signature_valid and run.signed_record
    page = html(officer.get("/audit/verifications"))
    assert "intact" in page and "handtekening geldig" in page
    # the record's signature covers its fields: a changed row no longer checks out
    keys = verifier_keys(services_of(app).keys, services_of(app).settings.issuer)
    with services_of(app).db.session() as session:
        row = session.get(AuditVerificationRow, run_id)
        assert row is not None and row.signed_record is not None
        assert check_record(row.signed_record, record_text(row), keys)
        row.tree_size = (row.tree_size or 0) + 1
        assert not check_record(row.signed_record, record_text(row), keys)


def test_an_external_checkpoint_is_checked_and_a_foreign_one_refused(
    app: Flask, world: dict[str, Any]
) -> None:
    officer: FlaskClient = world["officer"]
    svc = services_of(app)
    svc.audit.catch_up()
    with svc.db.session() as session:
        note = session.execute(
            text("SELECT note FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
        ).scalar_one()
    token = csrf_token(officer, "/audit/verifications")
    upload = (io.BytesIO(note.encode()), "checkpoint.txt")
    response = officer.post(
        "/audit/verifications",
        data={"csrf_token": token, "checkpointFile": upload},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    with svc.db.session() as session:
        run_id = session.scalars(select(AuditVerificationRow.id)).one()
    svc.verifications.join(run_id)
    run = svc.verifications.get(run_id)
    assert run is not None and run.status == "ok" and run.external_size
    # a checkpoint signed by another key is refused before anything runs
    forged = note.rsplit("\n\n", 1)[0] + "\n\n— 127.0.0.1:8080/audit AAAAAAAAAAAAAAAAAAAAAAAA\n"
    token = csrf_token(officer, "/audit/verifications")
    refused = officer.post("/audit/verifications", data={"csrf_token": token, "checkpoint": forged})
    assert refused.status_code == 303
    shown = html(officer.get("/audit/verifications"))
    assert "niet geaccepteerd" in shown and "geldige handtekening" in shown
    assert "signed note" not in shown  # the verifier's English stays out of the page
    with svc.db.session() as session:
        assert len(session.scalars(select(AuditVerificationRow.id)).all()) == 1


def test_a_tampered_copy_fails_verification_naming_the_index(
    app: Flask, settings: Settings, world: dict[str, Any], tmp_path: Path
) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("copies the SQLite file; PostgreSQL tampering is covered by tests/audit")
    svc = services_of(app)
    svc.audit.catch_up()
    with svc.db.session() as session:
        victim = session.scalars(
            select(AuditEntryRow.seq).where(AuditEntryRow.action == "signal.create")
        ).first()
    assert victim is not None
    source = Path(settings.database_url.removeprefix("sqlite:///"))
    copy = tmp_path / "copy" / "ketenpoort.db"
    copy.parent.mkdir()
    with sqlite3.connect(source) as original, sqlite3.connect(copy) as duplicate:
        original.backup(duplicate)  # a consistent copy of the file, WAL included
    tampered = create_app(settings=replace(settings, database_url=f"sqlite:///{copy}"))
    try:
        db = services_of(tampered).db
        with db.transaction() as session:
            data = session.scalars(
                select(AuditEntryRow.data).where(AuditEntryRow.seq == victim)
            ).one()
            session.execute(
                text("UPDATE audit_entries SET data = :d WHERE seq = :s"),
                {"d": data.replace(b"signal.create", b"signal.delete"), "s": victim},
            )
        officer = signed_in(tampered, "p.tamper", "privacy-officer")
        token = csrf_token(officer, "/audit/verifications")
        officer.post("/audit/verifications", data={"csrf_token": token})
        with db.session() as session:
            run_id = session.scalars(
                select(AuditVerificationRow.id).where(AuditVerificationRow.started_by == "p.tamper")
            ).one()
        services_of(tampered).verifications.join(run_id)
        run = services_of(tampered).verifications.get(run_id)
        assert run is not None and run.status == "failed" and run.first_bad_index == victim
        page = html(officer.get("/audit/verifications"))
        assert f"eerste foute index is {victim}" in page
        assert "eerste foute index" in html(officer.get("/audit"))
        with db.session() as session:
            failed = [
                json.loads(d)
                for d in session.scalars(
                    select(AuditEntryRow.data).where(AuditEntryRow.actor_id == "p.tamper")
                )
            ]
        assert any(
            e["outcome"] == "error" and e["detail"].get("firstBadIndex") == victim for e in failed
        )
    finally:
        close_app(tampered)
    # the original stays intact
    assert svc.verifications.get(run_id) is None
