"""RFC 9497 Appendix A.1.2: ristretto255-SHA512, VOPRF mode, all three test vectors.

Values from the RFC text (A.1.2.1, A.1.2.2 and the batch of two, A.1.2.3). The key
is derived from the RFC's Seed and KeyInfo under the VOPRF-mode DST, so the mode's
context string is checked too. The inputs are hashed with the VOPRF-mode HashToGroup
here, as in the RFC; Ketenpoort's blind clients use the OPRF-mode one (tested below:
the unblinded element is then the stored pseudonym).
"""

from __future__ import annotations

import pytest

from gateway.crypto import oprf

SEED = bytes.fromhex("a3" * 32)
KEY_INFO = bytes.fromhex("74657374206b6579")  # "test key"
SK = "e6f73f344b79b379f1a0dd37e07ff62e38d9f71345ce62ae3a9bc60b04ccd909"
PK = "c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e"
BLIND_1 = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706"
BLIND_2 = "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e"
INPUT_1 = "00"
INPUT_2 = "5a" * 17
OUTPUT_1 = (
    "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7d"
    "a4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c"
)
OUTPUT_2 = (
    "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60"
    "356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6"
)

VECTORS = [
    pytest.param(
        [INPUT_1],
        [BLIND_1],
        ["863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945"],
        ["aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e"],
        "ddef93772692e535d1a53903db24367355cc2cc78de93b3be5a8ffcc6985dd06"
        "6d4346421d17bf5117a2a1ff0fcb2a759f58a539dfbe857a40bce4cf49ec600d",
        "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e",
        [OUTPUT_1],
        id="A.1.2.1",
    ),
    pytest.param(
        [INPUT_2],
        [BLIND_1],
        ["cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c"],
        ["60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468"],
        "401a0da6264f8cf45bb2f5264bc31e109155600babb3cd4e5af7d181a2c9dc0a"
        "67154fabf031fd936051dec80b0b6ae29c9503493dde7393b722eafdf5a50b02",
        "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e",
        [OUTPUT_2],
        id="A.1.2.2",
    ),
    pytest.param(
        [INPUT_1, INPUT_2],
        [BLIND_1, BLIND_2],
        [
            "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
            "90a0145ea9da29254c3a56be4fe185465ebb3bf2a1801f7124bbbadac751e654",
        ],
        [
            "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
            "cc5ac221950a49ceaa73c8db41b82c20372a4c8d63e5dded2db920b7eee36a2a",
        ],
        "cc203910175d786927eeb44ea847328047892ddf8590e723c37205cb74600b0a"
        "5ab5337c8eb4ceae0494c2cf89529dcf94572ed267473d567aeed6ab873dee08",
        "419c4f4f5052c53c45f3da494d2b67b220d02118e0857cdbcf037f9ea84bbe0c",
        [OUTPUT_1, OUTPUT_2],
        id="A.1.2.3-batch",
    ),
]


def test_voprf_context_string() -> None:
    assert oprf.VOPRF_CONTEXT_STRING == b"OPRFV1-\x01-ristretto255-SHA512"
    assert oprf.VOPRF_HASH_TO_GROUP_DST != oprf.HASH_TO_GROUP_DST  # hence the design note


def test_derive_key_pair_gives_the_rfc_voprf_key() -> None:
    sk, pk = oprf.derive_key_pair(SEED, KEY_INFO, oprf.VOPRF_DERIVE_KEY_PAIR_DST)
    assert (sk.hex(), pk.hex()) == (SK, PK)


@pytest.mark.parametrize(
    ("inputs", "blinds", "blinded", "evaluated", "proof", "proof_random", "outputs"), VECTORS
)
def test_rfc9497_voprf_vector(
    inputs: list[str],
    blinds: list[str],
    blinded: list[str],
    evaluated: list[str],
    proof: str,
    proof_random: str,
    outputs: list[str],
) -> None:
    sk, pk = bytes.fromhex(SK), bytes.fromhex(PK)
    xs = [bytes.fromhex(x) for x in inputs]
    made = [
        oprf.blind(x, bytes.fromhex(r), dst=oprf.VOPRF_HASH_TO_GROUP_DST)
        for x, r in zip(xs, blinds, strict=True)
    ]
    assert [b.hex() for _, b in made] == blinded
    got_evaluated, got_proof = oprf.blind_evaluate_batch(
        sk, pk, [b for _, b in made], bytes.fromhex(proof_random)
    )
    assert [e.hex() for e in got_evaluated] == evaluated
    assert got_proof.hex() == proof
    assert oprf.verify_proof(pk, [b for _, b in made], got_evaluated, got_proof)
    got = oprf.finalize_verified(
        xs, [r for r, _ in made], got_evaluated, [b for _, b in made], pk, got_proof
    )
    assert [o.hex() for o in got] == outputs


def test_a_proof_under_another_key_is_refused() -> None:
    sk, pk = oprf.derive_key_pair(SEED, KEY_INFO, oprf.VOPRF_DERIVE_KEY_PAIR_DST)
    other = oprf.random_scalar()
    r, blinded = oprf.blind(b"ketenpoort:v1:bsn:123456782")
    evaluated, proof = oprf.blind_evaluate_batch(other, oprf.scalar_base_mult(other), [blinded])
    assert not oprf.verify_proof(pk, [blinded], evaluated, proof)  # a key switch
    with pytest.raises(oprf.VerifyError):
        oprf.finalize_verified([b"x"], [r], evaluated, [blinded], pk, proof)
    good, good_proof = oprf.blind_evaluate_batch(sk, pk, [blinded])
    assert oprf.verify_proof(pk, [blinded], good, good_proof)
    assert not oprf.verify_proof(pk, [blinded], good, good_proof[:32] + bytes(32))
    assert not oprf.verify_proof(pk, [blinded], good, b"short")
    assert not oprf.verify_proof(pk, [blinded], [bytes(32)], good_proof)


def test_blind_client_unblinds_to_the_stored_pseudonym() -> None:
    """OPRF-mode hashing + VOPRF proof: the unblinded element is `k·H0(key)`."""
    sk = oprf.random_scalar()
    pk = oprf.scalar_base_mult(sk)
    key = b"ketenpoort:v1:name_dob:berg:2008-02-29"
    r, blinded = oprf.blind(key)
    (evaluated,), proof = oprf.blind_evaluate_batch(sk, pk, [blinded])
    assert oprf.verify_proof(pk, [blinded], [evaluated], proof)
    assert oprf.unblind(r, evaluated) == oprf.evaluate_element(sk, key)
