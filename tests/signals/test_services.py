"""The domain services without HTTP: the one way to submit, list, read and withdraw.

A service call takes the actor, asks the policy once, and audits with the decision it
got, in the caller's session; nothing of it needs a request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from gateway.actors import Actor
from gateway.audit.models import AuditEntryRow
from gateway.crypto.jwe import encrypt_for_recipients
from gateway.errors import NotFound, PolicyDenied
from gateway.policy.engine import Decision, PolicyEngine
from gateway.services import services
from gateway.signals.submission import SignalService, Submission
from tests.oauth.support import register_partner
from tests.signals.test_api import SUBJECT


@dataclass
class CountingEngine:
    """The real engine, counting the questions asked of it."""

    engine: PolicyEngine
    asked: list[str] = field(default_factory=list)

    def decide(self, actor: Actor, action: str, *args: Any, **kw: Any) -> Decision:
        self.asked.append(action)
        return self.engine.decide(actor, action, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def _police(app: Flask) -> Actor:
    partner = register_partner(app, "police")
    return Actor(
        type="client",
        id=partner.client_id,
        organisation="police",
        organisation_kind="police",
        scopes=frozenset({"signals:write", "signals:read"}),
    )


def _submission(service: SignalService, reference: str = "POL-1") -> Submission:
    keys = [jwk for org, jwk in service.directory.current().values() if org == "meldpunt"]
    payload = encrypt_for_recipients(b'{"summary": "zorgen"}', keys)
    return Submission(
        reference=reference, category="possible-victim", subject=SUBJECT, payload=payload
    )


def _actions(app: Flask) -> list[tuple[str, str]]:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        rows = session.execute(select(AuditEntryRow.data).order_by(AuditEntryRow.id)).scalars()
        return [(e["action"], e["outcome"]) for e in map(json.loads, rows)]


def test_submit_list_get_withdraw_without_http(app: Flask) -> None:
    actor = _police(app)
    db = app.extensions["ketenpoort"].db
    with app.app_context():
        service = services().domain.signals
        counting = CountingEngine(service.engine)
        service.engine = counting  # type: ignore[assignment]
        try:
            with db.transaction() as session:
                done = service.submit(session, actor, _submission(service))
            assert counting.asked == ["signal.create"]  # once, not decide + authorize
            assert not done.replay and json.loads(done.body)["receipt"]["leafHash"]
            with db.transaction() as session:
                page = service.list(session, actor, None, 10)
                assert [s.id for s in page.items] == [done.signal.id]
                assert service.get(session, actor, done.signal.id).status == "active"
                gone = service.withdraw(session, actor, done.signal.id)
            assert gone.signal.status == "withdrawn"
            assert counting.asked == [
                "signal.create",
                "signal.list",
                "signal.read",
                "signal.withdraw",
            ]
        finally:
            service.engine = counting.engine
    assert [a for a in _actions(app) if a[0].startswith("signal.")] == [
        ("signal.create", "success"),
        ("signal.list", "success"),
        ("signal.read", "success"),
        ("signal.withdraw", "success"),
    ]


def test_a_refusal_is_audited_and_raised(app: Flask) -> None:
    actor = _police(app)
    narrowed = Actor(type="user", id="u-1", role="admin")  # admins never read signals
    db = app.extensions["ketenpoort"].db
    with app.app_context():
        service = services().domain.signals
        with db.transaction() as session:
            done = service.submit(session, actor, _submission(service))
        with db.session(write=True) as session, pytest.raises(NotFound):
            service.get(session, narrowed, done.signal.id)
        other = Actor(type="client", id="c-2", organisation="care", organisation_kind="care")
        with db.session(write=True) as session, pytest.raises(NotFound):
            service.withdraw(session, other, done.signal.id)
        with db.session(write=True) as session, pytest.raises(PolicyDenied):
            service.submit(
                session,
                Actor(type="client", id="c-3", organisation="x", organisation_kind="bank"),
                _submission(service, "X-1"),
            )
    assert _actions(app)[-3:] == [
        ("signal.read", "denied"),
        ("signal.withdraw", "denied"),
        ("signal.create", "denied"),
    ]
