"""JWE JSON Serialization (RFC 7516 §7.2) for signal payloads: parse, decrypt, build.

The profile is fixed: content encryption `A256GCM`; key management per recipient
`ECDH-ES+A256KW` (P-256) or `RSA-OAEP-256` (RSA ≥ 2048 bits). No compression, no
critical extensions.

Why this is a composition of pyca/cryptography primitives (ECDH, Concat KDF,
AES key wrap, RSA-OAEP, AES-GCM) rather than a JOSE library:

- The tag must be checked over the protected header *exactly as received* (RFC 7516
  §5.2 step 14: the base64url string as sent, then `.` and the `aad` string). joserfc
  ≤ 1.8 re-serialises the decoded header when it decrypts the JSON serialization, so
  a JWE from Nimbus, jose4j, .NET or jwcrypto whose header JSON has other whitespace
  or key order fails its tag check. jwcrypto decodes the header and base64url-encodes
  it again, which is only equal for canonically encoded input. Here the received
  segment itself is the associated data, so nothing depends on how a sender
  formats JSON or base64.
- We pick the one recipient entry whose `kid` is ours and unwrap only that, instead of
  trial-decrypting every entry with our key.
- The algorithm allow-list, the key-size floor and the single opaque failure are
  enforced in one short, typed module rather than configured on a library.

Nothing below the RFC 7518 composition is hand-made: every primitive is pyca's. The
composition is tested against an independent implementation (jwcrypto) in both
directions, and the Concat KDF against RFC 7518 Appendix C.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

ENC = "A256GCM"
ECDH_ES_A256KW = "ECDH-ES+A256KW"
RSA_OAEP_256 = "RSA-OAEP-256"
ALLOWED_ALGS = (ECDH_ES_A256KW, RSA_OAEP_256)
MIN_RSA_BITS = 2048

_CEK_BYTES = 32
_IV_BYTES = 12
_TAG_BYTES = 16
_WRAPPED_CEK_BYTES = _CEK_BYTES + 8  # RFC 3394: one 64-bit block more than the key
_P256_COORDINATE_BYTES = 32
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_OAEP_256 = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class JweIssue:
    """One thing wrong with a JWE: a JSON pointer relative to the JWE object, and what."""

    pointer: str
    detail: str


class JweError(Exception):
    """Base of every error this module raises."""


class _JweIssues(JweError):
    def __init__(self, issues: Sequence[JweIssue]) -> None:
        self.issues = list(dict.fromkeys(issues))  # keep order, drop repeats
        super().__init__("; ".join(f"{i.pointer or '/'}: {i.detail}" for i in self.issues))


class MalformedJwe(_JweIssues):
    """Not a well-formed JWE JSON Serialization of our profile."""


class UnsupportedJweAlgorithm(_JweIssues):
    """An `enc`, `alg` or `zip` outside the allow-list."""


class JweKeyError(JweError):
    """A JWK given to encrypt or decrypt is unusable (wrong type, curve or size)."""


class JweDecryptionError(JweError):
    """The JWE does not decrypt with this key. Deliberately opaque: no reason is given."""

    def __init__(self) -> None:
        super().__init__("the JWE cannot be decrypted with this key")


# ------------------------------------------------------------------------- encoding


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not _is_b64url(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _is_b64url(value: object) -> bool:
    return isinstance(value, str) and bool(_B64URL.fullmatch(value)) and len(value) % 4 != 1


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _strict_json_object(raw: bytes) -> dict[str, Any]:
    """UTF-8 JSON object, no duplicate names (RFC 7515 §5.2), no NaN/Infinity."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise ValueError("duplicate member")
            result[key] = value
        return result

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    value = json.loads(raw.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


# -------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Recipient:
    """One recipient entry with its JOSE header: protected, shared and per-recipient joined."""

    pointer: str  # "/recipients/N", or "" in the flattened form
    header: Mapping[str, Any]
    origins: Mapping[str, str]  # parameter name -> pointer where the sender put it
    encrypted_key: bytes
    epk: ec.EllipticCurvePublicKey | None = field(default=None, repr=False, compare=False)

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    def where(self, name: str) -> str:
        """Pointer to a header parameter (a parameter in the protected header points to it)."""
        return self.origins.get(name, f"{self.pointer}/header/{_escape(name)}")


@dataclass(frozen=True)
class ParsedJwe:
    """A checked JWE JSON Serialization; segments kept as received for the tag check."""

    protected_segment: str
    aad_segment: str | None
    iv: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)
    tag: bytes = field(repr=False)
    recipients: tuple[Recipient, ...]
    flattened: bool

    def authenticated_data(self) -> bytes:
        """RFC 7516 §5.2 step 14: ASCII(protected as sent) [ '.' ASCII(aad as sent) ]."""
        data = self.protected_segment.encode("ascii")
        if self.aad_segment is not None:
            data += b"." + self.aad_segment.encode("ascii")
        return data

    def recipient_for(self, kid: str) -> Recipient | None:
        for recipient in self.recipients:
            if recipient.kid == kid:
                return recipient
        return None


