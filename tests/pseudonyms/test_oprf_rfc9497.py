"""RFC 9497 Appendix A.1.1: ristretto255-SHA512, OPRF mode, both test vectors.

The values are copied from the RFC text (Appendix A.1.1); the key is derived from the
RFC's Seed and KeyInfo with DeriveKeyPair, so key derivation is checked as well.
"""

from __future__ import annotations

import pytest

from gateway.crypto import oprf

SEED = bytes.fromhex("a3" * 32)
KEY_INFO = bytes.fromhex("74657374206b6579")  # "test key"
SK_SM = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e"
BLIND = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706"

VECTORS = [
    pytest.param(
        "00",
        "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
        "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
        "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3"
        "ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6",
        id="vector-1",
    ),
    pytest.param(
        "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
        "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
        "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4"
        "f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73",
        id="vector-2",
    ),
]


def test_context_string_and_dsts() -> None:
    assert oprf.CONTEXT_STRING == b"OPRFV1-\x00-ristretto255-SHA512"
    assert oprf.HASH_TO_GROUP_DST == b"HashToGroup-OPRFV1-\x00-ristretto255-SHA512"


def test_derive_key_pair_gives_the_rfc_key() -> None:
    sk, pk = oprf.derive_key_pair(SEED, KEY_INFO)
    assert sk.hex() == SK_SM
    assert pk == oprf.scalar_base_mult(sk)


@pytest.mark.parametrize(("input_hex", "blinded", "evaluated", "output"), VECTORS)
def test_rfc9497_vector(input_hex: str, blinded: str, evaluated: str, output: str) -> None:
    sk, _ = oprf.derive_key_pair(SEED, KEY_INFO)
    input_ = bytes.fromhex(input_hex)

    blind, blinded_element = oprf.blind(input_, bytes.fromhex(BLIND))
    assert blinded_element.hex() == blinded

    evaluation_element = oprf.blind_evaluate(sk, blinded_element)
    assert evaluation_element.hex() == evaluated

    assert oprf.finalize(input_, blind, evaluation_element).hex() == output
    # The server-side shortcut gives the same PRF output, and its element is what
    # the client unblinds: the stored pseudonym equals the oblivious result.
    assert oprf.evaluate(sk, input_).hex() == output
    unblinded = oprf.scalar_mult(oprf.scalar_invert(blind), evaluation_element)
    assert oprf.evaluate_element(sk, input_) == unblinded


def test_batched_evaluation_equals_one_by_one() -> None:
    """The batched path a signal's match keys take gives exactly the stored elements."""
    sk = oprf.random_scalar()
    inputs = [b"ketenpoort:v1:del_dob:%d:2010-04-07" % i for i in range(20)] + [b""]
    assert oprf.evaluate_elements(sk, inputs) == [oprf.evaluate_element(sk, x) for x in inputs]
    assert oprf.evaluate_elements(sk, []) == []
    with pytest.raises(oprf.OprfError):
        oprf.evaluate_elements(bytes(32), inputs)
