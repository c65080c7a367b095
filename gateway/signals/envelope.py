"""The envelope check for signal payloads (DESIGN.md, "Payloads").

A partner encrypts the payload itself, as a JWE for the recipients the policy names;
the gateway stores it as received and can read only the meldpunt's copy. On arrival we
check that the envelope is one every recipient can open with a key it holds now, and
that the meldpunt's copy really decrypts: an unreadable signal is a lost signal. The
plaintext exists only inside `gateway.crypto.jwe.check_decrypts` and is dropped there.

Each kind of failure has its own problem type, so a partner's integration can tell
"encrypt for the police too" from "your library wrote a broken JWE".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.crypto import b64url_decode, jwe
from gateway.errors import FieldError, InputErrors, InternalError, InvalidInput

MAX_ENVELOPE_BYTES = 64 * 1024

#: kid -> (organisation id, public JWK) for every CURRENT encryption key in the directory.
Directory = Mapping[str, tuple[str, Mapping[str, Any]]]


class MalformedEnvelope(InvalidInput):
    slug = "malformed-envelope"
    title = "The payload is not a well-formed JWE in the JSON Serialization"


class EnvelopeTooLarge(InvalidInput):
    slug = "envelope-too-large"
    title = "The payload is larger than the envelope limit"


class UnsupportedAlgorithm(InvalidInput):
    slug = "unsupported-algorithm"
    title = "The payload uses an algorithm or key outside the encryption profile"


class UnknownRecipientKey(InvalidInput):
    slug = "unknown-recipient-key"
    title = "The payload is encrypted for a key that is not a current directory key"


class MissingRecipient(InvalidInput):
    slug = "missing-recipient"
    title = "The payload is not encrypted for every recipient the policy requires"


class RecipientNotAllowed(InvalidInput):
    slug = "recipient-not-allowed"
    title = "The payload is encrypted for an organisation the category does not allow"


class UndecryptableEnvelope(InvalidInput):
    slug = "undecryptable-envelope"
    title = "The meldpunt's copy of the payload does not decrypt"


ENVELOPE_ERRORS: tuple[type[InvalidInput], ...] = (
    MalformedEnvelope,
    EnvelopeTooLarge,
    UnsupportedAlgorithm,
    UnknownRecipientKey,
    MissingRecipient,
    RecipientNotAllowed,
    UndecryptableEnvelope,
)


@dataclass(frozen=True)
class EnvelopeInfo:
    """What the check learned: recipient organisations (sorted), kids (as sent), size."""

    recipients: tuple[str, ...]
    kids: tuple[str, ...]
    size: int


def serialized_size(payload: object) -> int:
    """Bytes of the payload as compact UTF-8 JSON: what the gateway stores."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return len(text.encode("utf-8"))


def _field_errors(prefix: str, issues: Sequence[jwe.JweIssue]) -> list[FieldError]:
    return [FieldError(prefix + issue.pointer, issue.detail) for issue in issues]


def _wrapped_key_problem(recipient: jwe.Recipient, public_jwk: Mapping[str, Any]) -> str | None:
    """Is the recipient's `encrypted_key` of the form its key and `alg` produce?

    ECDH-ES+A256KW (40 bytes, `epk` a P-256 point) is checked by `jwe.parse_jwe`; for
    RSA-OAEP-256 the ciphertext is exactly the modulus long and below the modulus.
    """
    if recipient.alg != jwe.RSA_OAEP_256:
        return None
    modulus = public_jwk.get("n")
    if not isinstance(modulus, str):
        return "the recipient key has no RSA modulus"
    try:
        n = int.from_bytes(b64url_decode(modulus), "big")
    except ValueError:
        return "the recipient key's RSA modulus is not base64url"
    size = (n.bit_length() + 7) // 8
    if len(recipient.encrypted_key) != size:
        return f"must be {size} bytes for this {n.bit_length()}-bit RSA key"
    if int.from_bytes(recipient.encrypted_key, "big") >= n:
        return "is not an RSA ciphertext for this key"
    return None


@dataclass(frozen=True)
class Inspected:
    """What `inspect_envelope` found: the parsed JWE (None when it does not parse), the
    recipient organisations it names by a current key, and every error of the checks
    that need no decryption."""

    parsed: jwe.ParsedJwe | None
    present: frozenset[str]
    size: int
    errors: InputErrors


def _lenient_kids(payload: Mapping[str, Any], pointer: str) -> list[tuple[str, str]]:
    """(pointer to the kid, kid) of every recipient whose per-recipient header names a
    string `kid`, read without requiring the rest of the JWE to be well formed."""
    recipients = payload.get("recipients")
    if isinstance(recipients, list):
        entries = [(f"/recipients/{i}", r) for i, r in enumerate(recipients)]
    else:
        entries = [("", payload)]
    found = []
    for base, entry in entries:
        header = entry.get("header") if isinstance(entry, Mapping) else None
        kid = header.get("kid") if isinstance(header, Mapping) else None
        if isinstance(kid, str) and kid:
            found.append((f"{pointer}{base}/header/kid", kid))
    return found


