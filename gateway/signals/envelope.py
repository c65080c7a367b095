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
from gateway.errors import FieldError, InternalError, InvalidInput

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
    """Accept a payload envelope or raise the `InvalidInput` subclass for its first fault.

    The checks run from the most basic to the most expensive: size, structure,
    algorithms, recipient keys, each wrapped key's form, required and allowed
    recipients (with `optional_kinds`: every recipient beyond the required ones must be
    of one of these organisation kinds, as `kind_of` tells), and last the one decryption.
    Within one kind every problem found is listed, each with a JSON pointer under
    `pointer` (the payload's place in the signal body).
    """
    if not isinstance(payload, Mapping):
        raise MalformedEnvelope(
            "The payload must be a JWE in the JSON Serialization (RFC 7516 §7.2).",
            errors=[FieldError(pointer, "must be a JSON object")],
        )
    try:
        size = serialized_size(payload)
    except (TypeError, ValueError, RecursionError):
        raise MalformedEnvelope(
            "The payload is not plain JSON.",
            errors=[FieldError(pointer, "must be plain JSON (no NaN or Infinity)")],
        ) from None
    if size > max_bytes:
        raise EnvelopeTooLarge(
            f"The payload is {size} bytes; at most {max_bytes} are accepted.",
            errors=[FieldError(pointer, f"must be at most {max_bytes} bytes as compact JSON")],
        )

    try:
        parsed = jwe.parse_jwe(payload)
    except jwe.MalformedJwe as exc:
        raise MalformedEnvelope(
            "The payload is not a well-formed JWE in the JSON Serialization (RFC 7516 §7.2).",
            errors=_field_errors(pointer, exc.issues),
        ) from None
    except jwe.UnsupportedJweAlgorithm as exc:
        raise UnsupportedAlgorithm(
            f"Payloads use enc {jwe.ENC} and, per recipient, alg {' or '.join(jwe.ALLOWED_ALGS)}.",
            errors=_field_errors(pointer, exc.issues),
        ) from None

    unknown: list[FieldError] = []
    weak: list[FieldError] = []
    broken: list[FieldError] = []
    present: set[str] = set()
    for recipient in parsed.recipients:
        entry = directory.get(recipient.kid)
        if entry is None:
            unknown.append(
                FieldError(
                    pointer + recipient.where("kid"),
                    "is not a current encryption key in the directory",
                )
            )
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
        raise UnknownRecipientKey(
            "Encrypt the payload for the current encryption keys in GET /v1/directory.",
            errors=unknown,
        )
    if weak:
        raise UnsupportedAlgorithm(
            "A recipient key cannot be used with the algorithm the payload names.",
            errors=weak,
        )

    if broken:
        raise MalformedEnvelope(
            "A recipient's encrypted_key is not a key wrapped for its recipient key.",
            errors=broken,
        )

    meldpunt_kid = meldpunt_private_jwk.get("kid")
    meldpunt_entry = directory.get(meldpunt_kid) if isinstance(meldpunt_kid, str) else None
    if meldpunt_entry is None:
        raise InternalError("The meldpunt's encryption key is not in the directory.")
    required = set(category_recipients) | {meldpunt_entry[0]}
    recipients_pointer = pointer if parsed.flattened else f"{pointer}/recipients"
    missing = sorted(required - present)
    if missing:
        raise MissingRecipient(
            "The policy requires the payload to be encrypted for more organisations.",
            errors=[
                FieldError(
                    recipients_pointer,
                    f"organisation '{organisation}' is a required recipient for this category",
                )
                for organisation in missing
            ],
        )

    if optional_kinds is not None:
        allowed_kinds = set(optional_kinds)
        extra = sorted(
            organisation
            for organisation in present - required
            if kind_of is None or kind_of(organisation) not in allowed_kinds
        )
        if extra:
            raise RecipientNotAllowed(
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

    return EnvelopeInfo(
        recipients=tuple(sorted(present)),
        kids=tuple(recipient.kid for recipient in parsed.recipients),
        size=size,
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