class _Collector:
    def __init__(self) -> None:
        self.issues: list[JweIssue] = []

    def add(self, pointer: str, detail: str) -> None:
        self.issues.append(JweIssue(pointer, detail))

    def b64(self, data: Mapping[str, Any], name: str, base: str, *, required: bool) -> bytes | None:
        pointer = f"{base}/{name}"
        if name not in data:
            if required:
                self.add(pointer, "is required")
            return None
        value = data[name]
        if not isinstance(value, str):
            self.add(pointer, "must be a base64url string")
            return None
        try:
            return _b64url_decode(value)
        except ValueError:
            self.add(pointer, "is not base64url (RFC 7515 §2, no padding)")
            return None

    def obj(self, data: Mapping[str, Any], name: str, base: str) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, Mapping):
            self.add(f"{base}/{name}", "must be a JSON object")
            return {}
        if not all(isinstance(key, str) for key in value):
            self.add(f"{base}/{name}", "member names must be strings")
            return {}
        return value


def parse_jwe(data: object) -> ParsedJwe:
    """Check the structure and the algorithms; raise `MalformedJwe` or `UnsupportedJweAlgorithm`.

    Structure problems are reported first (all of them), then algorithm problems, then
    problems in algorithm-specific members (`epk`, `encrypted_key`), so a sender learns
    the most basic fault first.
    """
    if not isinstance(data, Mapping):
        raise MalformedJwe([JweIssue("", "must be a JWE in the JSON Serialization (an object)")])
    c = _Collector()

    protected_segment = ""
    protected: Mapping[str, Any] = {}
    if "protected" in data:
        raw = c.b64(data, "protected", "", required=True)
        if raw is not None:
            try:
                protected = _strict_json_object(raw)
            except (ValueError, RecursionError):
                c.add("/protected", "must be a base64url-encoded UTF-8 JSON object")
            else:
                protected_segment = str(data["protected"])
    unprotected = c.obj(data, "unprotected", "")
    iv = c.b64(data, "iv", "", required=True)
    ciphertext = c.b64(data, "ciphertext", "", required=True)
    tag = c.b64(data, "tag", "", required=True)
    aad = c.b64(data, "aad", "", required=False)
    if iv is not None and len(iv) != _IV_BYTES:
        c.add("/iv", f"must be {_IV_BYTES} bytes for {ENC}")
    if tag is not None and len(tag) != _TAG_BYTES:
        c.add("/tag", f"must be {_TAG_BYTES} bytes for {ENC}")

    # (pointer, per-recipient header, encrypted_key) for each recipient entry
    entries: list[tuple[str, Mapping[str, Any], bytes | None]] = []
    if "recipients" in data:
        flattened = False
        for name in ("header", "encrypted_key"):
            if name in data:
                c.add(f"/{name}", "belongs inside a recipient entry when 'recipients' is used")
        recipients = data["recipients"]
        if not isinstance(recipients, list) or not recipients:
            c.add("/recipients", "must be a non-empty array of recipient objects")
            recipients = []
        for index, entry in enumerate(recipients):
            base = f"/recipients/{index}"
            if not isinstance(entry, Mapping):
                c.add(base, "must be a JSON object")
                continue
            header = c.obj(entry, "header", base)
            entries.append((base, header, c.b64(entry, "encrypted_key", base, required=False)))
    else:
        flattened = True
        header = c.obj(data, "header", "")
        entries.append(("", header, c.b64(data, "encrypted_key", "", required=False)))

    parsed_recipients: list[Recipient] = []
    for base, header, encrypted_key in entries:
        origins: dict[str, str] = {name: "/protected" for name in protected}
        joint: dict[str, Any] = dict(protected)
        for source, pointer in ((unprotected, "/unprotected"), (header, f"{base}/header")):
            for name, value in source.items():
                if name in joint:
                    c.add(
                        f"{pointer}/{_escape(name)}",
                        f"header parameter '{name}' appears in more than one header "
                        "(RFC 7516 §7.2.1)",
                    )
                    continue
                joint[name] = value
                origins[name] = f"{pointer}/{_escape(name)}"
        recipient = Recipient(base, joint, origins, encrypted_key or b"")
        for name in ("alg", "enc", "kid"):
            value = joint.get(name)
            if not isinstance(value, str) or not value:
                c.add(recipient.where(name), "is required, as a non-empty string")
        if "crit" in joint:
            c.add(recipient.where("crit"), "no critical extensions are supported")
        parsed_recipients.append(recipient)
    if c.issues:
        raise MalformedJwe(c.issues)

    seen: dict[str, str] = {}
    for recipient in parsed_recipients:
        if recipient.kid in seen:
            c.add(recipient.where("kid"), f"the same key is already used by {seen[recipient.kid]}")
        seen.setdefault(recipient.kid, recipient.pointer or "/")
    if c.issues:
        raise MalformedJwe(c.issues)

    for recipient in parsed_recipients:
        if recipient.header["enc"] != ENC:
            c.add(recipient.where("enc"), f"enc must be {ENC}")
        if recipient.alg not in ALLOWED_ALGS:
            c.add(recipient.where("alg"), f"alg must be one of {', '.join(ALLOWED_ALGS)}")
        if "zip" in recipient.header:
            c.add(recipient.where("zip"), "compression is not accepted")
    if c.issues:
        raise UnsupportedJweAlgorithm(c.issues)

    parsed_recipients = [_check_key_management(recipient, c) for recipient in parsed_recipients]
    if c.issues:
        raise MalformedJwe(c.issues)

    assert iv is not None and ciphertext is not None and tag is not None
    return ParsedJwe(
        protected_segment=protected_segment,
        aad_segment=str(data["aad"]) if aad is not None else None,
        iv=iv,
        ciphertext=ciphertext,
        tag=tag,
        recipients=tuple(parsed_recipients),
        flattened=flattened,
    )