_UNKNOWN_KEY = "is not a current encryption key in the directory"


def inspect_envelope(
    payload: object,
    *,
    category_recipients: set[str] | frozenset[str] | None,
    directory: Directory,
    meldpunt_kid: str | None,
    max_bytes: int = MAX_ENVELOPE_BYTES,
    pointer: str = "/payload",
    optional_kinds: Collection[str] | None = None,
    kind_of: Callable[[str], str | None] | None = None,
) -> Inspected:
    """Every check of the envelope short of decryption, every error found collected.

    What depends on what: a payload that is not a JSON object, not plain JSON or over
    `max_bytes` is looked at no further (the size bound protects what follows). A JWE
    that does not parse (structure or algorithms, `jwe.parse_jwe`) has its recipients'
    `kid`s checked against the directory, read leniently, and nothing else. A parsed one
    has every recipient's key checked (unknown, unfit for its `alg`, a wrapped key of
    the wrong form); the recipients it must and may have (`category_recipients`,
    `optional_kinds`) are checked only when every `kid` is known (an unknown one may be
    meant for the organisation that looks missing) and a category is known
    (`category_recipients` None: the category itself was refused).
    """
    found = InputErrors()
    empty = Inspected(None, frozenset(), 0, found)
    if not isinstance(payload, Mapping):
        found.add(
            MalformedEnvelope(
                "The payload must be a JWE in the JSON Serialization (RFC 7516 §7.2).",
                errors=[FieldError(pointer, "must be a JSON object")],
            )
        )
        return empty
    try:
        size = serialized_size(payload)
    except (TypeError, ValueError, RecursionError):
        found.add(
            MalformedEnvelope(
                "The payload is not plain JSON.",
                errors=[FieldError(pointer, "must be plain JSON (no NaN or Infinity)")],
            )
        )
        return empty
    if size > max_bytes:
        found.add(
            EnvelopeTooLarge(
                f"The payload is {size} bytes; at most {max_bytes} are accepted.",
                errors=[FieldError(pointer, f"must be at most {max_bytes} bytes as compact JSON")],
            )
        )
        return empty

    try:
        parsed = jwe.parse_jwe(payload)
    except (jwe.MalformedJwe, jwe.UnsupportedJweAlgorithm) as exc:
        if isinstance(exc, jwe.MalformedJwe):
            found.add(
                MalformedEnvelope(
                    "The payload is not a well-formed JWE in the JSON Serialization "
                    "(RFC 7516 §7.2).",
                    errors=_field_errors(pointer, exc.issues),
                )
            )
        else:
            found.add(
                UnsupportedAlgorithm(
                    f"Payloads use enc {jwe.ENC} and, per recipient, alg "
                    f"{' or '.join(jwe.ALLOWED_ALGS)}.",
                    errors=_field_errors(pointer, exc.issues),
                )
            )
        unread = [
            FieldError(where, _UNKNOWN_KEY)
            for where, kid in _lenient_kids(payload, pointer)
            if directory.get(kid) is None
        ]
        if unread:
            found.add(_unknown(unread))
        return Inspected(None, frozenset(), size, found)

    unknown: list[FieldError] = []
    weak: list[FieldError] = []
    broken: list[FieldError] = []
    present: set[str] = set()
    for recipient in parsed.recipients:
        entry = directory.get(recipient.kid)
        if entry is None:
            unknown.append(FieldError(pointer + recipient.where("kid"), _UNKNOWN_KEY))
            continue
        organisation, public_jwk = entry
        problem = jwe.recipient_key_problem(recipient.alg, public_jwk)
        if problem is not None:
            weak.append(FieldError(pointer + recipient.where("alg"), problem))
        else:
            wrapped = _wrapped_key_problem(recipient, public_jwk)
            if wrapped is not None:
                broken.append(FieldError(f"{pointer}{recipient.pointer}/encrypted_key", wrapped))
        present.add(organisation)
    if unknown:
        found.add(_unknown(unknown))
    if weak:
        found.add(
            UnsupportedAlgorithm(
                "A recipient key cannot be used with the algorithm the payload names.",
                errors=weak,
            )
        )
    if broken:
        found.add(
            MalformedEnvelope(
                "A recipient's encrypted_key is not a key wrapped for its recipient key.",
                errors=broken,
            )
        )
    inspected = Inspected(parsed, frozenset(present), size, found)
    if unknown or category_recipients is None:
        return inspected

    meldpunt_entry = directory.get(meldpunt_kid) if meldpunt_kid is not None else None
    if meldpunt_entry is None:
        raise InternalError("The meldpunt's encryption key is not in the directory.")
    required = set(category_recipients) | {meldpunt_entry[0]}
    recipients_pointer = pointer if parsed.flattened else f"{pointer}/recipients"
    missing = sorted(required - present)
    if missing:
        found.add(
            MissingRecipient(
                "The policy requires the payload to be encrypted for more organisations.",
                errors=[
                    FieldError(
                        recipients_pointer,
                        f"organisation '{organisation}' is a required recipient for this category",
                    )
                    for organisation in missing
                ],
            )
        )
    if optional_kinds is not None:
        allowed_kinds = set(optional_kinds)
        extra = sorted(
            organisation
            for organisation in present - required
            if kind_of is None or kind_of(organisation) not in allowed_kinds
        )
        if extra:
            found.add(
                RecipientNotAllowed(
                    "The policy does not allow this category's payload to be encrypted for "
                    "these organisations.",
                    errors=[
                        FieldError(
                            recipients_pointer,
                            f"organisation '{organisation}' may not receive this category",
                        )
                        for organisation in extra
                    ],
                )
            )
    return inspected


