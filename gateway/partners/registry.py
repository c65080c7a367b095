"""The partner registry: register organisations and clients, disable them, list them.

Every change records an audit entry in the caller's session, so a registration and its
entry commit together. Keys are checked here (public only, with `kid`, RSA ≥ 2048,
EC P-256) so that nothing unusable or secret reaches the database.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.crypto.jose import JoseError, check_public_jwk, key_use
from gateway.errors import OperatorError
from gateway.partners.kinds import KINDS as KINDS  # re-exported
from gateway.partners.models import OAuthClient, Organisation

BASE_SCOPES = (
    "signals:write",
    "signals:read",
    "notifications:read",
    "directory:read",
    "shares:read",
)
#: Published figures (`GET /v1/figures`): the meldpunt's and the municipalities' systems.
FIGURES_SCOPE = "figures:read"
FIGURES_KINDS = frozenset({"meldpunt", "municipality"})
#: Every scope there is; a meldpunt client may get any of them.
MELDPUNT_SCOPES = (*BASE_SCOPES, "cases:write", "audit:read", FIGURES_SCOPE)
#: Scopes no single client may hold together unless the policy's `separate_scopes` says
#: otherwise: the system that changes cases is not the one that reviews the log.
DEFAULT_SEPARATE_SCOPES: tuple[tuple[str, ...], ...] = (("audit:read", "cases:write"),)
MELDPUNT_ID = "meldpunt"
MELDPUNT_NAME = "Meldpunt"

_ORG_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
#: Ids no organisation may have: roles, the gateway itself, and names an operator or a
#: reader of the audit log would take for the meldpunt's own (security finding 6).
RESERVED_IDS = frozenset(
    {
        "coordinator", "coordinators", "coordinatoren", "privacy-officer", "privacy",
        "fg", "dpo", "admin", "administrator", "admins", "professional", "professionals",
        "gateway", "system", "ketenpoort", "anonymous", "unknown", "root", "role",
        "roles", "all", "everyone", "meldpunt-coordinator", "meldpunt-intern",
        "meldpunt-internal", "meldpunt-admin", "meldpunt-staff", "cli",
    }
)  # fmt: skip


class RegistryError(OperatorError):
    """A registration cannot be done; the message tells the operator why."""


@dataclass(frozen=True)
class ClientRecord:
    """A client with its organisation, as the authorization server needs it."""

    client_id: str
    organisation: str
    organisation_kind: str
    signing_keys: tuple[dict[str, Any], ...]
    scopes: frozenset[str]
    require_dpop: bool
    active: bool


def load_jwks_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the JWKS file ({exc.strerror})") from None
    except ValueError:
        raise RegistryError(f"{path}: not a JSON file") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise RegistryError(f'{path}: a JWKS file must be {{"keys": [...]}}')
    return data


def split_jwks(jwks: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check every key and sort them into (signing keys, encryption keys)."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise RegistryError("the JWKS has no keys")
    signing: list[dict[str, Any]] = []
    encryption: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, raw in enumerate(keys):
        try:
            key = check_public_jwk(raw)
        except JoseError as exc:
            raise RegistryError(f"key #{position + 1}: {exc}") from None
        kid = str(key["kid"])
        if kid in seen:
            raise RegistryError(f"key #{position + 1}: kid {kid!r} appears twice")
        seen.add(kid)
        use = key_use(key)
        if use is None:
            raise RegistryError(
                f"key {kid!r} has neither `use` nor an `alg` that says what it is for"
            )
        (signing if use == "sig" else encryption).append({**key, "use": use})
    return signing, encryption


def allowed_scopes(kind: str) -> tuple[str, ...]:
    """The scopes a client of an organisation of `kind` may be registered with."""
    if kind == "meldpunt":
        return MELDPUNT_SCOPES
    return (*BASE_SCOPES, FIGURES_SCOPE) if kind in FIGURES_KINDS else BASE_SCOPES


def parse_scopes(scope: str | None, kind: str) -> tuple[str, ...]:
    allowed = allowed_scopes(kind)
    if scope is None:
        return BASE_SCOPES
    wanted = tuple(dict.fromkeys(scope.split()))
    if not wanted:
        raise RegistryError("--scope names no scope")
    unknown = [s for s in wanted if s not in allowed]
    if unknown:
        raise RegistryError(
            f"scope(s) {', '.join(unknown)} not allowed for a {kind} organisation; "
            f"choose from: {' '.join(allowed)}"
        )
    return wanted


def check_separation(
    scopes: tuple[str, ...], separate: Sequence[Sequence[str]] = DEFAULT_SEPARATE_SCOPES
) -> None:
    """Refuse a client that would hold every scope of one of the `separate` sets."""
    for group in separate:
        if len(group) > 1 and set(group) <= set(scopes):
            raise RegistryError(
                f"one client may not hold both {' and '.join(group)} (separation of duties, "
                "the policy's separate_scopes); register a client for each"
            )


def _new_client_id(org_id: str) -> str:
    return f"{org_id}-{secrets.token_hex(6)}"


#: Bumped whenever this process changes the directory (an organisation added or disabled,
#: the meldpunt's key replaced), so per-process directory caches reload at once; other
#: processes see the change when their short cache lifetime ends.
_directory_generation = 0


def directory_generation() -> int:
    return _directory_generation


def _directory_changed(session: Session) -> None:
    """Invalidate directory caches now and again when `session` commits (or rolls back):
    a cache refilled between the change and its commit would otherwise keep the old view."""
    global _directory_generation
    _directory_generation += 1

    def bump(_: Session) -> None:
        global _directory_generation
        _directory_generation += 1

    event.listen(session, "after_commit", bump, once=True)
    event.listen(session, "after_rollback", bump, once=True)


def get_organisation(session: Session, org_id: str) -> Organisation | None:
    return session.get(Organisation, org_id)


def add_organisation(
    session: Session,
    *,
    org_id: str,
    name: str,
    kind: str,
    encryption_keys: Iterable[Mapping[str, Any]],
    actor: Actor,
    now: int | None = None,
) -> Organisation:
    if not _ORG_ID.match(org_id):
        raise RegistryError(
            "organisation id must be 2-63 characters: lower-case letters, digits, hyphens"
        )
    if org_id in RESERVED_IDS:
        raise RegistryError(f"organisation id {org_id!r} is reserved; choose another")
    if kind not in KINDS:
        raise RegistryError(f"unknown kind {kind!r}; choose from: {', '.join(KINDS)}")
    if kind == "meldpunt" and org_id != MELDPUNT_ID:
        raise RegistryError(
            "there is one meldpunt organisation, created by `ketenpoort init`; "
            "add its systems with `ketenpoort clients add meldpunt`"
        )
    if not name.strip():
        raise RegistryError("--name must not be empty")
    if session.get(Organisation, org_id) is not None:
        raise RegistryError(
            f"organisation {org_id!r} exists; add a client with `ketenpoort clients add`"
        )
    org = Organisation(
        id=org_id,
        name=name.strip(),
        kind=kind,
        encryption_jwks={"keys": [dict(k) for k in encryption_keys]},
        status="active",
        created_at=now or int(time.time()),
    )
    session.add(org)
    session.flush()
    _directory_changed(session)
    record_event(
        session,
        AuditEvent(
            action="partner.register",
            outcome="success",
            actor=actor,
            resource_type="organisation",
            resource_id=org_id,
            detail={
                "kind": kind,
                "encryptionKeyIds": [k["kid"] for k in org.encryption_jwks["keys"]],
            },
        ),
    )
    return org


def add_client(
    session: Session,
    *,
    org_id: str,
    signing_keys: list[dict[str, Any]],
    scopes: tuple[str, ...],
    require_dpop: bool,
    actor: Actor,
    client_id: str | None = None,
    now: int | None = None,
) -> OAuthClient:
    org = session.get(Organisation, org_id)
    if org is None:
        raise RegistryError(f"no organisation {org_id!r}; register it with `partners add`")
    if org.status != "active":
        raise RegistryError(f"organisation {org_id!r} is disabled")
    if not signing_keys:
        raise RegistryError("the JWKS has no signing key (`use: sig`) for the client")
    allowed = allowed_scopes(org.kind)
    if not set(scopes) <= set(allowed) or not scopes:
        raise RegistryError(f"scopes must be among: {' '.join(allowed)}")
    client = OAuthClient(
        client_id=client_id or _new_client_id(org_id),
        organisation_id=org_id,
        signing_jwks={"keys": signing_keys},
        scopes=" ".join(scopes),
        require_dpop=require_dpop,
        status="active",
        created_at=now or int(time.time()),
    )
    session.add(client)
    session.flush()
    record_event(
        session,
        AuditEvent(
            action="client.register",
            outcome="success",
            actor=actor,
            resource_type="oauth-client",
            resource_id=client.client_id,
            detail={
                "organisation": org_id,
                "scopes": list(scopes),
                "requireDpop": require_dpop,
                "signingKeyIds": [k["kid"] for k in signing_keys],
            },
        ),
    )
    return client


def disable_organisation(session: Session, org_id: str, *, actor: Actor) -> Organisation:
    """Disable an organisation and all its clients: their tokens stop working at once."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise RegistryError(f"no organisation {org_id!r}")
    if org.id == MELDPUNT_ID:
        raise RegistryError("the meldpunt organisation cannot be disabled")
    now = int(time.time())
    clients = session.scalars(
        select(OAuthClient).where(OAuthClient.organisation_id == org_id)
    ).all()
    already = org.status == "disabled"
    _directory_changed(session)
    org.status = "disabled"
    org.disabled_at = org.disabled_at or now
    for client in clients:
        client.status = "disabled"
    record_event(
        session,
        AuditEvent(
            action="partner.disable",
            outcome="success",
            actor=actor,
            resource_type="organisation",
            resource_id=org_id,
            detail={"clients": sorted(c.client_id for c in clients), "alreadyDisabled": already},
        ),
    )
    return org


