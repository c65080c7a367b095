"""RFC 9497 OPRF (mode 0x00), suite ristretto255-SHA512, over libsodium.

A pseudonym is `k·H(key)`: the match key hashed to the ristretto255 group
(RFC 9380 `hash_to_ristretto255`, expand_message_xmd with SHA-512) and multiplied by
the gateway's secret scalar `k`. That element is what the database stores. The same
value is what RFC 9497's BlindEvaluate returns to a client that blinded its input,
so partners can later pseudonymise obliviously (Blind / BlindEvaluate / Finalize,
all here and checked against the RFC's Appendix A vectors). Because the stored value
is a group element, a key change is one multiplication per row: `rotate` multiplies
by `k'·k⁻¹` without ever seeing an identifier again.

Binding choice: **pysodium** (ctypes over the system libsodium ≥ 1.0.18), not rbcl.
- libsodium implements the group (`crypto_core_ristretto255_*`,
  `crypto_scalarmult_ristretto255`), constant-time; PyNaCl exposes only the ed25519
  core functions, not ristretto255, and encoding ristretto on top of ed25519 points
  in Python would be home-made crypto.
- pysodium is maintained by Stefan Marsiske, who also maintains liboprf and
  libopaque (RFC 9497/OPAQUE code built on libsodium); it has had releases for over a
  decade, the latest in 2026, and ranks among PyPI's 10,000 most downloaded packages. It is a thin,
  length-checking ctypes layer, so the C code that runs is the operating system's
  libsodium, which receives the distribution's security updates.
- rbcl (Nth Party) ships libsodium 1.0.18 as a hex string inside a Python module and,
  on every import, writes it to a new temporary file and `dlopen`s it: 2.8 MB left
  in /tmp per process, never removed, and an import that fails on hosts that mount
  /tmp `noexec` (a common hardening). Its bundled libsodium changes only when the
  package is re-released, and its input-length checks are switched off when it is
  installed in site-packages. Small adoption, one company.
- The price of pysodium: the machine needs libsodium (Debian/Ubuntu `libsodium23`,
  present on our development/CI image and installed in the Dockerfile; macOS
  `brew install libsodium`). Importing this module without it fails at once with a
  message that says so.

This module is the only importer of the binding (see `gateway/crypto/__init__.py`).
Every function checks lengths and canonical encodings itself, so nothing malformed
reaches C, and raises `OprfError` (never the binding's bare `ValueError`).
"""

from __future__ import annotations

import hashlib
import hmac

try:
    import pysodium as _sodium
except (ImportError, OSError, ValueError, AttributeError) as exc:  # pragma: no cover
    raise RuntimeError(
        "libsodium >= 1.0.18 is required for pseudonyms (ristretto255); install it "
        "(Debian/Ubuntu: apt-get install libsodium23; macOS: brew install libsodium)"
    ) from exc

if not _sodium.sodium_version_check(1, 0, 18):  # pragma: no cover - depends on the host
    raise RuntimeError("libsodium >= 1.0.18 is required for ristretto255")

#: RFC 9497 §4.1 identifier and the OPRF mode (0x00).
SUITE_IDENTIFIER = b"ristretto255-SHA512"
MODE_OPRF = 0x00
#: contextString = "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier (RFC 9497 §3.1).
CONTEXT_STRING = b"OPRFV1-" + bytes([MODE_OPRF]) + b"-" + SUITE_IDENTIFIER
HASH_TO_GROUP_DST = b"HashToGroup-" + CONTEXT_STRING
HASH_TO_SCALAR_DST = b"HashToScalar-" + CONTEXT_STRING
DERIVE_KEY_PAIR_DST = b"DeriveKeyPair" + CONTEXT_STRING

ELEMENT_BYTES = 32  # Noe
SCALAR_BYTES = 32  # Nsk
OUTPUT_BYTES = 64  # Nh (SHA-512)
#: Order of the ristretto255 group (RFC 9496 §4).
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
_IDENTITY = bytes(ELEMENT_BYTES)


