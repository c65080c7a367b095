"""The one validation error of this package: a 400 that names fields, never values."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import FieldError, InvalidInput


class InvalidSubject(InvalidInput):
    """A subject identifier is missing or invalid.

    Every `FieldError` detail is a fixed sentence from this package: the submitted
    value never appears in the message, the pointer or the exception chain.
    """

    slug = "invalid-subject"
    title = "The subject's identifiers are invalid"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("One or more subject identifiers are invalid.", errors=errors)


def field_error(pointer: str, detail: str) -> InvalidSubject:
    return InvalidSubject([FieldError(pointer, detail)])