def _check_key_management(recipient: Recipient, c: _Collector) -> Recipient:
    """Check the members the recipient's `alg` needs; keep the parsed `epk`."""
    key_pointer = f"{recipient.pointer}/encrypted_key"
    if not recipient.encrypted_key:
        c.add(key_pointer, f"is required for {recipient.alg}")
        return recipient
    if recipient.alg != ECDH_ES_A256KW:
        return recipient
    if len(recipient.encrypted_key) != _WRAPPED_CEK_BYTES:
        c.add(key_pointer, f"must be a wrapped 256-bit key ({_WRAPPED_CEK_BYTES} bytes)")
    for name in ("apu", "apv"):
        if name in recipient.header and not _is_b64url(recipient.header[name]):
            c.add(recipient.where(name), "must be a base64url string")
    try:
        return replace(recipient, epk=_ephemeral_public_key(recipient.header.get("epk")))
    except ValueError as exc:
        c.add(recipient.where("epk"), str(exc))
        return recipient


def _ephemeral_public_key(epk: object) -> ec.EllipticCurvePublicKey:
    """The sender's ephemeral P-256 key; the point must lie on the curve."""
    if not isinstance(epk, Mapping):
        raise ValueError(f"is required for {ECDH_ES_A256KW}, as a public EC JWK")
    if epk.get("kty") != "EC" or epk.get("crv") != "P-256":
        raise ValueError("must be a P-256 EC public key (kty EC, crv P-256)")
    if "d" in epk:
        raise ValueError("must not contain a private key")
    return _p256_public(epk.get("x"), epk.get("y"))


