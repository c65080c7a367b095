"""C2SP signed notes and tlog checkpoints, pure formatting and parsing rules.

Shared by the writer (which signs) and the verifier (which checks); the signature
primitives are in `gateway.crypto.ed25519`.

- signed-note: the text, a blank line, then lines `— <name> <base64(keyhash4 || sig)>`;
  key hash = SHA-256(name || 0x0A || 0x01 || pubkey)[:4]; the verifier key is
  `<name>+<hex keyhash>+<base64(0x01 || pubkey)>` (https://c2sp.org/signed-note).
- tlog-checkpoint: the text is `<origin>\\n<tree size>\\n<base64 root>\\n`
  (https://c2sp.org/tlog-checkpoint).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.crypto import ed25519

ED25519_ALGORITHM = 0x01
SIGNATURE_DASH = "\u2014 "
_NAME = re.compile(r"^[^\s+]+$")
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


class NoteError(ValueError):
    """A note, checkpoint or verifier key is malformed."""


def key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_ALGORITHM]) + public_key).digest()[
        :4
    ]


def check_name(name: str) -> str:
    if not name or not _NAME.match(name):
        raise NoteError("a key name is non-empty and has no spaces or plus signs")
    return name


@dataclass(frozen=True)
class VerifierKey:
    name: str
    public_key: bytes

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    def text(self) -> str:
        encoded = base64.b64encode(bytes([ED25519_ALGORITHM]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)  # the key itself may hold "+"
        if len(parts) != 3:
            raise NoteError("a verifier key is <name>+<hash>+<key>")
        name, hash_hex, encoded = parts
        check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
            wanted = bytes.fromhex(hash_hex)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("verifier key is not valid base64/hex") from exc
        if len(raw) != 33 or raw[0] != ED25519_ALGORITHM or len(hash_hex) != 8:
            raise NoteError("only Ed25519 verifier keys are supported")
        key = cls(name, raw[1:])
        if key.key_hash != wanted:
            raise NoteError("verifier key hash does not match its name and key")
        return key


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: bytes
    signature: bytes

    def line(self) -> str:
        encoded = base64.b64encode(self.key_hash + self.signature).decode()
        return f"{SIGNATURE_DASH}{self.name} {encoded}\n"


@dataclass(frozen=True)
class SignedNote:
    text: str  # ends in a newline
    signatures: tuple[Signature, ...]

    def serialise(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def parse(cls, note: str) -> SignedNote:
        text, sep, sigs = note.rpartition("\n\n")
        if not sep or not text:
            raise NoteError("a signed note is text, a blank line and signatures")
        text += "\n"
        if not sigs.endswith("\n"):
            raise NoteError("a signed note ends in a newline")
        signatures = []
        for line in sigs[:-1].split("\n"):
            if not line.startswith(SIGNATURE_DASH):
                raise NoteError("a signature line starts with an em dash and a space")
            name, _, encoded = line[len(SIGNATURE_DASH) :].partition(" ")
            check_name(name)
            try:
                raw = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise NoteError("signature is not valid base64") from exc
            if len(raw) < 5:
                raise NoteError("signature too short")
            signatures.append(Signature(name, raw[:4], raw[4:]))
        if not signatures:
            raise NoteError("a signed note has at least one signature")
        return cls(text, tuple(signatures))


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint has origin, size and root lines")
        origin, size, root = lines[0], lines[1], lines[2]
        if not origin or not _SIZE.match(size):
            raise NoteError("checkpoint origin or size is malformed")
        try:
            raw = base64.b64decode(root, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("checkpoint root is not base64") from exc
        if len(raw) != 32:
            raise NoteError("checkpoint root must be 32 bytes")
        return cls(origin, int(size), raw)


def origin_for(issuer: str) -> str:
    """The log's origin (and key name): the issuer's host, with its port, then `/audit`."""
    rest = issuer.split("://", 1)[-1]
    host = rest.split("/", 1)[0]
    return f"{host}/audit"


def sign_note(text: str, name: str, private_jwk: dict[str, Any], *more: dict[str, Any]) -> str:
    """The signed note for `text` under an Ed25519 key named `name`, and under `more`
    keys of the same name (a key rotation: the old key co-signs the new key's first
    checkpoint, so a verifier that knows only the old key can follow to the new one)."""
    check_name(name)
    signatures = []
    for jwk in (private_jwk, *more):
        public = ed25519.public_key_bytes(jwk)
        signature = ed25519.sign(jwk, text.encode())
        signatures.append(Signature(name, key_hash(name, public), signature))
    return SignedNote(text, tuple(signatures)).serialise()


def checkpoint_signers(
    note: str, keys: Sequence[VerifierKey], *, origin: str | None = None
) -> tuple[Checkpoint, list[VerifierKey]]:
    """The checkpoint in `note` and those of `keys` whose signature on it is valid (in
    the order of `keys`); `NoteError` when none is, or the note is malformed."""
    signed = SignedNote.parse(note)
    checkpoint = Checkpoint.parse(signed.text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    found: list[VerifierKey] = []
    for key in keys:
        for sig in signed.signatures:
            if (
                sig.name == key.name
                and sig.key_hash == key.key_hash
                and ed25519.verify(key.public_key, signed.text.encode(), sig.signature)
            ):
                if checkpoint.origin != key.name:
                    raise NoteError("checkpoint origin differs from its key name")
                found.append(key)
                break
    if not found:
        hashes = ", ".join(s.key_hash.hex() for s in signed.signatures)
        raise NoteError(
            f"no valid signature by a known key on this checkpoint (signed by key hash "
            f"{hashes}: a key this verifier does not know; a rotated key is accepted only "
            "through a checkpoint its predecessor co-signed)"
        )
    return checkpoint, found


def open_checkpoint(
    note: str, keys: Sequence[VerifierKey], *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint in `note` if one of `keys` signed it (and its origin is `origin`)."""
    return checkpoint_signers(note, keys, origin=origin)[0]


@dataclass(frozen=True)
class KeyLink:
    """One checkpoint key of a log and the first checkpoint it signed (co-signed by the
    key before it), as `GET /v1/audit/key-chain` lists them, oldest first."""

    key: VerifierKey
    note: str | None  # None: the key has signed no checkpoint yet

    @property
    def tree_size(self) -> int | None:
        return (
            None if self.note is None else Checkpoint.parse(SignedNote.parse(self.note).text).size
        )


def follow_key_chain(
    trusted: VerifierKey, links: Sequence[KeyLink], *, origin: str | None = None
) -> list[KeyLink]:
    """The links a verifier that trusts `trusted` may follow, in order: each one's first
    checkpoint carries valid signatures by the key in force and by the link's own key.
    A key reached no other way is never trusted (the caller says so)."""
    taken: list[KeyLink] = []
    current = trusted
    for link in links:
        if link.note is None or link.key == current:
            continue
        try:
            _, signers = checkpoint_signers(link.note, [current, link.key], origin=origin)
        except NoteError:
            continue
        if current in signers and link.key in signers:
            taken.append(link)
            current = link.key
    return taken