class OprfError(Exception):
    """An input to a group operation is malformed, or the RFC says to abort."""


class InvalidInputError(OprfError):
    """RFC 9497 InvalidInputError: the input hashes to the identity element."""


class DeriveKeyPairError(OprfError):
    """RFC 9497 DeriveKeyPairError: no non-zero scalar within 256 tries."""


# --- RFC 9380 expand_message_xmd with SHA-512 ----------------------------------------


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 §5.3.1 with SHA-512 (b_in_bytes 64, s_in_bytes 128)."""
    ell = -(-length // 64)
    if ell > 255 or length > 65535 or len(dst) > 255:
        raise OprfError("expand_message_xmd: length or DST too long")
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(128) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime
    b_0 = hashlib.sha512(msg_prime).digest()
    b_i = hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()
    out = [b_i]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b_0, b_i, strict=True))
        b_i = hashlib.sha512(mixed + bytes([i]) + dst_prime).digest()
        out.append(b_i)
    return b"".join(out)[:length]


# --- group and scalar primitives -----------------------------------------------------


def _check_scalar(scalar: bytes, *, nonzero: bool = True) -> None:
    if not isinstance(scalar, bytes) or len(scalar) != SCALAR_BYTES:
        raise OprfError("a scalar is 32 bytes")
    value = int.from_bytes(scalar, "little")
    if value >= GROUP_ORDER:
        raise OprfError("scalar is not canonical (not reduced modulo the group order)")
    if nonzero and value == 0:
        raise OprfError("scalar is zero")


def check_element(element: bytes) -> None:
    """DeserializeElement's checks: a canonical encoding of a non-identity element."""
    if not isinstance(element, bytes) or len(element) != ELEMENT_BYTES:
        raise OprfError("an element is 32 bytes")
    if hmac.compare_digest(element, _IDENTITY):
        raise OprfError("element is the identity")
    if not _sodium.crypto_core_ristretto255_is_valid_point(element):
        raise OprfError("not a valid ristretto255 encoding")


def is_valid_scalar(scalar: bytes) -> bool:
    try:
        _check_scalar(scalar)
    except OprfError:
        return False
    return True


def random_scalar() -> bytes:
    """RandomScalar(): uniform in [1, order), from libsodium's CSPRNG."""
    while True:
        scalar: bytes = _sodium.crypto_core_ristretto255_scalar_random()
        if any(scalar):
            return scalar


def scalar_invert(scalar: bytes) -> bytes:
    _check_scalar(scalar)
    inverse: bytes = _sodium.crypto_core_ristretto255_scalar_invert(scalar)
    return inverse


def scalar_mul(a: bytes, b: bytes) -> bytes:
    _check_scalar(a)
    _check_scalar(b)
    product: bytes = _sodium.crypto_core_ristretto255_scalar_mul(a, b)
    return product


def scalar_mult(scalar: bytes, element: bytes) -> bytes:
    """scalar·element, for a non-zero scalar and a valid non-identity element."""
    _check_scalar(scalar)
    check_element(element)
    return _scalar_mult_unchecked(scalar, element)


def _scalar_mult_unchecked(scalar: bytes, element: bytes) -> bytes:
    try:
        product: bytes = _sodium.crypto_scalarmult_ristretto255(scalar, element)
    except ValueError as exc:  # libsodium returns -1 for the identity result
        raise OprfError("scalar multiplication gave the identity") from exc
    return product


def scalar_base_mult(scalar: bytes) -> bytes:
    """ScalarMultGen(scalar): scalar·G."""
    _check_scalar(scalar)
    element: bytes = _sodium.crypto_scalarmult_ristretto255_base(scalar)
    return element


def hash_to_group(msg: bytes, dst: bytes = HASH_TO_GROUP_DST) -> bytes:
    """RFC 9380 hash_to_ristretto255 (expand_message_xmd SHA-512 + RFC 9496 map)."""
    uniform = expand_message_xmd(msg, dst, 64)
    element: bytes = _sodium.crypto_core_ristretto255_from_hash(uniform)
    return element