def list_organisations(session: Session) -> list[dict[str, Any]]:
    orgs = session.scalars(select(Organisation).order_by(Organisation.id)).all()
    clients = session.scalars(select(OAuthClient).order_by(OAuthClient.client_id)).all()
    by_org: dict[str, list[dict[str, Any]]] = {}
    for c in clients:
        by_org.setdefault(c.organisation_id, []).append(
            {
                "client_id": c.client_id,
                "scopes": c.scopes.split(),
                "requireDpop": c.require_dpop,
                "status": c.status,
            }
        )
    return [
        {
            "id": o.id,
            "name": o.name,
            "kind": o.kind,
            "status": o.status,
            "encryptionKeyIds": [k.get("kid") for k in o.encryption_jwks.get("keys", [])],
            "clients": by_org.get(o.id, []),
        }
        for o in orgs
    ]


def organisation_names(session: Session, org_ids: Iterable[str | None]) -> dict[str, str]:
    """The display names of these organisations, in one query; an id no organisation has
    (never registered, or a typo in an old audit entry) is left out. A disabled
    organisation keeps its name."""
    wanted = sorted({org_id for org_id in org_ids if org_id})
    if not wanted:
        return {}
    rows = session.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(wanted))
    )
    return {org_id: name for org_id, name in rows}


