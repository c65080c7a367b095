"""Key rotation without downtime: `ketenpoort keys rotate KIND`, each one audited.

- `token-signing`: a new ES256 key, published in the JWKS at once and used for signing
  only after the JWKS cache time (`gateway.oauth.keys`); the old key is retired and
  stays in the JWKS, so every token it signed verifies until it expires.
- `checkpoint`: a new Ed25519 checkpoint key; the sequencer picks it up within a
  minute. The old key is retired and stays in the key store, so `audit verify` checks
  the checkpoints it signed.
- `encryption` (the meldpunt's): a new key; the directory publishes it first with the
  previous one beside it, so a partner encrypting from a directory copy made before the
  rotation is not refused; stored payloads keep naming the key they were encrypted for,
  and retired keys still decrypt them.

Each process reads the key store again when its files change (`KeyStore` watches their
names, sizes and times), so several gateway processes follow without a restart.
"""

from __future__ import annotations

from typing import Any

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.db import Database
from gateway.errors import OperatorError
from gateway.keys import KeyPurpose, KeyStore
from gateway.logs import get_logger
from gateway.partners.registry import publish_meldpunt_keys

log = get_logger(__name__)

KINDS: dict[str, KeyPurpose] = {
    "token-signing": KeyPurpose.TOKEN_SIGNING,
    "checkpoint": KeyPurpose.AUDIT_CHECKPOINT,
    "encryption": KeyPurpose.MELDPUNT_ENCRYPTION,
}


def rotate_key(db: Database, keys: KeyStore, kind: str, *, actor: Actor) -> dict[str, Any]:
    """Create the new key of `kind`, publish it, retire the old ones; one audit entry."""
    purpose = KINDS.get(kind)
    if purpose is None:
        raise OperatorError(f"cannot rotate {kind!r}: one of {', '.join(KINDS)}")
    previous = [r for r in keys.records(purpose) if r.status == "active"]
    new = keys.create(purpose)
    try:
        with db.transaction() as session:
            if purpose is KeyPurpose.MELDPUNT_ENCRYPTION:
                published = [new.public_jwk] + [r.public_jwk for r in previous[-1:]]
                publish_meldpunt_keys(session, [k for k in published if k], actor=actor)
            record_event(
                session,
                AuditEvent(
                    action="key.rotate",
                    outcome="success",
                    actor=actor,
                    resource_type="key",
                    resource_id=new.kid,
                    detail={
                        "kind": kind,
                        "purpose": purpose.value,
                        "retired": [r.kid for r in previous],
                    },
                ),
            )
    except BaseException:
        keys.retire(new.kid)  # never left active without its audit entry
        raise
    for record in previous:
        keys.retire(record.kid)
    log.info("key rotated", kind=kind, kid=new.kid, retired=[r.kid for r in previous])
    return {
        "kind": kind,
        "kid": new.kid,
        "algorithm": new.algorithm,
        "retired": [r.kid for r in previous],
    }