def hash_to_scalar(msg: bytes, dst: bytes = HASH_TO_SCALAR_DST) -> bytes:
    """RFC 9497 §4.1 HashToScalar: 64 uniform bytes, little-endian, mod the order."""
    uniform = expand_message_xmd(msg, dst, 64)
    scalar: bytes = _sodium.crypto_core_ristretto255_scalar_reduce(uniform)
    return scalar


# --- RFC 9497 OPRF mode --------------------------------------------------------------


def derive_key_pair(seed: bytes, info: bytes) -> tuple[bytes, bytes]:
    """RFC 9497 §3.2.1 DeriveKeyPair: (skS, pkS) from a 32-byte seed and info."""
    if len(seed) != 32:
        raise OprfError("the seed is 32 bytes")
    if len(info) > 65535:
        raise OprfError("info is too long")
    derive_input = seed + len(info).to_bytes(2, "big") + info
    for counter in range(256):
        sk = hash_to_scalar(derive_input + bytes([counter]), DERIVE_KEY_PAIR_DST)
        if any(sk):
            return sk, scalar_base_mult(sk)
    raise DeriveKeyPairError("no valid key within 256 tries")  # pragma: no cover


def blind(input_: bytes, blind_scalar: bytes | None = None) -> tuple[bytes, bytes]:
    """RFC 9497 §3.3.1 Blind: returns (blind, blindedElement).

    `blind_scalar` is for test vectors only; leave it out to get a random blind.
    """
    r = random_scalar() if blind_scalar is None else blind_scalar
    _check_scalar(r)
    input_element = hash_to_group(input_)
    if hmac.compare_digest(input_element, _IDENTITY):  # pragma: no cover - needs a preimage
        raise InvalidInputError("input hashes to the identity")
    return r, _scalar_mult_unchecked(r, input_element)


def blind_evaluate(sk: bytes, blinded_element: bytes) -> bytes:
    """RFC 9497 §3.3.1 BlindEvaluate (server): sk·blindedElement."""
    return scalar_mult(sk, blinded_element)


def finalize(input_: bytes, blind_scalar: bytes, evaluated_element: bytes) -> bytes:
    """RFC 9497 §3.3.1 Finalize (client): unblind and hash to the 64-byte output."""
    unblinded = scalar_mult(scalar_invert(blind_scalar), evaluated_element)
    return _finalize_hash(input_, unblinded)


def evaluate(sk: bytes, input_: bytes) -> bytes:
    """RFC 9497 §3.3.1 Evaluate: the PRF output, computed with the key directly."""
    return _finalize_hash(input_, evaluate_element(sk, input_))


def evaluate_element(sk: bytes, input_: bytes) -> bytes:
    """k·H(input): the 32-byte element before Finalize's hash; what we store.

    Equal to what a client obtains by unblinding BlindEvaluate's answer, so blind
    submission later yields exactly the stored pseudonym.
    """
    _check_scalar(sk)
    element = hash_to_group(input_)
    if hmac.compare_digest(element, _IDENTITY):  # pragma: no cover - needs a preimage
        raise InvalidInputError("input hashes to the identity")
    return _scalar_mult_unchecked(sk, element)


def _finalize_hash(input_: bytes, element: bytes) -> bytes:
    if len(input_) > 65535:
        raise OprfError("input is too long")
    hash_input = (
        len(input_).to_bytes(2, "big")
        + input_
        + len(element).to_bytes(2, "big")
        + element
        + b"Finalize"
    )
    return hashlib.sha512(hash_input).digest()


# --- rotation ------------------------------------------------------------------------


def rotation_factor(old_sk: bytes, new_sk: bytes) -> bytes:
    """k'·k⁻¹: multiplying an element made under k by this gives the one under k'."""
    return scalar_mul(new_sk, scalar_invert(old_sk))


def rotate(element: bytes, old_sk: bytes, new_sk: bytes) -> bytes:
    """element·(k'·k⁻¹); for many rows compute `rotation_factor` once instead."""
    return scalar_mult(rotation_factor(old_sk, new_sk), element)
