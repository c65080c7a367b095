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

import ctypes
import hashlib
import hmac
from collections.abc import Sequence

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
#: RFC 9497 VOPRF mode (0x01): its own context string, hence its own DSTs.
MODE_VOPRF = 0x01
VOPRF_CONTEXT_STRING = b"OPRFV1-" + bytes([MODE_VOPRF]) + b"-" + SUITE_IDENTIFIER
VOPRF_HASH_TO_GROUP_DST = b"HashToGroup-" + VOPRF_CONTEXT_STRING
VOPRF_HASH_TO_SCALAR_DST = b"HashToScalar-" + VOPRF_CONTEXT_STRING
VOPRF_DERIVE_KEY_PAIR_DST = b"DeriveKeyPair" + VOPRF_CONTEXT_STRING
PROOF_BYTES = 2 * 32

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


def derive_key_pair(
    seed: bytes, info: bytes, dst: bytes = DERIVE_KEY_PAIR_DST
) -> tuple[bytes, bytes]:
    """RFC 9497 §3.2.1 DeriveKeyPair: (skS, pkS) from a 32-byte seed and info.

    `dst` is the mode's ("DeriveKeyPair" || contextString); VOPRF mode passes
    `VOPRF_DERIVE_KEY_PAIR_DST`.
    """
    if len(seed) != 32:
        raise OprfError("the seed is 32 bytes")
    if len(info) > 65535:
        raise OprfError("info is too long")
    derive_input = seed + len(info).to_bytes(2, "big") + info
    for counter in range(256):
        sk = hash_to_scalar(derive_input + bytes([counter]), dst)
        if any(sk):
            return sk, scalar_base_mult(sk)
    raise DeriveKeyPairError("no valid key within 256 tries")  # pragma: no cover


def blind(
    input_: bytes, blind_scalar: bytes | None = None, *, dst: bytes = HASH_TO_GROUP_DST
) -> tuple[bytes, bytes]:
    """RFC 9497 §3.3.1 Blind: returns (blind, blindedElement).

    `blind_scalar` is for test vectors only; leave it out to get a random blind.
    `dst` is the HashToGroup DST: the OPRF-mode one by default, also for Ketenpoort's
    blind clients (see "VOPRF mode" below for why).
    """
    r = random_scalar() if blind_scalar is None else blind_scalar
    _check_scalar(r)
    input_element = hash_to_group(input_, dst)
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


def evaluate_elements(sk: bytes, inputs: Sequence[bytes]) -> list[bytes]:
    """`evaluate_element` for many inputs: what one signal's ~30 match keys cost.

    Same results, one call: the scalar is checked once and libsodium is called
    directly with two reused buffers, skipping the binding's per-call wrapper (its
    argument checks and two fresh buffers). The scalar multiplication itself (about
    50 µs, 80 % of the work) is libsodium's and cannot be batched: every input is
    another base point. `bench/bench_pseudonyms.py` prints both paths.
    """
    _check_scalar(sk)
    lib = _sodium.sodium
    point = ctypes.create_string_buffer(ELEMENT_BYTES)
    product = ctypes.create_string_buffer(ELEMENT_BYTES)
    out: list[bytes] = []
    for input_ in inputs:
        lib.crypto_core_ristretto255_from_hash(
            point, expand_message_xmd(input_, HASH_TO_GROUP_DST, 64)
        )
        if point.raw == _IDENTITY:  # pragma: no cover - needs a preimage
            raise InvalidInputError("input hashes to the identity")
        if lib.crypto_scalarmult_ristretto255(product, sk, point) != 0:  # pragma: no cover
            raise OprfError("scalar multiplication gave the identity")
        out.append(product.raw)
    return out


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


