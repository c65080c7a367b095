"""Tiers and key families without HTTP: the policy names exactly the gateway's
families, and audit entries refer to a signal by its exact families only."""

from __future__ import annotations

from datetime import date
from typing import get_args

from gateway.crypto import oprf
from gateway.policy.schema import LinkageKey
from gateway.pseudonyms import Pseudonymiser
from gateway.pseudonyms.matchkeys import LINKAGE_FAMILIES
from gateway.signals.service import pseudonym_ref, subject_refs

TODAY = date(2026, 3, 1)
ANNA = {"familyName": "van den Berg", "givenNames": "Anna", "dateOfBirth": "2010-04-07"}


def test_the_policy_knows_exactly_the_linkage_families() -> None:
    assert get_args(LinkageKey) == LINKAGE_FAMILIES


def test_audit_subjects_are_the_exact_families_only() -> None:
    p = Pseudonymiser(oprf.random_scalar(), kid="psk-1")
    every = p.linkage_pseudonyms({**ANNA, "bsn": "111222333"}, today=TODAY)
    assert len(every) > 5
    refs = {r.id for r in subject_refs(every)}
    exact = {pseudonym_ref(e) for f in ("bsn", "name_dob") for e in every[f]}
    assert refs == exact
    # a record without a family name still has a subject: its single-valued families
    no_family = p.linkage_pseudonyms({"givenNames": "Anna", "dateOfBirth": "2010-04-07"})
    assert {r.id for r in subject_refs(no_family)} == {
        pseudonym_ref(e) for e in no_family["given_dob"]
    }
