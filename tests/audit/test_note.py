"""C2SP signed notes, checkpoints and verifier keys: format, signatures, parser robustness."""

from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.note import (
    Checkpoint,
    NoteError,
    SignedNote,
    VerifierKey,
    key_hash,
    open_checkpoint,
    origin_for,
)
from gateway.audit.sequencer import CheckpointSigner
from gateway.crypto import generate_ed25519_jwk

ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    private, public = generate_ed25519_jwk()
    return CheckpointSigner("gw.example.nl:8443/audit", public["kid"], private)


def test_origin_is_issuer_host_and_port() -> None:
    assert origin_for("https://ketenpoort.example.nl") == "ketenpoort.example.nl/audit"
    assert origin_for("http://127.0.0.1:8080") == "127.0.0.1:8080/audit"


def test_checkpoint_note_layout(signer: CheckpointSigner) -> None:
    note = signer.sign(42, ROOT)
    body, signature = note.split("\n\n")
    assert body == f"gw.example.nl:8443/audit\n42\n{base64.b64encode(ROOT).decode()}"
    assert signature.startswith("\u2014 gw.example.nl:8443/audit ") and signature.endswith("\n")
    raw = base64.b64decode(signature.split(" ")[-1])
    public = signer.verifier_key.public_key
    wanted = hashlib.sha256(b"gw.example.nl:8443/audit\n\x01" + public).digest()[:4]
    assert raw[:4] == wanted == key_hash(signer.origin, public) and len(raw) == 68
    assert open_checkpoint(note, [signer.verifier_key]) == Checkpoint(signer.origin, 42, ROOT)


def test_tampered_or_foreign_notes_fail(signer: CheckpointSigner) -> None:
    note = signer.sign(42, ROOT)
    with pytest.raises(NoteError, match="signature"):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), [signer.verifier_key])
    other_private, other_public = generate_ed25519_jwk()
    other = CheckpointSigner(signer.origin, other_public["kid"], other_private)
    with pytest.raises(NoteError, match="signature"):
        open_checkpoint(note, [other.verifier_key])
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(note, [signer.verifier_key], origin="elsewhere/audit")
    # signed by the right key under another name (origin) is refused too
    renamed = CheckpointSigner("evil/audit", signer.kid, signer.private_jwk)
    with pytest.raises(NoteError):
        open_checkpoint(renamed.sign(42, ROOT), [signer.verifier_key])


@settings(max_examples=50, deadline=None)
@given(
    st.binary(min_size=32, max_size=32), st.from_regex(r"[a-z0-9.:-]{1,30}/audit", fullmatch=True)
)
def test_verifier_key_round_trip(public: bytes, name: str) -> None:
    key = VerifierKey(name, public)
    assert VerifierKey.parse(key.text()) == key


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parsers_fail_only_with_note_error(text: str) -> None:
    for parse in (SignedNote.parse, Checkpoint.parse, VerifierKey.parse):
        with contextlib.suppress(NoteError):
            parse(text)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2**63), st.binary(min_size=32, max_size=32))
def test_checkpoint_round_trip(size: int, root: bytes) -> None:
    checkpoint = Checkpoint("o/audit", size, root)
    assert Checkpoint.parse(checkpoint.text()) == checkpoint


@pytest.mark.parametrize(
    "text",
    [
        "o\n01\nAAAA\n",  # leading zero
        "o\n-1\n" + base64.b64encode(ROOT).decode() + "\n",
        "o\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n",  # short root
        "o\n1\n" + base64.b64encode(ROOT).decode(),  # no final newline
        "\n1\n" + base64.b64encode(ROOT).decode() + "\n",  # empty origin
    ],
)
def test_malformed_checkpoints(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)
