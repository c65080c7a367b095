"""The web intake without a browser: a professional files, sees and withdraws their own
signals through the same `SignalService` as `POST /v1/signals`; invalid input gives the
form again with a message per field and stores nothing."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pyotp
import pytest
import yaml
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gateway.actors import cli_actor
from gateway.audit.models import AuditEntryRow
from gateway.crypto.jwe import decrypt_for_recipient
from gateway.keys import KeyPurpose
from gateway.keys.epochs import open_payload
from gateway.services import close_app
from gateway.signals.models import SignalRow
from gateway.users.accounts import set_known_password
from gateway.users.models import UserRow
from gateway.users.service import UserError, add_user
from tests.oauth.support import register_partner
from tests.signals.test_api import BSN, SUBJECT, body
from tests.web.test_pages import csrf_token

SCHOOL = "roc-twente"
PASSWORD = "een-eigen-wachtwoord"
REPORT = "Zij heeft sinds kort dure spullen en een veel oudere vriend die haar ophaalt."


def _school(app: Flask) -> None:
    register_partner(app, SCHOOL, kind="education")


def _professional(app: Flask, name: str, organisation: str = SCHOOL) -> str:
    """A professional with a known password; returns the TOTP secret."""
    svc = app.extensions["ketenpoort"]
    from datetime import UTC, datetime

    with svc.db.transaction() as session:
        created = add_user(
            session,
            svc.keys,
            name=name,
            role="professional",
            actor=cli_actor(),
            organisation=organisation,
        )
        row = session.get(UserRow, created.id)
        assert row is not None
        set_known_password(session, row, PASSWORD, now=datetime.now(UTC), actor=cli_actor())
    return created.totp_secret


def _sign_in(app: Flask, name: str, organisation: str = SCHOOL) -> FlaskClient:
    secret = _professional(app, name, organisation)
    client = app.test_client()
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client),
            "username": name,
            "password": PASSWORD,
            "otp": pyotp.TOTP(secret).now(),
        },
    )
    assert response.headers["Location"] == "/", response.get_data(as_text=True)
    return client


def _file(client: FlaskClient, **fields: str) -> Any:
    data = {
        **SUBJECT,
        "category": "concern",
        "report": REPORT,
        "csrf_token": csrf_token(client, "/intake"),
        **fields,
    }
    return client.post("/intake", data=data)


def _match_catch_up(app: Flask) -> None:
    """What the background job does every half second (off in these tests)."""
    from gateway.matching.processor import hit_policy_of, process_outbox

    svc = app.extensions["ketenpoort"]
    process_outbox(svc.db, hit_policy_of(svc.policy.engine))


def _count(app: Flask, model: Any) -> int:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_professional_files_sees_the_receipt_and_withdraws(app: Flask) -> None:
    _school(app)
    client = _sign_in(app, "l.smit")
    start = client.get("/").get_data(as_text=True)
    assert 'href="/intake"' in start and "Signaal melden" in start
    form = client.get("/intake")
    page = form.get_data(as_text=True)
    assert form.status_code == 200 and form.headers["Cache-Control"].startswith("no-store")
    for name in ("bsn", "familyName", "givenNames", "dateOfBirth", "category", "report"):
        assert f'name="{name}"' in page, name
    # an education professional may file concerns and possible victims, not perpetrators
    assert 'value="concern"' in page and 'value="possible-victim"' in page
    assert 'value="possible-perpetrator"' not in page
    assert 'value="test"' not in page  # the conformance test category: systems only

    filed = _file(client)
    assert filed.status_code == 303 and filed.headers["Location"] == "/intake"
    receipt_page = client.get("/intake").get_data(as_text=True)
    assert "Uw signaal is ontvangen" in receipt_page
    svc = app.extensions["ketenpoort"]
    with svc.db.transaction(write=False) as session:
        row = session.execute(select(SignalRow)).scalar_one()
        assert row.organisation == SCHOOL and row.organisation_kind == "education"
        assert row.submitted_by == "l.smit" and row.reference.startswith("WEB-")
        assert {"bsn", "name_dob"} <= set(row.linkage_keys.split(","))
        entry_row = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.action == "signal.create")
        ).scalar_one()
        # at rest the JWE is wrapped under its erasure month's epoch key
        payload = json.loads(open_payload(svc.keys, row.payload or ""))
    assert row.id in receipt_page
    leaf = base64.b64encode(entry_row.leaf_hash).decode()
    assert leaf in receipt_page
    entry = json.loads(entry_row.data)
    assert entry["actor"] == {
        "type": "user",
        "id": "l.smit",
        "organisation": SCHOOL,
        "role": "professional",
    }
    assert entry["policy"]["rule"] == "professional-submits-signal"
    assert len(entry["subjects"]) == 2
    # the report is a JWE the meldpunt opens; the gateway stored no clear text
    assert REPORT not in row.payload
    meldpunt_key = svc.keys.active(KeyPurpose.MELDPUNT_ENCRYPTION)
    opened = json.loads(decrypt_for_recipient(payload, svc.keys.private_jwk(meldpunt_key.kid)))
    assert opened == {"summary": REPORT, "channel": "web-intake"}
    # the receipt is shown once
    again = client.get("/intake").get_data(as_text=True)
    assert "Uw signaal is ontvangen" not in again and row.reference in again

    withdrawn = client.post(
        f"/intake/signals/{row.id}/withdraw", data={"csrf_token": csrf_token(client, "/intake")}
    )
    assert withdrawn.status_code == 303
    listed = client.get("/intake").get_data(as_text=True)
    assert "ingetrokken" in listed
    with svc.db.transaction(write=False) as session:
        done = session.execute(select(SignalRow)).scalar_one()
        assert done.status == "withdrawn" and done.payload is None


@pytest.mark.parametrize(
    ("fields", "messages"),
    [
        ({"bsn": BSN[:8] + "4"}, {"bsn": "elfproef"}),
        ({"dateOfBirth": "2099-01-01"}, {"dateOfBirth": "geboortedatum"}),
        (
            {"bsn": "", "familyName": "", "dateOfBirth": ""},
            {"bsn": "achternaam met een geboortedatum"},
        ),
        ({"category": ""}, {"category": "Kies een categorie"}),
        ({"report": "  "}, {"report": "Beschrijf"}),
        ({"reference": f"dossier {BSN}"}, {"reference": "persoonsgegevens"}),
        (
            {"bsn": "12345", "category": "onbekend", "report": ""},
            {"bsn": "elfproef", "category": "Kies", "report": "Beschrijf"},
        ),
    ],
)
def test_invalid_input_gives_the_form_again_and_stores_nothing(
    app: Flask, fields: dict[str, str], messages: dict[str, str]
) -> None:
    _school(app)
    client = _sign_in(app, "l.smit")
    before = _count(app, AuditEntryRow)
    response = _file(client, **fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "Er is een probleem" in page
    for field, message in messages.items():
        assert f'id="{field}-error"' in page, field
        assert message in page, message
        assert f'href="#{field}"' in page
    assert _count(app, SignalRow) == 0
    # nothing of the attempt went to the audit log but the list of the own signals
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        actions = session.execute(
            select(AuditEntryRow.action).where(AuditEntryRow.id > before)
        ).scalars()
        assert set(actions) <= {"signal.list"}


def test_a_category_the_kind_may_not_file_is_refused_and_audited(app: Flask) -> None:
    _school(app)
    client = _sign_in(app, "l.smit")
    response = _file(client, category="possible-perpetrator")
    assert response.status_code == 403
    assert "mag in deze categorie niet melden" in response.get_data(as_text=True)
    assert _count(app, SignalRow) == 0
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        denied = session.execute(
            select(AuditEntryRow).where(
                AuditEntryRow.action == "signal.create", AuditEntryRow.outcome == "denied"
            )
        ).scalar_one()
    assert json.loads(denied.data)["policy"]["rule"] == "deny:not-a-submitter"


def test_the_conformance_test_category_is_not_for_the_web_intake(app: Flask) -> None:
    _school(app)
    response = _file(_sign_in(app, "l.smit"), category="test")
    assert response.status_code == 403
    assert "mag in deze categorie niet melden" in response.get_data(as_text=True)
    assert _count(app, SignalRow) == 0


def test_colleagues_do_not_see_each_others_signals(app: Flask) -> None:
    _school(app)
    first = _sign_in(app, "l.smit")
    assert _file(first, reference="MENTOR-1").status_code == 303
    colleague = _sign_in(app, "j.kok")
    page = colleague.get("/intake").get_data(as_text=True)
    assert "MENTOR-1" not in page and "nog geen signalen" in page
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        signal_id = session.execute(select(SignalRow.id)).scalar_one()
    refused = colleague.post(
        f"/intake/signals/{signal_id}/withdraw",
        data={"csrf_token": csrf_token(colleague, "/intake")},
    )
    assert refused.status_code == 404
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        assert session.execute(select(SignalRow.status)).scalar_one() == "active"


def test_a_policy_may_let_colleagues_see_the_organisations_signals(
    app: Flask, settings: Any, tmp_path: Path
) -> None:
    from dataclasses import replace

    from gateway.app import create_app

    policy = yaml.safe_load(settings.policy.read_text())
    policy["rules"].append(
        {
            "id": "professional-sees-organisation-signals",
            "description": "Professionals van een organisatie zien elkaars signalen.",
            "who": {"type": "user", "roles": ["professional"]},
            "actions": ["signal.list"],
            "own_organisation": True,
        }
    )
    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True))
    _school(app)
    _file(_sign_in(app, "l.smit"), reference="MENTOR-1")
    shared = create_app(settings=replace(settings, policy=path))
    try:
        colleague = _sign_in(shared, "j.kok")
        assert "MENTOR-1" in colleague.get("/intake").get_data(as_text=True)
    finally:
        close_app(shared)


def test_staff_get_no_intake(app: Flask) -> None:
    from tests.web.test_pages import _signed_in

    client = app.test_client()
    _signed_in(app, client, "c.jansen", "coordinator")
    assert 'href="/intake"' not in client.get("/").get_data(as_text=True)
    response = client.get("/intake")
    assert response.status_code == 403 and "Geen toegang" in response.get_data(as_text=True)
    posted = client.post(
        "/intake", data={**SUBJECT, "category": "concern", "report": REPORT, "csrf_token": "x"}
    )
    assert posted.status_code == 400  # the CSRF check comes first
    assert _count(app, SignalRow) == 0


def test_users_add_professional_needs_a_registered_partner(app: Flask, settings: Any) -> None:
    svc = app.extensions["ketenpoort"]
    with svc.db.transaction() as session:
        for organisation, message in (
            (None, "needs --organisation"),
            ("nergens", "no partner organisation 'nergens' is registered"),
            ("meldpunt", "coordinators, not professionals"),
        ):
            with pytest.raises(UserError, match=message):
                add_user(
                    session,
                    svc.keys,
                    name="x.user",
                    role="professional",
                    actor=cli_actor(),
                    organisation=organisation,
                )
        with pytest.raises(UserError, match="only a professional"):
            add_user(
                session,
                svc.keys,
                name="x.user",
                role="coordinator",
                actor=cli_actor(),
                organisation="meldpunt",
            )


def test_the_cli_adds_a_professional(app: Flask, settings: Any, monkeypatch: Any) -> None:
    from gateway.cli import main
    from tests.integration.live import _env

    _school(app)
    for key, value in _env(settings).items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    missing = runner.invoke(
        main, ["users", "add", "a.b", "--role", "professional", "--organisation", "nergens"]
    )
    assert missing.exit_code == 1
    assert missing.stderr.strip().splitlines() == [
        "error: no partner organisation 'nergens' is registered (see `ketenpoort partners list`)"
    ]
    done = runner.invoke(
        main, ["users", "add", "a.b", "--role", "professional", "--organisation", SCHOOL]
    )
    assert done.exit_code == 0, done.output
    created = json.loads(done.stdout)
    assert created["role"] == "professional" and created["organisation"] == SCHOOL
    assert re.fullmatch(r"[A-Z2-7]{32}", created["totpSecret"])


def test_a_disabled_organisations_professional_cannot_sign_in(app: Flask) -> None:
    from gateway.partners.registry import disable_organisation

    _school(app)
    client = _sign_in(app, "l.smit")
    svc = app.extensions["ketenpoort"]
    with svc.db.transaction() as session:
        disable_organisation(session, SCHOOL, actor=cli_actor())
    assert client.get("/intake").headers["Location"] == "/login"


def test_the_api_and_the_intake_pseudonymise_alike(app: Flask, police: dict[str, str]) -> None:
    """A police signal via the API and a school's via the page about the same person
    are one match for the coordinator."""
    client = app.test_client()
    api = client.post("/v1/signals", json=body(client, police), headers=police)
    assert api.status_code == 201
    _school(app)
    assert _file(_sign_in(app, "l.smit")).status_code == 303
    _match_catch_up(app)
    meldpunt = app.test_client()
    from tests.web.test_pages import _signed_in

    _signed_in(app, meldpunt, "c.jansen", "coordinator")
    page = meldpunt.get("/matches").get_data(as_text=True)
    # the partners by their names (`register_partner` names them after their ids)
    assert "Police" in page and SCHOOL.capitalize() in page