def _unknown(errors: list[FieldError]) -> UnknownRecipientKey:
    return UnknownRecipientKey(
        "Encrypt the payload for the current encryption keys in GET /v1/directory.",
        errors=errors,
    )


def check_decryption(
    parsed: jwe.ParsedJwe,
    meldpunt_private_jwk: Mapping[str, Any],
    *,
    pointer: str = "/payload",
) -> None:
    """The one expensive check, run last and only on an envelope `inspect_envelope`
    found nothing wrong with: the meldpunt's copy decrypts (the plaintext is dropped)."""
    meldpunt_kid = meldpunt_private_jwk.get("kid")
    recipients_pointer = pointer if parsed.flattened else f"{pointer}/recipients"
    meldpunt_copy = parsed.recipient_for(meldpunt_kid) if isinstance(meldpunt_kid, str) else None
    if meldpunt_copy is None:
        raise UndecryptableEnvelope(
            "The payload must be encrypted for the meldpunt's current key.",
            errors=[
                FieldError(
                    recipients_pointer, f"no recipient uses the meldpunt's key '{meldpunt_kid}'"
                )
            ],
        )
    try:
        jwe.check_decrypts(parsed, meldpunt_private_jwk)
    except jwe.JweDecryptionError:
        raise UndecryptableEnvelope(
            "The meldpunt's copy does not decrypt: the key wrap, ciphertext, tag or "
            "protected header is wrong.",
            errors=[FieldError(pointer + (meldpunt_copy.pointer or ""), "does not decrypt")],
        ) from None


def check_envelope(
    payload: object,
    *,
    category_recipients: set[str] | frozenset[str],
    directory: Directory,
    meldpunt_private_jwk: Mapping[str, Any],
    max_bytes: int = MAX_ENVELOPE_BYTES,
    pointer: str = "/payload",
    optional_kinds: Collection[str] | None = None,
    kind_of: Callable[[str], str | None] | None = None,
) -> EnvelopeInfo:
    """Accept a payload envelope or raise one 400 listing every fault found.

    `inspect_envelope` runs every check short of decryption (size, structure,
    algorithms, recipient keys, each wrapped key's form, required and allowed
    recipients: with `optional_kinds`, every recipient beyond the required ones must be
    of one of these organisation kinds, as `kind_of` tells) and collects what it finds,
    each with a JSON pointer under `pointer` (the payload's place in the signal body).
    Faults of one kind keep that kind's problem type; of several, `invalid-input`.
    Only a faultless envelope is decrypted (`check_decryption`).
    """
    meldpunt_kid = meldpunt_private_jwk.get("kid")
    inspected = inspect_envelope(
        payload,
        category_recipients=category_recipients,
        directory=directory,
        meldpunt_kid=meldpunt_kid if isinstance(meldpunt_kid, str) else None,
        max_bytes=max_bytes,
        pointer=pointer,
        optional_kinds=optional_kinds,
        kind_of=kind_of,
    )
    inspected.errors.raise_if_any()
    assert inspected.parsed is not None
    check_decryption(inspected.parsed, meldpunt_private_jwk, pointer=pointer)
    parsed = inspected.parsed
    return EnvelopeInfo(
        recipients=tuple(sorted(inspected.present)),
        kids=tuple(recipient.kid for recipient in parsed.recipients),
        size=inspected.size,
    )


def recipient_kids(payload: object) -> list[str]:
    """The `kid`s a payload's recipients name, read leniently (before `check_envelope`
    has looked at its form): general or flattened JSON Serialization; [] for anything else."""
    if not isinstance(payload, Mapping):
        return []
    recipients = payload.get("recipients")
    if not isinstance(recipients, list):
        recipients = [payload]
    kids: list[str] = []
    for recipient in recipients:
        header = recipient.get("header") if isinstance(recipient, Mapping) else None
        kid = header.get("kid") if isinstance(header, Mapping) else None
        if isinstance(kid, str):
            kids.append(kid)
    return kids
