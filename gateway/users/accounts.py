"""Signing people in: argon2id password, TOTP code, lockout with back-off, sessions.

Every answer to a refused sign-in is the same, whether the name exists, the password or
the code was wrong, or the account is locked; an unknown name still costs one argon2id
verification. The caller commits: counters, sessions and audit entries go together.
Neither the password nor the code ever reaches an audit entry or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, Outcome, record_event
from gateway.keys import KeyStore
from gateway.users.models import UserRow, WebSessionRow
from gateway.users.service import organisation_active, totp_secret_of

ORGANISATION = "meldpunt"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
#: A lockout lasts 1, 2, 4… minutes, at most a day.
MAX_LOCK_MINUTES = 24 * 60
_OTP = re.compile(r"^[0-9]{6}$")
UNKNOWN = Actor(type="anonymous", id="unknown-user")


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against for unknown names, so they cost what a known name costs."""
    return _hasher().hash(secrets.token_urlsafe(18))


def actor_of(user: UserRow) -> Actor:
    """The meldpunt's staff act for the meldpunt; a professional for their organisation."""
    if user.organisation is not None:
        return Actor(
            type="user",
            id=user.name,
            role=user.role,
            organisation=user.organisation,
            organisation_kind=user.organisation_kind,
        )
    return Actor(type="user", id=user.name, role=user.role, organisation=ORGANISATION)


def _audit(
    session: Session,
    action: str,
    outcome: Outcome,
    user: UserRow | None,
    now: datetime,
    **detail: Any,
) -> None:
    record_event(
        session,
        AuditEvent(
            action=action,
            outcome=outcome,
            actor=actor_of(user) if user is not None else UNKNOWN,
            resource_type="user",
            resource_id=user.id if user is not None else None,
            detail=detail,
        ),
        now=now,
    )


def _password_ok(user: UserRow | None, password: str) -> bool:
    try:
        return _hasher().verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (RFC 6238, 30 s) `code` belongs to, one step either side allowed."""
    if not _OTP.match(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


@dataclass(frozen=True)
class SignInResult:
    outcome: Literal["signed-in", "must-change-password", "refused"]
    user: UserRow | None = None


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def sign_in(
    session: Session,
    keys: KeyStore,
    *,
    name: str,
    password: str,
    otp: str,
    now: datetime,
    lockout_threshold: int = 5,
) -> SignInResult:
    """Check name, password and TOTP code; count failures and lock after too many."""
    user = session.execute(
        select(UserRow).where(UserRow.name == name).with_for_update()
    ).scalar_one_or_none()
    password_ok = _password_ok(user, password[:MAX_PASSWORD_LENGTH])
    if user is None:
        _audit(session, "user.sign-in", "denied", None, now, reason="unknown-user")
        return SignInResult("refused")
    locked_until = _as_utc(user.locked_until)
    if locked_until is not None and locked_until > now:
        _audit(session, "user.sign-in", "denied", user, now, reason="locked")
        return SignInResult("refused")
    if user.status != "active":
        _audit(session, "user.sign-in", "denied", user, now, reason="inactive")
        return SignInResult("refused")
    if user.organisation is not None and not organisation_active(session, user.organisation):
        _audit(session, "user.sign-in", "denied", user, now, reason="organisation-disabled")
        return SignInResult("refused")
    step = _totp_step(totp_secret_of(keys, user), otp, now) if password_ok else None
    replayed = step is not None and user.last_totp_step is not None and step <= user.last_totp_step
    if not password_ok or step is None or replayed:
        reason = "password" if not password_ok else ("otp-reused" if replayed else "otp")
        user.failed_attempts += 1
        _audit(session, "user.sign-in", "denied", user, now, reason=reason)
        if user.failed_attempts >= lockout_threshold:
            user.lockouts += 1
            minutes = min(2 ** (user.lockouts - 1), MAX_LOCK_MINUTES)
            user.locked_until = now + timedelta(minutes=minutes)
            user.failed_attempts = 0
            _audit(session, "user.lockout", "success", user, now, minutes=minutes)
        return SignInResult("refused")
    user.last_totp_step = step
    user.failed_attempts = 0
    user.lockouts = 0
    user.locked_until = None
    user.last_sign_in_at = now
    if user.must_change_password:
        _audit(session, "user.sign-in", "success", user, now, passwordChangeRequired=True)
        return SignInResult("must-change-password", user)
    _audit(session, "user.sign-in", "success", user, now)
    return SignInResult("signed-in", user)


class PasswordRefused(Exception):
    """A new password is not acceptable; `code` names the rule (for a translated message)."""

    def __init__(self, code: Literal["too-short", "too-long", "mismatch", "unchanged"]) -> None:
        super().__init__(code)
        self.code = code


def change_password(
    session: Session, user: UserRow, new: str, confirm: str, *, now: datetime
) -> None:
    """Replace the password (the one-time one at first sign-in); audited, never logged."""
    if len(new) < MIN_PASSWORD_LENGTH:
        raise PasswordRefused("too-short")
    if len(new) > MAX_PASSWORD_LENGTH:
        raise PasswordRefused("too-long")
    if not hmac.compare_digest(new.encode(), confirm.encode()):
        raise PasswordRefused("mismatch")
    if _password_ok(user, new):
        raise PasswordRefused("unchanged")
    user.password_hash = _hasher().hash(new)
    user.must_change_password = False
    user.password_changed_at = now
    _audit(session, "user.password-change", "success", user, now)


def set_known_password(
    session: Session, user: UserRow, password: str, *, now: datetime, actor: Actor
) -> None:
    """For the demo only: give a user a published password with no forced change, so a
    visitor can sign in at once. Audited like any change of credentials."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRefused("too-short")
    user.password_hash = _hasher().hash(password)
    user.must_change_password = False
    user.password_changed_at = now
    record_event(
        session,
        AuditEvent(
            action="user.password-set",
            outcome="success",
            actor=actor,
            resource_type="user",
            resource_id=user.id,
            detail={"mustChange": False},
        ),
        now=now,
    )


