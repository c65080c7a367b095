"""Sign-in rules, with the clock passed in: TOTP codes once only, lockout back-off, the
same refusal for every failure, password rules, and the session time-outs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.actors import cli_actor
from gateway.audit.models import AuditEntryRow
from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyStore, load_master_key
from gateway.users import accounts
from gateway.users.models import UserRow, WebSessionRow
from gateway.users.service import NewUser, add_user

T0 = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def env(settings: Settings, initialised: object) -> Any:
    database = Database(settings.database_url)
    keys = KeyStore(
        settings.keys_dir, load_master_key(settings.keys_dir, settings.master_key, create=False)
    )
    yield database, keys
    database.dispose()


def new_user(database: Database, keys: KeyStore, name: str = "c.jansen") -> NewUser:
    with database.transaction() as session:
        return add_user(session, keys, name=name, role="coordinator", actor=cli_actor())


def attempt(
    env: Any,
    user: NewUser,
    *,
    now: datetime,
    password: str | None = None,
    otp: str | None = None,
    name: str | None = None,
) -> accounts.SignInResult:
    database, keys = env
    with database.transaction() as session:
        return accounts.sign_in(
            session,
            keys,
            name=name or user.name,
            password=user.one_time_password if password is None else password,
            otp=pyotp.TOTP(user.totp_secret).at(now) if otp is None else otp,
            now=now,
        )


def audit(database: Database) -> list[tuple[str, str, dict[str, Any]]]:
    with database.transaction(write=False) as session:
        rows = session.execute(
            select(AuditEntryRow.action, AuditEntryRow.outcome, AuditEntryRow.data).order_by(
                AuditEntryRow.id
            )
        ).all()
    return [
        (a, o, json.loads(d)) for a, o, d in rows if a.startswith("user.s") or a == "user.lockout"
    ]


def test_a_code_is_accepted_once_and_the_one_time_password_must_be_changed(env: Any) -> None:
    user = new_user(*env)
    first = attempt(env, user, now=T0)
    assert first.outcome == "must-change-password"
    # the same code again (another browser, a replay) is refused, even with the password
    assert attempt(env, user, now=T0 + timedelta(seconds=5)).outcome == "refused"
    # as is the previous step's code, though it is inside the window
    old = pyotp.TOTP(user.totp_secret).at(T0 - timedelta(seconds=30))
    assert attempt(env, user, now=T0 + timedelta(seconds=5), otp=old).outcome == "refused"
    # the next step's code is fine
    assert attempt(env, user, now=T0 + timedelta(seconds=31)).outcome == "must-change-password"


def test_one_step_of_clock_drift_is_allowed_two_are_not(env: Any) -> None:
    user = new_user(*env)
    totp = pyotp.TOTP(user.totp_secret)
    assert attempt(env, user, now=T0, otp=totp.at(T0 + timedelta(seconds=65))).outcome == "refused"
    ahead = totp.at(T0 + timedelta(seconds=30))
    assert attempt(env, user, now=T0, otp=ahead).outcome == "must-change-password"


def test_lockout_backs_off_and_every_refusal_looks_the_same(env: Any) -> None:
    database, keys = env
    user = new_user(database, keys)
    now = T0
    for _ in range(5):
        assert attempt(env, user, now=now, password="wrong-password").outcome == "refused"
    with database.transaction(write=False) as session:
        row = session.execute(select(UserRow)).scalar_one()
        assert accounts._as_utc(row.locked_until) == now + timedelta(minutes=1)
    # locked: the right password and a fresh code are refused, as for an unknown name
    assert attempt(env, user, now=now + timedelta(seconds=30)).outcome == "refused"
    assert attempt(env, user, now=now, name="nobody").outcome == "refused"
    # after the minute, five more failures lock for two minutes
    now = now + timedelta(minutes=1, seconds=1)
    for _ in range(5):
        attempt(env, user, now=now, password="wrong-password")
    with database.transaction(write=False) as session:
        row = session.execute(select(UserRow)).scalar_one()
        assert accounts._as_utc(row.locked_until) == now + timedelta(minutes=2)
    now = now + timedelta(minutes=2, seconds=1)
    assert attempt(env, user, now=now).outcome == "must-change-password"
    entries = audit(database)
    lockouts = [d["detail"] for a, _, d in entries if a == "user.lockout"]
    assert lockouts == [{"minutes": 1}, {"minutes": 2}]
    reasons = [d["detail"].get("reason") for a, o, d in entries if o == "denied"]
    assert reasons.count("password") == 10 and "locked" in reasons and "unknown-user" in reasons
    unknown = [d for a, o, d in entries if d["detail"].get("reason") == "unknown-user"]
    assert unknown[0]["actor"] == {"type": "anonymous", "id": "unknown-user"}
    for _, _, data in entries:
        text = json.dumps(data)
        assert user.one_time_password not in text and "wrong-password" not in text


def test_password_rules(env: Any) -> None:
    database, keys = env
    user = new_user(database, keys)
    with database.transaction() as session:
        row = session.execute(select(UserRow)).scalar_one()
        for new, confirm, code in [
            ("short", "short", "too-short"),
            ("long-enough-password", "long-enough-passwort", "mismatch"),
            (user.one_time_password, user.one_time_password, "unchanged"),
            ("x" * 300, "x" * 300, "too-long"),
        ]:
            with pytest.raises(accounts.PasswordRefused) as refused:
                accounts.change_password(session, row, new, confirm, now=T0)
            assert refused.value.code == code
        accounts.change_password(session, row, "a-new-password-1", "a-new-password-1", now=T0)
        assert row.must_change_password is False
    step = T0 + timedelta(seconds=30)
    assert attempt(env, user, now=step, password="a-new-password-1").outcome == "signed-in"


def _session_row(session: Session) -> WebSessionRow | None:
    return session.execute(select(WebSessionRow)).scalar_one_or_none()


@pytest.mark.parametrize(
    ("later", "timeout"),
    [(timedelta(minutes=14), None), (timedelta(minutes=16), "idle")],
)
def test_idle_timeout(env: Any, later: timedelta, timeout: str | None) -> None:
    database, keys = env
    new_user(database, keys)
    with database.transaction() as session:
        row = session.execute(select(UserRow)).scalar_one()
        token = accounts.start_session(session, row, now=T0)
        assert _session_row(session) is not None
        assert _session_row(session).id != token  # only the digest is stored
    with database.transaction() as session:
        resumed = accounts.resume_session(session, token, now=T0 + later, idle=900, absolute=28800)
        assert resumed.timed_out == timeout
        assert (resumed.user is None) == (timeout is not None)
        assert (_session_row(session) is None) == (timeout is not None)
    actions = [a for a, _, _ in audit(database)]
    assert ("user.session-timeout" in actions) == (timeout is not None)


def test_absolute_timeout_even_when_active(env: Any) -> None:
    database, keys = env
    new_user(database, keys)
    with database.transaction() as session:
        row = session.execute(select(UserRow)).scalar_one()
        token = accounts.start_session(session, row, now=T0)
    now = T0
    for _ in range(17):  # a request every 10 minutes keeps it from idling
        now += timedelta(minutes=10)
        with database.transaction() as session:
            resumed = accounts.resume_session(session, token, now=now, idle=900, absolute=7200)
        if resumed.user is None:
            break
    assert resumed.timed_out == "absolute" and now - T0 > timedelta(hours=2)
    assert now - T0 <= timedelta(hours=2, minutes=10)