def active_directory(session: Session) -> list[Organisation]:
    return list(
        session.scalars(
            select(Organisation).where(Organisation.status == "active").order_by(Organisation.id)
        ).all()
    )


@dataclass(frozen=True)
class ClientStanding:
    """What a resource server needs to know about a token's client on every request."""

    organisation: str
    organisation_kind: str
    active: bool


def _is_active(client_status: str, organisation_status: str) -> bool:
    """A client acts only while it and its organisation are both active."""
    return client_status == "active" and organisation_status == "active"


def standing_of(
    client_status: str, organisation: str, kind: str, organisation_status: str
) -> ClientStanding:
    """The standing of a client from its and its organisation's columns."""
    return ClientStanding(organisation, kind, _is_active(client_status, organisation_status))


def find_client(session: Session, client_id: str) -> ClientRecord | None:
    row = session.execute(
        select(OAuthClient, Organisation)
        .join(Organisation, Organisation.id == OAuthClient.organisation_id)
        .where(OAuthClient.client_id == client_id)
    ).first()
    if row is None:
        return None
    client, org = row
    return ClientRecord(
        client_id=client.client_id,
        organisation=org.id,
        organisation_kind=org.kind,
        signing_keys=tuple(client.signing_jwks.get("keys", [])),
        scopes=frozenset(client.scopes.split()),
        require_dpop=client.require_dpop,
        active=_is_active(client.status, org.status),
    )


def ensure_meldpunt(session: Session, encryption_jwk: Mapping[str, Any], *, actor: Actor) -> bool:
    """Create the meldpunt organisation, or bring its key up to the key store's; idempotent.

    Returns True when something changed.
    """
    public = {k: v for k, v in encryption_jwk.items() if k not in {"d"}}
    public["use"] = "enc"
    org = session.get(Organisation, MELDPUNT_ID)
    if org is None:
        add_organisation(
            session,
            org_id=MELDPUNT_ID,
            name=MELDPUNT_NAME,
            kind="meldpunt",
            encryption_keys=[public],
            actor=actor,
        )
        return True
    if org.encryption_jwks.get("keys") != [public]:
        _directory_changed(session)
        org.encryption_jwks = {"keys": [public]}
        record_event(
            session,
            AuditEvent(
                action="partner.update",
                outcome="success",
                actor=actor,
                resource_type="organisation",
                resource_id=MELDPUNT_ID,
                detail={"encryptionKeyIds": [public.get("kid")]},
            ),
        )
        return True
    return False


def publish_meldpunt_keys(
    session: Session, encryption_jwks: list[Mapping[str, Any]], *, actor: Actor
) -> None:
    """Publish the meldpunt's encryption keys in the directory, newest first (a key
    rotation: partners encrypt for the new key, the previous one is still accepted
    until the next rotation or `ketenpoort init`)."""
    org = session.get(Organisation, MELDPUNT_ID)
    if org is None:
        raise OperatorError("the meldpunt organisation does not exist; run `ketenpoort init`")
    keys = [{**{k: v for k, v in jwk.items() if k != "d"}, "use": "enc"} for jwk in encryption_jwks]
    _directory_changed(session)
    org.encryption_jwks = {"keys": keys}
    record_event(
        session,
        AuditEvent(
            action="partner.update",
            outcome="success",
            actor=actor,
            resource_type="organisation",
            resource_id=MELDPUNT_ID,
            detail={"encryptionKeyIds": [k.get("kid") for k in keys]},
        ),
    )