def _p256_public(x: object, y: object) -> ec.EllipticCurvePublicKey:
    try:
        xb = _b64url_decode(x) if isinstance(x, str) else b""
        yb = _b64url_decode(y) if isinstance(y, str) else b""
    except ValueError:
        xb = yb = b""
    if len(xb) != _P256_COORDINATE_BYTES or len(yb) != _P256_COORDINATE_BYTES:
        raise ValueError("x and y must be 32-byte base64url coordinates")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + xb + yb)
    except ValueError:
        raise ValueError("is not a point on P-256") from None


# ---------------------------------------------------------------------------- keys


def _b64_int(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise JweKeyError("a JWK member is missing or not base64url")
    try:
        return int.from_bytes(_b64url_decode(value), "big")
    except ValueError:
        raise JweKeyError("a JWK member is not base64url") from None


def _check_use(jwk: Mapping[str, Any], alg: str) -> None:
    if jwk.get("use", "enc") != "enc":
        raise JweKeyError("the key is not an encryption key (use must be 'enc')")
    if jwk.get("alg", alg) != alg:
        raise JweKeyError(f"the key is registered for {jwk.get('alg')!r}, not {alg}")


def algorithm_for_key(jwk: Mapping[str, Any]) -> str:
    """The key-management algorithm our profile uses with this JWK (by its `kty`)."""
    kty = jwk.get("kty")
    if kty == "EC":
        return ECDH_ES_A256KW
    if kty == "RSA":
        return RSA_OAEP_256
    raise JweKeyError("only EC P-256 and RSA keys can receive payloads")


def recipient_key_problem(alg: str, public_jwk: Mapping[str, Any]) -> str | None:
    """Why `public_jwk` cannot receive with `alg` in our profile, or None if it can."""
    try:
        _public_key(public_jwk, alg)
    except JweKeyError as exc:
        return str(exc)
    return None


_PUBLIC_MEMBERS = ("kty", "crv", "x", "y", "n", "e", "use", "alg")
_PRIVATE_MEMBERS = (*_PUBLIC_MEMBERS, "d", "p", "q", "dp", "dq", "qi")
_Members = tuple[tuple[str, str], ...]


def _members(jwk: Mapping[str, Any], names: Sequence[str]) -> _Members | None:
    """The JWK members that define the key, as a cache key (None if not all strings)."""
    items = tuple((name, jwk[name]) for name in names if name in jwk)
    return items if all(isinstance(value, str) for _, value in items) else None


def _public_key(jwk: Mapping[str, Any], alg: str) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """Directory keys recur on every request: loading (a point check) is cached."""
    members = _members(jwk, _PUBLIC_MEMBERS)
    return _load_public_key(jwk, alg) if members is None else _cached_public_key(members, alg)


@functools.lru_cache(maxsize=256)
def _cached_public_key(members: _Members, alg: str) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    return _load_public_key(dict(members), alg)


def _private_key(
    jwk: Mapping[str, Any], alg: str
) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    members = _members(jwk, _PRIVATE_MEMBERS)
    return _load_private_key(jwk, alg) if members is None else _cached_private_key(members, alg)


@functools.lru_cache(maxsize=16)
def _cached_private_key(
    members: _Members, alg: str
) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    return _load_private_key(dict(members), alg)


def _load_public_key(
    jwk: Mapping[str, Any], alg: str
) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if algorithm_for_key(jwk) != alg:
        raise JweKeyError(f"a {jwk.get('kty')} key cannot be used with {alg}")
    _check_use(jwk, alg)
    if alg == ECDH_ES_A256KW:
        if jwk.get("crv") != "P-256":
            raise JweKeyError(f"{ECDH_ES_A256KW} needs a P-256 key")
        try:
            return _p256_public(jwk.get("x"), jwk.get("y"))
        except ValueError as exc:
            raise JweKeyError(f"the EC key {exc}") from None
    n, e = _b64_int(jwk.get("n")), _b64_int(jwk.get("e"))
    if n.bit_length() < MIN_RSA_BITS:
        raise JweKeyError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError:
        raise JweKeyError("the RSA key is invalid") from None


def _load_private_key(
    jwk: Mapping[str, Any], alg: str
) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    public = _public_key(jwk, alg)  # checks type, curve, size, use and alg first
    d = _b64_int(jwk.get("d"))
    if isinstance(public, ec.EllipticCurvePublicKey):
        try:
            ec_private = ec.derive_private_key(d, ec.SECP256R1())
        except ValueError:
            raise JweKeyError("the EC private key is invalid") from None
        if ec_private.public_key() != public:
            raise JweKeyError("the EC private key does not match its x and y")
        return ec_private
    numbers = public.public_numbers()
    try:
        if "p" in jwk:
            p, q = _b64_int(jwk.get("p")), _b64_int(jwk.get("q"))
            dp, dq, qi = (_b64_int(jwk.get(name)) for name in ("dp", "dq", "qi"))
        else:
            p, q = rsa.rsa_recover_prime_factors(numbers.n, numbers.e, d)
            dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
        return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, numbers).private_key()
    except ValueError:
        raise JweKeyError("the RSA private key is invalid") from None


