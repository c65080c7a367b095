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
from sqlalchemy import column, select, table
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.errors import OperatorError
from gateway.keys import KeyStore
from gateway.users.models import UserRow

ROLES = ("coordinator", "privacy-officer", "admin", "professional")
#: The role of a person at a partner organisation (web intake); the only role that
#: belongs to an organisation other than the meldpunt.
PROFESSIONAL = "professional"
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
    organisation: str | None = None

    def as_json(self) -> dict[str, str]:
        extra = {"organisation": self.organisation} if self.organisation else {}
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            **extra,
            "oneTimePassword": self.one_time_password,
            "totpSecret": self.totp_secret,
            "totpUri": pyotp.TOTP(self.totp_secret).provisioning_uri(
                name=self.name, issuer_name=TOTP_ISSUER
            ),
        }


def _aad(user_id: str) -> bytes:
    return f"ketenpoort-user-totp:{user_id}".encode()


#: The partner registry's table, read by name: `gateway.partners` and `gateway.users` sit
#: side by side in the layers and import nothing of each other (the foreign key
#: `users.organisation` names the same table).
_ORGANISATIONS = table("organisations", column("id"), column("kind"), column("status"))


@dataclass(frozen=True)
class _Organisation:
    id: str
    kind: str
    status: str


def organisation_active(session: Session, organisation: str) -> bool:
    """Is the partner organisation registered and not disabled? (Its professionals can
    sign in only then.)"""
    status = session.execute(
        select(_ORGANISATIONS.c.status).where(_ORGANISATIONS.c.id == organisation)
    ).scalar_one_or_none()
    return status == "active"


def _organisation_of(session: Session, role: str, organisation: str | None) -> _Organisation | None:
    """A professional's registered, active partner organisation; nobody else has one."""
    if role != PROFESSIONAL:
        if organisation is not None:
            raise UserError(
                f"only a {PROFESSIONAL} belongs to an organisation; drop --organisation"
            )
        return None
    if not organisation:
        raise UserError(f"a {PROFESSIONAL} needs --organisation ORG (a registered partner)")
    row = session.execute(
        select(_ORGANISATIONS.c.id, _ORGANISATIONS.c.kind, _ORGANISATIONS.c.status).where(
            _ORGANISATIONS.c.id == organisation
        )
    ).first()
    if row is None:
        raise UserError(
            f"no partner organisation {organisation!r} is registered "
            "(see `ketenpoort partners list`)"
        )
    found = _Organisation(str(row.id), str(row.kind), str(row.status))
    if found.status != "active":
        raise UserError(f"the organisation {organisation!r} is disabled")
    if found.kind == "meldpunt":
        raise UserError("the meldpunt's own people are coordinators, not professionals")
    return found


def add_user(
    session: Session,
    keys: KeyStore,
    *,
    name: str,
    role: str,
    actor: Actor,
    organisation: str | None = None,
) -> NewUser:
    """A new user; a `professional` belongs to a registered partner `organisation`."""
    if not _NAME.match(name):
        raise UserError(
            "the user name must be 2-64 characters: lower-case letters, digits, '.', '_', '-'"
        )
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; choose from: {', '.join(ROLES)}")
    org = _organisation_of(session, role, organisation)
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
            organisation=org.id if org is not None else None,
            organisation_kind=org.kind if org is not None else None,
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
            detail={"role": role, **({"organisation": org.id} if org is not None else {})},
        ),
    )
    return NewUser(user_id, name, role, password, totp_secret, org.id if org is not None else None)


def totp_secret_of(keys: KeyStore, row: UserRow) -> str:
    """The user's TOTP secret, unsealed (for checking a code at sign-in)."""
    return keys.unseal_secret(json.loads(row.totp_secret_sealed), _aad(row.id)).decode()
