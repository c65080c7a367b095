"""Parse request bodies and query strings into pydantic models, reporting every error.

An invalid request is answered once with *all* of its errors, each with a JSON pointer,
so an integrator fixes a request in one round trip. The messages never echo the input:
a rejected value may be a BSN.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from flask import Response, current_app, g, request
from pydantic import BaseModel, ValidationError

from gateway.errors import FieldError, InputErrors, InvalidInput, MalformedJson, PayloadTooLarge
from gateway.logs import SENSITIVE_KEYS, mark_sensitive
from gateway.pseudonyms.detector import names_of
from gateway.pseudonyms.normalise import PREFIXES

M = TypeVar("M", bound=BaseModel)
#: Name parts this short are not marked apart (they would redact ordinary words).
MIN_NAME_PART = 3
_WORDS = re.compile(r"[\W_]+")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def pointer_of(loc: Iterable[int | str]) -> str:
    parts = [_escape(str(p)) for p in loc]
    return "/" + "/".join(parts) if parts else ""


def field_errors(exc: ValidationError, *, query: bool = False) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        message = str(error["msg"])
        if error["type"] == "extra_forbidden":
            message = "Unknown field; this API does not accept it"
        parameter = str(loc[0]) if query and loc else None
        errors.append(FieldError(pointer_of(loc), message, parameter))
    return errors


#: Keys whose values are sealed (a JWE): its members are public header values ("EC",
#: "A256GCM") and ciphertext, so marking them would only redact ordinary words such as
#: "r-ec-eived" from the request's log lines. The key itself stays in SENSITIVE_KEYS.
_SEALED_KEYS = frozenset({"payload"})


def _collect_sensitive(value: Any, under_sensitive: bool = False) -> list[str]:
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).lower() in _SEALED_KEYS:
                continue
            sensitive = under_sensitive or str(key).lower() in SENSITIVE_KEYS
            found.extend(_collect_sensitive(item, sensitive))
    elif isinstance(value, list):
        for item in value:
            found.extend(_collect_sensitive(item, under_sensitive))
    elif under_sensitive and isinstance(value, str | int):
        found.append(str(value))
    return found


def _read_at_most(limit: int) -> bytes:
    """Read the body, refusing more than `limit` bytes even without a Content-Length.

    With a Content-Length (one over `limit` was refused before the view) exactly that
    many bytes are read: a server that marks its input as terminated (gunicorn) has
    Werkzeug cap the stream at `limit`, and a read past a body of exactly `limit` bytes
    would raise its 413.
    """
    length = request.content_length
    if length is not None and length <= limit:
        return _read_exactly(length)
    chunks: list[bytes] = []
    size = 0
    while chunk := request.stream.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body may be at most {limit // 1024} KiB.")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_exactly(length: int) -> bytes:
    """`length` bytes of the body (fewer only if the client sent fewer)."""
    chunks: list[bytes] = []
    left = length
    while left > 0 and (chunk := request.stream.read(min(left, 64 * 1024))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


#: Bodies nest a few levels (a signal's JWE recipients are at depth 4); anything deeper
#: than this is refused before a recursive step (validation, log redaction) meets it.
MAX_DEPTH = 32
#: No field of this API takes a number beyond 64 bits; a longer digit run is refused
#: before `int()` sees it (Python refuses over 4,300 digits with a ValueError, and
#: converting long runs is quadratic).
MAX_INT_DIGITS = 64


class _OverLimit(Exception):
    """A JSON body beyond a parsing bound; answered as a 400 `invalid-input`."""

    def __init__(self, detail: str, problem: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problem = problem


def _parse_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS + 1:  # a sign and 64 digits
        raise _OverLimit(
            f"A number in the body has more than {MAX_INT_DIGITS} digits.", "Number too long"
        )
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _OverLimit("A number in the body is beyond the range of a double.", "Out of range")
    return value


def _parse_constant(name: str) -> Any:
    # NaN and ±Infinity are not JSON (RFC 8259 §6); nor do they have a canonical form.
    raise _OverLimit(f"{name} is not a JSON number.", "Not a JSON number")


def _too_deep(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than `limit` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_json(raw: bytes) -> Any:
    """Bytes to JSON, every failure a 400: invalid UTF-8 or JSON (`malformed-json`), or a
    body beyond the bounds — nesting deeper than MAX_DEPTH, a number longer than
    MAX_INT_DIGITS, NaN, Infinity or a float that overflows (`invalid-input`)."""
    try:
        data = json.loads(
            raw, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        position = getattr(exc, "pos", None) or getattr(exc, "start", 0)
        raise MalformedJson(
            f"The body is not valid UTF-8 JSON (error at byte {position}).",
            errors=[FieldError("", "Not valid JSON")],
        ) from None
    except _OverLimit as exc:
        raise InvalidInput(exc.detail, errors=[FieldError("", exc.problem)]) from None
    except RecursionError:  # nesting beyond the interpreter's stack
        data = None
        deep = True
    except ValueError:  # any other conversion the decoder could not make
        raise InvalidInput(
            "The body could not be read as JSON within this API's bounds.",
            errors=[FieldError("", "Not readable")],
        ) from None
    else:
        deep = _too_deep(data, MAX_DEPTH)
    if deep:
        raise InvalidInput(
            f"The body nests deeper than {MAX_DEPTH} levels.",
            errors=[FieldError("", f"Nested deeper than {MAX_DEPTH} levels")],
        )
    return data


def read_json_body() -> Any:
    """The request body as JSON; declares identifier fields sensitive for the logs."""
    limit: int = current_app.config["MAX_CONTENT_LENGTH"]
    raw = _read_at_most(limit)
    g.raw_body = raw
    data = decode_json(raw)
    found = _collect_sensitive(data)
    # Also each part of a name, as written and folded: a log line must not keep
    # "Plettenborgh" of "van Plettenborgh" (the audit's checks use the parts too).
    words = {
        w
        for v in found
        for w in _WORDS.split(v)
        if len(w) >= MIN_NAME_PART and not w.isdigit() and w.lower() not in PREFIXES
    }
    mark_sensitive([*found, *words, *names_of(found)])
    return data


@dataclass(frozen=True)
class Body(Generic[M]):
    """A JSON object body checked against its schema, without raising on schema errors.

    `model` is the parsed body when the schema holds; otherwise None, `errors` says why
    and `data` is the object as received, so that the service can still check the
    fields the schema did not refuse and answer every error in one 400 (`InputErrors`).
    """

    model: M | None
    data: dict[str, Any]
    errors: tuple[FieldError, ...] = ()

    def schema_errors(self) -> InputErrors:
        """The schema's errors, to which the service's checks add theirs."""
        found = InputErrors()
        if self.errors:
            found.add(InvalidInput(_summary(list(self.errors)), errors=self.errors))
        return found


def read_body(model: type[M]) -> Body[M]:
    """The body against `model`: a body that is not a JSON object is refused at once
    (nothing in it can be checked); schema errors are returned, not raised."""
    data = read_json_body()
    if not isinstance(data, dict):
        raise InvalidInput(
            "The body must be a JSON object.", errors=[FieldError("", "Expected an object")]
        )
    try:
        return Body(model.model_validate(data), data)
    except ValidationError as exc:
        return Body(None, data, tuple(field_errors(exc)))


def parse_body(model: type[M]) -> M:
    body = read_body(model)
    body.schema_errors().raise_if_any()
    assert body.model is not None
    return body.model


def parse_query(
    model: type[M], *, checks: Mapping[str, Callable[[str], object]] | None = None
) -> M:
    """The query string against `model`, every error in one 400.

    `checks` are the service's own checks of single parameters (a paging cursor only the
    service can read): each runs on its parameter as given, and what it raises is listed
    with the schema's errors (alone, it keeps its own problem type, e.g. `invalid-cursor`).
    """
    data: dict[str, Any] = {}
    duplicates = []
    for key in request.args:
        values = request.args.getlist(key)
        if len(values) > 1:
            duplicates.append(FieldError(pointer_of([key]), "Given more than once", key))
        data[key] = values[0]
    found = InputErrors()
    if duplicates:
        found.add(InvalidInput(_summary(duplicates), errors=duplicates))
    parsed: M | None = None
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc, query=True)
        found.add(InvalidInput(_summary(errors), errors=errors))
    for name, check in (checks or {}).items():
        value = data.get(name)
        if isinstance(value, str) and not found.refused(pointer_of([name])):
            found.capture(partial(check, value))
    found.raise_if_any()
    assert parsed is not None
    return parsed


def _summary(errors: list[FieldError]) -> str:
    count = len(errors)
    return f"The request has {count} invalid value{'s' if count != 1 else ''}; see errors."


def json_response(
    body: BaseModel | Mapping[str, Any],
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    data: Mapping[str, Any]
    if isinstance(body, BaseModel):
        dumped = body.model_dump(mode="json", by_alias=True, exclude_none=True)
        # A required field is always on the wire, as null when it has no value (a page's
        # `next`); only optional fields are left out when empty.
        for name, info in type(body).model_fields.items():
            if info.is_required() and getattr(body, name) is None:
                dumped[info.alias or name] = None
        data = dumped
    else:
        data = body
    response = Response(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        status=status,
        mimetype="application/json",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