def _partner_client(session: Session, org_id: str, client_id: str | None) -> OAuthClient:
    """The client whose signing keys change: `client_id`, or the organisation's only
    active client."""
    found = session.scalars(
        select(OAuthClient)
        .where(OAuthClient.organisation_id == org_id, OAuthClient.status == "active")
        .order_by(OAuthClient.client_id)
    ).all()
    if client_id is not None:
        for client in found:
            if client.client_id == client_id:
                return client
        raise RegistryError(f"organisation {org_id!r} has no active client {client_id!r}")
    if len(found) != 1:
        names = ", ".join(c.client_id for c in found) or "none"
        raise RegistryError(
            f"organisation {org_id!r} has {len(found)} active clients ({names}); name one "
            "with --client"
        )
    return found[0]


def add_partner_keys(
    session: Session,
    org_id: str,
    jwks: Mapping[str, Any],
    *,
    actor: Actor,
    client_id: str | None = None,
) -> dict[str, Any]:
    """Add a partner's new public keys beside its current ones (a key rotation on the
    partner's side): `use: sig` keys to its client, `use: enc` keys to its organisation
    (first, so the directory lists the newest first). Old keys keep working until
    `remove_partner_key`; one audit entry."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise RegistryError(f"no organisation {org_id!r}")
    if org.status != "active":
        raise RegistryError(f"organisation {org_id!r} is disabled")
    signing, encryption = split_jwks(jwks)
    client = _partner_client(session, org_id, client_id) if signing else None
    known = {k.get("kid") for k in org.encryption_jwks.get("keys", [])}
    if client is not None:
        known |= {k.get("kid") for k in client.signing_jwks.get("keys", [])}
    repeated = sorted(str(k["kid"]) for k in signing + encryption if k["kid"] in known)
    if repeated:
        raise RegistryError(f"key(s) {', '.join(repeated)} are registered already")
    if client is not None:
        client.signing_jwks = {"keys": [*client.signing_jwks.get("keys", []), *signing]}
    if encryption:
        _directory_changed(session)
        org.encryption_jwks = {"keys": [*encryption, *org.encryption_jwks.get("keys", [])]}
    record_event(
        session,
        AuditEvent(
            action="partner.keys.add",
            outcome="success",
            actor=actor,
            resource_type="organisation",
            resource_id=org_id,
            detail={
                "client": client.client_id if client is not None else None,
                "signingKeyIds": [k["kid"] for k in signing],
                "encryptionKeyIds": [k["kid"] for k in encryption],
            },
        ),
    )
    return {
        "organisation": org_id,
        "clientId": client.client_id if client is not None else None,
        "signingKeyIds": [k["kid"] for k in (client.signing_jwks["keys"] if client else [])],
        "encryptionKeyIds": [k["kid"] for k in org.encryption_jwks.get("keys", [])],
    }


def remove_partner_key(session: Session, org_id: str, kid: str, *, actor: Actor) -> dict[str, Any]:
    """Remove one of a partner's keys by `kid` once it is no longer needed (after a
    rotation); never its last signing key of a client nor its last encryption key."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise RegistryError(f"no organisation {org_id!r}")
    where = None
    keys = org.encryption_jwks.get("keys", [])
    if any(k.get("kid") == kid for k in keys):
        if len(keys) == 1:
            raise RegistryError(f"{kid!r} is the last encryption key of {org_id!r}")
        _directory_changed(session)
        org.encryption_jwks = {"keys": [k for k in keys if k.get("kid") != kid]}
        where = "encryption"
    for client in session.scalars(
        select(OAuthClient).where(OAuthClient.organisation_id == org_id)
    ).all():
        signing = client.signing_jwks.get("keys", [])
        if any(k.get("kid") == kid for k in signing):
            if len(signing) == 1:
                raise RegistryError(f"{kid!r} is the last signing key of {client.client_id!r}")
            client.signing_jwks = {"keys": [k for k in signing if k.get("kid") != kid]}
            where = "signing"
    if where is None:
        raise RegistryError(f"organisation {org_id!r} has no key {kid!r}")
    record_event(
        session,
        AuditEvent(
            action="partner.keys.remove",
            outcome="success",
            actor=actor,
            resource_type="organisation",
            resource_id=org_id,
            detail={"kid": kid, "use": where},
        ),
    )
    return {"organisation": org_id, "removed": kid, "use": where}
