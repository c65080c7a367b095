"""The checkpoint key chain: the first checkpoint under a new key is co-signed by the old
one; a verifier follows the chain and refuses a key nobody handed over to."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway import crypto
from gateway.audit.note import (
    Checkpoint,
    KeyLink,
    NoteError,
    VerifierKey,
    checkpoint_signers,
    follow_key_chain,
    sign_note,
)
from gateway.audit.sequencer import (
    CheckpointSigner,
    sequence_pending,
    signer_from,
    verifier_keys,
)
from gateway.audit.verify import KeyChain, Report, verify_log
from gateway.audit.verify_rows import database_source
from gateway.config import Settings
from gateway.crypto import ed25519
from gateway.db import Database
from gateway.keys import KeyPurpose, KeyStore
from tests.audit.conftest import write_events

ORIGIN = "gateway.example/audit"


def _key() -> tuple[dict[str, Any], VerifierKey]:
    private, _ = crypto.generate_ed25519_jwk()
    return private, VerifierKey(ORIGIN, ed25519.public_key_bytes(private))


def _note(size: int, *jwks: dict[str, Any]) -> str:
    text = Checkpoint(ORIGIN, size, bytes([size % 256]) * 32).text()
    return sign_note(text, ORIGIN, *jwks)


def test_a_co_signed_note_carries_both_signatures_and_each_verifies() -> None:
    (old, old_key), (new, new_key) = _key(), _key()
    note = _note(5, new, old)
    assert note.count("\u2014 ") == 2
    checkpoint, signers = checkpoint_signers(note, [old_key, new_key], origin=ORIGIN)
    assert checkpoint.size == 5 and signers == [old_key, new_key]


def test_the_chain_moves_to_a_new_key_only_through_a_co_signed_checkpoint() -> None:
    (a, key_a), (b, key_b), (c, key_c) = _key(), _key(), _key()
    links = [KeyLink(key_a, _note(1, a)), KeyLink(key_b, _note(3, b, a)), KeyLink(key_c, None)]
    assert [link.key for link in follow_key_chain(key_a, links)] == [key_b]
    assert links[1].tree_size == 3
    # a key that signed without its predecessor's signature is not followed
    forged = [KeyLink(key_a, _note(1, a)), KeyLink(key_c, _note(3, c))]
    assert follow_key_chain(key_a, forged) == []

    chain = KeyChain([key_a, key_b, key_c])
    for signers in ([key_a], [key_a, key_b], [key_b]):
        chain.follow(signers)
    assert chain.current == key_b
    with pytest.raises(NoteError, match="breaks the key chain"):
        chain.follow([key_c])  # C signs without B's co-signature
    with pytest.raises(NoteError, match="breaks the key chain"):
        KeyChain([key_a, key_b], key_b).follow([key_a])  # back to the old key


def test_a_checkpoint_signed_only_by_an_unknown_key_is_refused_clearly() -> None:
    (_, key_a), (b, _) = _key(), _key()
    with pytest.raises(NoteError, match="a key this verifier does not know") as caught:
        checkpoint_signers(_note(2, b), [key_a], origin=ORIGIN)
    hashed = base64.b64decode(_note(2, b).rsplit(" ", 1)[1])[:4].hex()
    assert hashed in str(caught.value)


def test_the_database_verifier_follows_a_co_signed_rotation_and_flags_a_broken_one(
    database: Database, keys: KeyStore, settings: Settings
) -> None:
    signer = signer_from(keys, settings.issuer)
    write_events(database, 3)
    sequence_pending(database, signer)
    old = keys.active(KeyPurpose.AUDIT_CHECKPOINT)
    keys.create(KeyPurpose.AUDIT_CHECKPOINT)
    keys.retire(old.kid)
    write_events(database, 2)
    sequence_pending(database, signer)  # the stale signer follows the store: co-signed
    assert verify_db(settings, keys).ok

    # a key that takes over without the old key's co-signature breaks the chain
    rogue = keys.create(KeyPurpose.AUDIT_CHECKPOINT)
    alone = CheckpointSigner(signer.origin, rogue.kid, keys.private_jwk(rogue.kid))
    write_events(database, 1)
    sequence_pending(database, alone)
    report = verify_db(settings, keys)
    assert not report.ok
    assert report.first_bad is not None and "breaks the key chain" in report.first_bad.problem


def verify_db(settings: Settings, keys: KeyStore) -> Report:
    entries, notes, close = database_source(settings.database_url)
    try:
        return verify_log(entries, notes, verifier_keys(keys, settings.issuer))
    finally:
        close()
