"""A gateway with signals (real JWEs for the meldpunt key), partners and coordinators.

Signals are stored through the signals service and matches written as rows, so these
tests depend on neither the HTTP submission path nor when matching runs.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit.models import AuditEntryRow
from gateway.cases import CaseServices
from gateway.crypto import jwe
from gateway.keys import KeyPurpose
from gateway.matching.models import MatchMemberRow, MatchRow
from gateway.partners.models import Organisation
from gateway.partners.registry import add_client, add_organisation
from gateway.pseudonyms.detector import recordable_uuid
from gateway.services import services
from gateway.signals.service import NewSignal, create_signal
from gateway.users.service import add_user
from tests.oauth.support import ADMIN, PartnerClient, enc_key, new_key, public_of

ANNA = Actor(type="user", id="anna", role="coordinator")
BRAM = Actor(type="user", id="bram", role="coordinator")
CASE_SYSTEM = Actor(
    type="client",
    id="meldpunt-cases",
    organisation="meldpunt",
    organisation_kind="meldpunt",
    scopes=frozenset({"cases:write"}),
)


@dataclass
class Partner:
    org: str
    kind: str
    enc_private: dict[str, Any]
    client: PartnerClient | None = None


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class World:
    app: Flask
    client: FlaskClient
    svc: CaseServices
    clock: Clock
    partners: dict[str, Partner] = field(default_factory=dict)

    def session(self) -> Session:
        session: Session = self.app.extensions["ketenpoort"].db.session(write=True)
        return session

    def signal(self, org: str, kind: str, category: str, text: str) -> str:
        """Store an active signal whose payload is `text`, encrypted for the meldpunt."""
        keys = self.app.extensions["ketenpoort"].keys
        meldpunt = keys.active(KeyPurpose.MELDPUNT_ENCRYPTION).public_jwk
        envelope = jwe.encrypt_for_recipients(text.encode(), [meldpunt], flattened=True)
        with self.session() as session:
            created = create_signal(
                session,
                NewSignal(
                    organisation=org,
                    organisation_kind=kind,
                    reference=f"REF-{secrets.token_hex(4)}",
                    category=category,
                    pseudonyms={"bsn": secrets.token_bytes(32)},
                    pseudonym_key_id="psk-test",
                    payload=json.dumps(envelope),
                    retention_days=365,
                ),
            )
            session.commit()
            return created.signal.id

    def match(self, *signal_ids: str) -> str:
        match_id = recordable_uuid()  # as the gateway's own ids are
        now = datetime.now(UTC)
        with self.session() as session:
            row = MatchRow(id=match_id, created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            from gateway.signals.models import SignalRow

            for sid in signal_ids:
                pk = session.execute(select(SignalRow.pk).where(SignalRow.id == sid)).scalar_one()
                session.add(
                    MatchMemberRow(match_pk=row.pk, signal_pk=pk, linkage_keys="bsn", joined_at=now)
                )
            session.commit()
        return match_id

    def partner(self, org: str, kind: str, scopes: str = "") -> Partner:
        """Register an organisation with an encryption key (and a client with `scopes`)."""
        private, public = enc_key()
        signing = new_key()
        with self.session() as session:
            if session.get(Organisation, org) is None:  # the meldpunt exists from `init`
                add_organisation(
                    session, org_id=org, name=org, kind=kind, encryption_keys=[public], actor=ADMIN
                )
            client = None
            if scopes:
                record = add_client(
                    session,
                    org_id=org,
                    signing_keys=[public_of(signing)],
                    scopes=tuple(scopes.split()),
                    require_dpop=False,
                    actor=ADMIN,
                )
                issuer = self.app.extensions["ketenpoort"].settings.issuer
                client = PartnerClient(record.client_id, org, signing, issuer)
            session.commit()
        partner = Partner(org, kind, private, client)
        self.partners[org] = partner
        return partner

    def token(self, partner: Partner, scopes: str) -> dict[str, str]:
        assert partner.client is not None
        response = partner.client.request_token(self.client, scope=scopes)
        assert response.status_code == 200, response.get_data(as_text=True)
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}

    def entries(self, action: str | None = None) -> list[dict[str, Any]]:
        with self.session() as session:
            rows = session.execute(select(AuditEntryRow).order_by(AuditEntryRow.id)).scalars()
            found = [json.loads(r.data) for r in rows]
        return [e for e in found if action is None or e["action"] == action]


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> Iterator[World]:
    with app.app_context():
        svc = services().cases
        clock = Clock()
        for service in (svc.cases, svc.approvals, svc.payloads, svc.shares):
            service.clock = clock
        keys = app.extensions["ketenpoort"].keys
        with app.extensions["ketenpoort"].db.transaction() as session:
            for name in ("anna", "bram"):
                add_user(session, keys, name=name, role="coordinator", actor=ADMIN)
            add_user(session, keys, name="fleur", role="privacy-officer", actor=ADMIN)
        yield World(app, client, svc, clock)


@pytest.fixture
def headers(world: World) -> dict[str, str]:
    """A meldpunt case system's token that may also read shares; a case to aim at."""
    from gateway.cases.service import NewCase

    meldpunt = world.partner("meldpunt", "meldpunt", "cases:write shares:read")
    sid = world.signal("politie-oost", "police", "possible-victim", "x")
    with world.session() as session:
        case = world.svc.cases.create(session, ANNA, NewCase("Casus", signal_ids=(sid,)))
        session.commit()
    world.app.config["TEST_CASE_ID"] = case.id
    return world.token(meldpunt, "cases:write shares:read")