def get_user(session: Session, user_id: str) -> UserRow | None:
    return session.get(UserRow, user_id)


# -- sessions ---------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_id(token: str) -> str:
    """The stored id of the session whose cookie holds `token`."""
    return _digest(token)


def start_session(session: Session, user: UserRow, *, now: datetime) -> str:
    """A new session (a fresh id at every sign-in); returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    session.add(WebSessionRow(id=_digest(token), user_id=user.id, created_at=now, last_seen_at=now))
    return token


@dataclass(frozen=True)
class Resumed:
    user: UserRow | None
    timed_out: Literal["idle", "absolute"] | None = None
    #: Seconds until the session ends if nothing more is done, and whether activity
    #: can still push that back (not once the absolute limit is the nearer one).
    expires_in: int = 0
    extendable: bool = False


def resume_session(
    session: Session, token: str, *, now: datetime, idle: int, absolute: int
) -> Resumed:
    """The signed-in user, or None; a session past a time-out is ended and audited."""
    row = session.get(WebSessionRow, _digest(token))
    if row is None:
        return Resumed(None)
    user = session.get(UserRow, row.user_id)
    created, seen = _as_utc(row.created_at), _as_utc(row.last_seen_at)
    assert created is not None and seen is not None
    reason: Literal["idle", "absolute"] | None = None
    if now - created > timedelta(seconds=absolute):
        reason = "absolute"
    elif now - seen > timedelta(seconds=idle):
        reason = "idle"
    if (
        user is not None
        and user.organisation is not None
        and not organisation_active(session, user.organisation)
    ):
        user = None  # the organisation was disabled: its people are signed out
    if user is None or user.status != "active" or reason is not None:
        session.delete(row)
        if user is not None and reason is not None:
            _audit(session, "user.session-timeout", "success", user, now, timeout=reason)
        return Resumed(None, reason)
    row.last_seen_at = now
    left = absolute - int((now - created).total_seconds())
    return Resumed(user, expires_in=min(idle, left), extendable=left > idle)


def end_session(session: Session, token: str, user: UserRow, *, now: datetime) -> None:
    session.execute(delete(WebSessionRow).where(WebSessionRow.id == _digest(token)))
    _audit(session, "user.sign-out", "success", user, now)