# --- RFC 9497 VOPRF mode -------------------------------------------------------------
#
# VOPRF mode adds a proof (a batched DLEQ proof, RFC 9497 §2.2) that every evaluated
# element is `k` times its blinded element for the `k` behind the published public
# key `pkS = k·G`: a client detects a gateway that evaluates under another key (a key
# switch that would tag it) and can trust what it unblinds.
#
# Ketenpoort's choice about HashToGroup. The mode byte is part of RFC 9497's context
# string, so VOPRF mode's HashToGroup DST differs from OPRF mode's: a standard VOPRF
# client would blind `H1(x)` while every stored pseudonym is `k·H0(x)` (H0 = the
# OPRF-mode hash). Re-keying the stored pseudonyms to H1 is impossible (it would need
# the identifiers again), and storing both doubles the OPRF work of every plain
# submission and still would not match signals stored before. So blind clients hash
# their match keys with the OPRF-mode DST (`blind(..., dst=HASH_TO_GROUP_DST)`, the
# default) and the gateway proves its evaluation with the VOPRF-mode proof (DSTs from
# the VOPRF context string). The proof is about group elements only (log_G(pkS) =
# log_C(D)), so it is exactly RFC 9497's, and the RFC's Appendix A.1.2 vectors pass
# with the VOPRF-mode hash; only the input mapping is the OPRF mode's. The client
# unblinds to `k·H0(x)` (`unblind`), which is the stored element, so plain and blind
# submissions of one person give identical pseudonyms. Clients in other languages
# need an RFC 9497 library that lets them set the HashToGroup DST, or hash_to_group
# themselves (RFC 9380 hash_to_ristretto255 with that DST), and the element before
# Finalize (RFC 9497 Finalize hashes it; we store the element, see above).


def element_add(a: bytes, b: bytes) -> bytes:
    total: bytes = _sodium.crypto_core_ristretto255_add(a, b)
    return total


def scalar_sub(a: bytes, b: bytes) -> bytes:
    difference: bytes = _sodium.crypto_core_ristretto255_scalar_sub(a, b)
    return difference


