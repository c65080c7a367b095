"""`InputErrors`: every input error of a request in one 400, with a detail that counts
them all (a stage's own detail counted only what that stage found)."""

from __future__ import annotations

from gateway.errors import FieldError, InputErrors, InvalidInput
from gateway.pseudonyms.errors import InvalidSubject


def test_one_stage_keeps_its_own_problem() -> None:
    only = InvalidSubject([FieldError("/subject/bsn", "Not a valid BSN")])
    assert InputErrors(only).problem() is only


def test_stages_of_one_kind_keep_the_kind_and_count_every_error() -> None:
    found = InputErrors(
        InvalidInput(
            "The signal has 1 invalid value(s); see errors.", errors=[FieldError("/a", "x")]
        ),
        InvalidInput("The Idempotency-Key looks like personal data.", errors=[FieldError("", "y")]),
    )
    problem = found.problem()
    assert problem is not None and type(problem) is InvalidInput
    assert problem.detail == "The request has 2 invalid values; see errors."
    assert [e.pointer for e in problem.errors] == ["/a", ""]


def test_stages_of_several_kinds_are_invalid_input() -> None:
    found = InputErrors(
        InvalidSubject([FieldError("/subject/bsn", "Not a valid BSN")]),
        InvalidInput("x", errors=[FieldError("/category", "Not a category")]),
    )
    problem = found.problem()
    assert problem is not None and type(problem) is InvalidInput
    assert problem.slug == "invalid-input" and len(problem.errors) == 2
    assert problem.detail == "The request has 2 invalid values; see errors."


def test_a_later_stage_does_not_repeat_what_an_earlier_one_refused() -> None:
    found = InputErrors(InvalidInput("x", errors=[FieldError("/payload", "Not a JWE")]))
    found.add(InvalidInput("y", errors=[FieldError("/payload/iv", "Wrong length")]))
    assert found.refused("/payload/tag")
    problem = found.problem()
    assert problem is not None and [e.pointer for e in problem.errors] == ["/payload"]