def concat_kdf(shared_secret: bytes, algorithm_id: str, apu: bytes, apv: bytes, bits: int) -> bytes:
    """RFC 7518 §4.6.2: NIST SP 800-56A Concat KDF with SHA-256 and the JOSE OtherInfo."""

    def with_length(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    other_info = (
        with_length(algorithm_id.encode("ascii"))
        + with_length(apu)
        + with_length(apv)
        + struct.pack(">I", bits)
    )
    kdf = ConcatKDFHash(algorithm=hashes.SHA256(), length=bits // 8, otherinfo=other_info)
    return kdf.derive(shared_secret)


def _header_bytes(header: Mapping[str, Any], name: str) -> bytes:
    value = header.get(name)
    return _b64url_decode(value) if isinstance(value, str) else b""


# ----------------------------------------------------------------------- decryption


def _decrypt(parsed: ParsedJwe, private_jwk: Mapping[str, Any]) -> bytes:
    kid = private_jwk.get("kid")
    if isinstance(kid, str):
        recipient = parsed.recipient_for(kid)
    elif len(parsed.recipients) == 1:
        recipient = parsed.recipients[0]
    else:
        recipient = None
    if recipient is None:
        raise JweDecryptionError
    try:
        key = _private_key(private_jwk, recipient.alg)
    except JweKeyError:
        raise JweDecryptionError from None

    cek: bytes | None
    try:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            epk = recipient.epk or _ephemeral_public_key(recipient.header.get("epk"))
            kek = concat_kdf(
                key.exchange(ec.ECDH(), epk),
                recipient.alg,
                _header_bytes(recipient.header, "apu"),
                _header_bytes(recipient.header, "apv"),
                _CEK_BYTES * 8,
            )
            cek = aes_key_unwrap(kek, recipient.encrypted_key)
        else:
            cek = key.decrypt(recipient.encrypted_key, _OAEP_256)
    except (InvalidUnwrap, ValueError):
        cek = None
    if cek is None or len(cek) != _CEK_BYTES:
        # Go on with a random key so a bad key and a bad tag fail alike (RFC 7516 §11.5).
        cek = os.urandom(_CEK_BYTES)
    try:
        return AESGCM(cek).decrypt(
            parsed.iv, parsed.ciphertext + parsed.tag, parsed.authenticated_data()
        )
    except InvalidTag:
        raise JweDecryptionError from None


def decrypt_for_recipient(
    jwe: ParsedJwe | Mapping[str, Any], private_jwk: Mapping[str, Any]
) -> bytes:
    """Decrypt the copy for `private_jwk` (chosen by its `kid`) and return the plaintext.

    Raises `MalformedJwe`/`UnsupportedJweAlgorithm` for a JWE outside the profile, and
    `JweDecryptionError` — whatever the cause — when this key cannot open it.
    """
    parsed = jwe if isinstance(jwe, ParsedJwe) else parse_jwe(jwe)
    return _decrypt(parsed, private_jwk)


def check_decrypts(parsed: ParsedJwe, private_jwk: Mapping[str, Any]) -> None:
    """Prove that `private_jwk` opens the JWE; the plaintext never leaves this function."""
    plaintext = _decrypt(parsed, private_jwk)
    del plaintext


# ----------------------------------------------------------------------- encryption


def _ec_public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(_P256_COORDINATE_BYTES, "big")),
        "y": b64url(numbers.y.to_bytes(_P256_COORDINATE_BYTES, "big")),
    }


