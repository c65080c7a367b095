"""Creating users: a one-time password shown once, a TOTP secret for the authenticator.

Neither is stored in clear: the password only as an argon2id hash, the TOTP secret
sealed under the master key (the server must read it back to check codes).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.errors import OperatorError
from gateway.keys import KeyStore
from gateway.users.models import UserRow

ROLES = ("coordinator", "privacy-officer", "admin")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOTP_ISSUER = "Ketenpoort"


class UserError(OperatorError):
    """A user cannot be created as asked; the message says why."""


@dataclass(frozen=True)
class NewUser:
    id: str
    name: str
    role: str
    one_time_password: str
    totp_secret: str

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "oneTimePassword": self.one_time_password,
            "totpSecret": self.totp_secret,
            "totpUri": pyotp.TOTP(self.totp_secret).provisioning_uri(
                name=self.name, issuer_name=TOTP_ISSUER
            ),
        }


def _aad(user_id: str) -> bytes:
    return f"ketenpoort-user-totp:{user_id}".encode()


def add_user(session: Session, keys: KeyStore, *, name: str, role: str, actor: Actor) -> NewUser:
    if not _NAME.match(name):
        raise UserError(
            "the user name must be 2-64 characters: lower-case letters, digits, '.', '_', '-'"
        )
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; choose from: {', '.join(ROLES)}")
    if session.execute(select(UserRow.id).where(UserRow.name == name)).first() is not None:
        raise UserError(f"a user named {name!r} exists")
    user_id = str(uuid.uuid4())
    password = secrets.token_urlsafe(18)
    totp_secret = pyotp.random_base32()
    session.add(
        UserRow(
            id=user_id,
            name=name,
            role=role,
            password_hash=PasswordHasher().hash(password),
            must_change_password=True,
            totp_secret_sealed=json.dumps(keys.seal_secret(totp_secret.encode(), _aad(user_id))),
            status="active",
            created_at=datetime.now(UTC),
        )
    )
    record_event(
        session,
        AuditEvent(
            action="user.register",
            outcome="success",
            actor=actor,
            resource_type="user",
            resource_id=user_id,
            detail={"role": role},
        ),
    )
    return NewUser(user_id, name, role, password, totp_secret)


def totp_secret_of(keys: KeyStore, row: UserRow) -> str:
    """The user's TOTP secret, unsealed (for checking a code at sign-in)."""
    return keys.unseal_secret(json.loads(row.totp_secret_sealed), _aad(row.id)).decode()