def _i2osp2(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _composites(
    pk: bytes, blinded: list[bytes], evaluated: list[bytes], sk: bytes | None
) -> tuple[bytes, bytes]:
    """RFC 9497 §2.2.1 ComputeComposites (sk None) / ComputeCompositesFast (server)."""
    if not blinded or len(blinded) != len(evaluated):
        raise OprfError("a proof covers one or more (blinded, evaluated) pairs")
    seed_dst = b"Seed-" + VOPRF_CONTEXT_STRING
    seed = hashlib.sha512(_i2osp2(pk) + _i2osp2(seed_dst)).digest()
    m: bytes | None = None
    z: bytes | None = None
    for i, (c_i, d_i) in enumerate(zip(blinded, evaluated, strict=True)):
        transcript = (
            _i2osp2(seed) + i.to_bytes(2, "big") + _i2osp2(c_i) + _i2osp2(d_i) + b"Composite"
        )
        d = hash_to_scalar(transcript, VOPRF_HASH_TO_SCALAR_DST)
        term_m = _scalar_mult_unchecked(d, c_i)
        m = term_m if m is None else element_add(m, term_m)
        if sk is None:
            term_z = _scalar_mult_unchecked(d, d_i)
            z = term_z if z is None else element_add(z, term_z)
    assert m is not None
    if sk is not None:
        z = _scalar_mult_unchecked(sk, m)
    assert z is not None
    return m, z


def _challenge(pk: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
    transcript = b"".join(_i2osp2(x) for x in (pk, m, z, t2, t3)) + b"Challenge"
    return hash_to_scalar(transcript, VOPRF_HASH_TO_SCALAR_DST)


def generate_proof(
    sk: bytes,
    pk: bytes,
    blinded: list[bytes],
    evaluated: list[bytes],
    random: bytes | None = None,
) -> bytes:
    """RFC 9497 §2.2.1 GenerateProof with A = G, B = pkS: returns c || s (64 bytes).

    `random` (the proof's random scalar r) is for test vectors only.
    """
    _check_scalar(sk)
    for element in (pk, *blinded, *evaluated):
        check_element(element)
    m, z = _composites(pk, blinded, evaluated, sk)
    r = random_scalar() if random is None else random
    _check_scalar(r)
    t2 = scalar_base_mult(r)
    t3 = _scalar_mult_unchecked(r, m)
    c = _challenge(pk, m, z, t2, t3)
    s = scalar_sub(r, scalar_mul(c, sk)) if any(c) else r
    return c + s


def verify_proof(pk: bytes, blinded: list[bytes], evaluated: list[bytes], proof: bytes) -> bool:
    """RFC 9497 §2.2.2 VerifyProof with A = G, B = pkS; False on any malformed input."""
    try:
        if len(proof) != PROOF_BYTES:
            return False
        c, s = proof[:32], proof[32:]
        _check_scalar(c, nonzero=False)
        _check_scalar(s, nonzero=False)
        for element in (pk, *blinded, *evaluated):
            check_element(element)
        m, z = _composites(pk, blinded, evaluated, None)
        # s·G + c·pk and s·M + c·Z, with a zero scalar meaning the identity term.
        t2 = _lincomb(s, None, c, pk)
        t3 = _lincomb(s, m, c, z)
        expected = _challenge(pk, m, z, t2, t3)
    except OprfError:
        return False
    return hmac.compare_digest(expected, c)


def _lincomb(s: bytes, base: bytes | None, c: bytes, other: bytes) -> bytes:
    parts: list[bytes] = []
    if any(s):
        parts.append(scalar_base_mult(s) if base is None else _scalar_mult_unchecked(s, base))
    if any(c):
        parts.append(_scalar_mult_unchecked(c, other))
    if not parts:
        return _IDENTITY
    return parts[0] if len(parts) == 1 else element_add(parts[0], parts[1])


def blind_evaluate_batch(
    sk: bytes, pk: bytes, blinded: list[bytes], proof_random: bytes | None = None
) -> tuple[list[bytes], bytes]:
    """VOPRF BlindEvaluateBatch (RFC 9497 §3.3.2): evaluated elements and one proof."""
    evaluated = [blind_evaluate(sk, element) for element in blinded]
    return evaluated, generate_proof(sk, pk, blinded, evaluated, proof_random)


def unblind(blind_scalar: bytes, evaluated_element: bytes) -> bytes:
    """blind⁻¹·evaluatedElement: `k·H(input)`, the element Finalize would hash."""
    return scalar_mult(scalar_invert(blind_scalar), evaluated_element)


def finalize_verified(
    inputs: list[bytes],
    blinds: list[bytes],
    evaluated: list[bytes],
    blinded: list[bytes],
    pk: bytes,
    proof: bytes,
) -> list[bytes]:
    """RFC 9497 §3.3.2 VOPRF Finalize: verify the proof, then unblind and hash.

    Raises `VerifyError` when the proof does not hold (a key switch, a wrong element).
    """
    if not verify_proof(pk, blinded, evaluated, proof):
        raise VerifyError("the evaluation proof does not verify against the public key")
    return [
        _finalize_hash(x, unblind(r, e)) for x, r, e in zip(inputs, blinds, evaluated, strict=True)
    ]


class VerifyError(OprfError):
    """RFC 9497 VerifyError: the server's proof is invalid."""


# --- rotation ------------------------------------------------------------------------


def rotation_factor(old_sk: bytes, new_sk: bytes) -> bytes:
    """k'·k⁻¹: multiplying an element made under k by this gives the one under k'."""
    return scalar_mul(new_sk, scalar_invert(old_sk))


def rotate(element: bytes, old_sk: bytes, new_sk: bytes) -> bytes:
    """element·(k'·k⁻¹); for many rows compute `rotation_factor` once instead."""
    return scalar_mult(rotation_factor(old_sk, new_sk), element)
