"""Signals stored as the submission path stores them: payload wrapped under its epoch."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from functools import partial

from flask import Flask

from gateway.crypto import jwe
from gateway.keys import KeyPurpose, KeyStore
from gateway.keys.epochs import seal_payload
from gateway.signals.service import NewSignal, create_signal


def store_signal(
    app: Flask,
    text: str,
    *,
    days: int,
    now: datetime | None = None,
    org: str = "politie-oost",
    kind: str = "police",
    category: str = "possible-victim",
    sealed: bool = True,
    idempotency_key: str | None = None,
) -> str:
    """An active signal whose payload (for the meldpunt) is `text`, retention `days`."""
    svc = app.extensions["ketenpoort"]
    keys: KeyStore = svc.keys
    meldpunt = keys.active(KeyPurpose.MELDPUNT_ENCRYPTION).public_jwk
    envelope = jwe.encrypt_for_recipients(text.encode(), [meldpunt], flattened=True)
    with svc.db.transaction() as session:
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
                retention_days=days,
                idempotency_key=idempotency_key,
                request_hash=b"h" * 32 if idempotency_key else None,
            ),
            now=now,
            seal=partial(seal_payload, keys) if sealed else None,
        )
    return created.signal.id