def encrypt_for_recipients(
    plaintext: bytes,
    recipient_jwks: Sequence[Mapping[str, Any]],
    *,
    aad: bytes | None = None,
    flattened: bool = False,
) -> dict[str, Any]:
    """A JWE for every key in `recipient_jwks`, in the general JSON Serialization.

    Each key must carry a `kid`; the algorithm follows from its type (EC P-256:
    ECDH-ES+A256KW, RSA ≥ 2048: RSA-OAEP-256). `flattened=True` gives the flattened
    form, which holds exactly one recipient. Raises `JweKeyError` for an unusable key.
    """
    if not recipient_jwks:
        raise JweKeyError("a JWE needs at least one recipient")
    if flattened and len(recipient_jwks) != 1:
        raise JweKeyError("the flattened serialization holds exactly one recipient")
    kids = [jwk.get("kid") for jwk in recipient_jwks]
    if not all(isinstance(kid, str) and kid for kid in kids) or len(set(kids)) != len(kids):
        raise JweKeyError("every recipient key needs its own non-empty kid")

    cek = os.urandom(_CEK_BYTES)
    recipients: list[dict[str, Any]] = []
    for jwk in recipient_jwks:
        alg = algorithm_for_key(jwk)
        public = _public_key(jwk, alg)
        header: dict[str, Any] = {"alg": alg, "kid": jwk["kid"]}
        if isinstance(public, ec.EllipticCurvePublicKey):
            ephemeral = ec.generate_private_key(ec.SECP256R1())
            kek = concat_kdf(ephemeral.exchange(ec.ECDH(), public), alg, b"", b"", _CEK_BYTES * 8)
            encrypted_key = aes_key_wrap(kek, cek)
            header["epk"] = _ec_public_jwk(ephemeral.public_key())
        else:
            encrypted_key = public.encrypt(cek, _OAEP_256)
        recipients.append({"header": header, "encrypted_key": b64url(encrypted_key)})

    protected_segment = b64url(json.dumps({"enc": ENC}, separators=(",", ":")).encode())
    associated = protected_segment.encode("ascii")
    if aad is not None:
        associated += b"." + b64url(aad).encode("ascii")
    iv = os.urandom(_IV_BYTES)
    sealed = AESGCM(cek).encrypt(iv, plaintext, associated)
    jwe: dict[str, Any] = {"protected": protected_segment}
    if flattened:
        jwe.update(recipients[0])
    else:
        jwe["recipients"] = recipients
    if aad is not None:
        jwe["aad"] = b64url(aad)
    jwe.update(
        iv=b64url(iv),
        ciphertext=b64url(sealed[:-_TAG_BYTES]),
        tag=b64url(sealed[-_TAG_BYTES:]),
    )
    return jwe
