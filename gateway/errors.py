"""One error hierarchy and one RFC 9457 problem+json renderer.

Every error the API can answer is a `ProblemError` subclass carrying a stable slug
(the last segment of its `type` URI) and an HTTP status. Views raise; `render_problem`
turns the error into the response. OAuth endpoints have their own RFC 6749 errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    """One problem with the input: where (a JSON pointer) and what."""

    pointer: str
    detail: str
    parameter: str | None = None

    def as_json(self) -> dict[str, str]:
        data = {"pointer": self.pointer, "detail": self.detail}
        if self.parameter is not None:
            data["parameter"] = self.parameter
        return data


class ProblemError(Exception):
    """Base of every error the HTTP API answers as problem+json."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def body(self, issuer: str, instance: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": problem_type_uri(issuer, self.slug),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors:
            body["errors"] = [error.as_json() for error in self.errors]
        return body


def problem_type_uri(issuer: str, slug: str) -> str:
    return f"{issuer}/problems/{slug}"


class InvalidInput(ProblemError):
    status = 400
    slug = "invalid-input"
    title = "The request has invalid input"


def _covers(earlier: FieldError, later: FieldError) -> bool:
    """Whether `earlier` already refused the value `later` is about: the same pointer, or
    one inside it (the whole body, pointer "", covers nothing: it says where, not what)."""
    if earlier.parameter != later.parameter:
        return False
    return later.pointer == earlier.pointer or (
        earlier.pointer != "" and later.pointer.startswith(earlier.pointer + "/")
    )


class InputErrors:
    """Every input error of one request, each kept with the problem it would be alone.

    A request is checked in stages (the schema, then the service's rules, then the
    envelope, ...); each stage adds what it finds here instead of raising, and
    `raise_if_any` answers all of it as ONE 400: of the stages' own problem type when
    every error found is of one type (`invalid-subject`, `malformed-envelope`, ...), else
    the generic `invalid-input`. An error about a value an earlier stage already refused
    (the same pointer, or one inside it) is dropped: one fault, one line.
    """

    def __init__(self, *found: InvalidInput) -> None:
        self._found: list[InvalidInput] = []
        for error in found:
            self.add(error)

    def add(self, error: InvalidInput) -> None:
        fresh = [e for e in error.errors if not any(_covers(old, e) for old in self.errors)]
        if not fresh:
            return
        error.errors = fresh
        self._found.append(error)

    def absorb(self, other: InputErrors) -> None:
        """Add everything `other` found (a stage that collected on its own)."""
        for error in other._found:
            self.add(error)

    def capture(self, check: Callable[[], T]) -> T | None:
        """`check()`, or None with its `InvalidInput` added here."""
        try:
            return check()
        except InvalidInput as exc:
            self.add(exc)
            return None

    def refused(self, pointer: str) -> bool:
        """Whether an earlier stage already refused the value at `pointer` (or around it),
        so a later stage does not check it again."""
        probe = FieldError(pointer, "")
        return any(_covers(old, probe) for old in self.errors)

    @property
    def errors(self) -> list[FieldError]:
        return [e for error in self._found for e in error.errors]

    def __bool__(self) -> bool:
        return bool(self._found)

    def problem(self) -> InvalidInput | None:
        """The one problem for everything found (None when nothing was)."""
        if not self._found:
            return None
        first = self._found[0]
        if len(self._found) == 1:
            return first
        errors = self.errors
        count = len(errors)
        # The detail covers every error listed (a stage's own detail counted only its own).
        detail = f"The request has {count} invalid value{'s' if count != 1 else ''}; see errors."
        if all(type(error) is type(first) for error in self._found):
            merged = type(first).__new__(type(first))
            ProblemError.__init__(merged, detail, errors=errors, headers=first.headers)
            return merged
        return InvalidInput(detail, errors=errors)

    def raise_if_any(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise problem


class MalformedJson(InvalidInput):
    slug = "malformed-json"
    title = "The request body is not valid JSON"


class Unauthorized(ProblemError):
    """No valid access token (RFC 6750 `invalid_token`, or no token at all)."""

    status = 401
    slug = "invalid-token"
    title = "Missing or invalid access token"


class SignedOut(ProblemError):
    """A workspace call (the session warning's keep-alive) without a live web session."""

    status = 401
    slug = "signed-out"
    title = "Not signed in"


class Forbidden(ProblemError):
    """The token is valid but lacks a scope (RFC 6750 `insufficient_scope`)."""

    status = 403
    slug = "insufficient-scope"
    title = "Insufficient scope"


class PolicyDenied(ProblemError):
    """The data-sharing policy does not allow this action; `rule` names the rule that
    decided (also in the body, for a client to act on without parsing `detail`)."""

    status = 403
    slug = "policy-denied"
    title = "Denied by the data-sharing policy"

    def __init__(self, detail: str, *, rule: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.rule = rule

    def body(self, issuer: str, instance: str) -> dict[str, Any]:
        body = super().body(issuer, instance)
        if self.rule is not None:
            body["rule"] = self.rule
        return body


class NotFound(ProblemError):
    status = 404
    slug = "not-found"
    title = "Resource not found"


class MethodNotAllowed(ProblemError):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class NotAcceptable(ProblemError):
    status = 406
    slug = "not-acceptable"
    title = "No acceptable representation"


class Conflict(ProblemError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


class PayloadTooLarge(ProblemError):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(ProblemError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class UnprocessableContent(ProblemError):
    status = 422
    slug = "unprocessable-content"
    title = "The request conflicts with an earlier one"


class TooManyRequests(ProblemError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"


class InternalError(ProblemError):
    status = 500
    slug = "internal-error"
    title = "Internal server error"


class ServiceUnavailable(ProblemError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached or written (stopped, restarting, disk full, read
    only): nothing was stored, so the same request may be sent again after Retry-After."""

    slug = "database-unavailable"
    title = "The database is unavailable"
    retry_after = 5

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail
            or "The database is unavailable; nothing was stored. Send the same request "
            "(with the same Idempotency-Key) again after Retry-After seconds.",
            headers={"Retry-After": str(self.retry_after)},
        )


_AUDITED = "__ketenpoort_audited__"


def mark_audited(error: BaseException) -> BaseException:
    """Say that `error`'s audit entry is written, so the HTTP error handler adds none."""
    setattr(error, _AUDITED, True)
    return error


def is_audited(error: BaseException) -> bool:
    return bool(getattr(error, _AUDITED, False))


def all_problem_types() -> dict[str, type[ProblemError]]:
    """Every problem slug the code defines, for the documentation pages."""
    found: dict[str, type[ProblemError]] = {}
    stack: list[type[ProblemError]] = [ProblemError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.slug, cls)
        stack.extend(cls.__subclasses__())
    return found


class OperatorError(Exception):
    """A failure the operator can act on: a setting, a key, an argument, the database.

    Every command-line error derives from this one base. The top-level command catches
    it once and prints one line, `error: <message>`, on stderr with `exit_code` (see
    `gateway.cli` for the codes); the message never holds a secret or personal data.
    """

    exit_code: ClassVar[int] = 1


class NotInitialised(OperatorError):
    """The database has not been created yet (`ketenpoort init` creates it)."""

    exit_code = 3
