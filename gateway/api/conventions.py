"""Request and response conventions applied to every route (NL API Design Rules).

Before a view runs: a request id, W3C Trace Context, the log context, and the checks
that need no view (406, 415, 413). After it: `API-Version`, the security headers,
`X-Request-Id` and `traceparent`. Every error becomes RFC 9457 problem+json here.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from gateway import API_VERSION
from gateway.api.openapi import Operation, operation_of
from gateway.db import database_unavailable
from gateway.errors import (
    PROBLEM_MEDIA_TYPE,
    DatabaseUnavailable,
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    UnsupportedMediaType,
    mark_audited,
)
from gateway.logs import bind_request, clear_sensitive, get_logger
from gateway.pseudonyms.detector import holds_personal_data
from gateway.services import services

log = get_logger("gateway.http")

REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$")
TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")

API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: Pages: own stylesheets, images and script files (the session warning), nothing inline.
HTML_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str  # this server's span
    parent_span_id: str | None
    flags: str

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceContext:
    """Continue a valid incoming trace (W3C Trace Context §3.2), else start one."""
    span_id = secrets.token_hex(8)
    match = TRACEPARENT.match(value.strip()) if value else None
    if match:
        version, trace_id, parent, flags, rest = match.groups()
        valid = (
            version != "ff"
            and not (version == "00" and rest)
            and trace_id != "0" * 32
            and parent != "0" * 16
        )
        if valid:
            return TraceContext(trace_id, span_id, parent, flags)
    return TraceContext(secrets.token_hex(16), span_id, None, "01")


def current_trace() -> TraceContext:
    trace: TraceContext = g.trace
    return trace


def request_id() -> str:
    rid: str = g.get("request_id") or "unknown"
    return rid


def current_operation() -> Operation | None:
    from flask import current_app

    if request.url_rule is None:
        return None
    return operation_of(current_app.view_functions.get(request.url_rule.endpoint))


def _check_negotiation(op: Operation, max_body: int) -> None:
    accept = request.headers.get("Accept", "").strip()
    if accept and request.accept_mimetypes.best_match(list(op.produces)) is None:
        raise NotAcceptable(f"This resource is available as {', '.join(op.produces)} only.")
    if request.content_length is not None and request.content_length > max_body:
        raise PayloadTooLarge(f"The body may be at most {max_body // 1024} KiB.")
    if op.consumes and request.method in {"POST", "PUT", "PATCH"}:
        mimetype = request.mimetype
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if not mimetype:
            raise UnsupportedMediaType(f"Content-Type is missing; send {' or '.join(op.consumes)}.")
        if mimetype not in op.consumes or charset != "utf-8":
            raise UnsupportedMediaType(
                f"Content-Type {mimetype} is not supported; send {' or '.join(op.consumes)}"
                " (UTF-8)."
            )


def render_problem(error: ProblemError) -> Response:
    body = error.body(services().settings.issuer, request_id())
    response = Response(
        json.dumps(body, ensure_ascii=False), status=error.status, mimetype=PROBLEM_MEDIA_TYPE
    )
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def problem_for_http_exception(exc: HTTPException) -> ProblemError:
    code = exc.code or 500
    if code == 404:
        return NotFound("No resource at this path.")
    if code == 405:
        allowed = sorted(set(getattr(exc, "valid_methods", None) or []) - {"OPTIONS"})
        return MethodNotAllowed(
            f"{request.method} is not allowed here.",
            headers={"Allow": ", ".join(allowed)},
        )
    if code == 413:
        return PayloadTooLarge("The body may be at most 256 KiB.")
    if code == 400:
        return InvalidInput("The request could not be read.")
    if code == 415:
        return UnsupportedMediaType("Unsupported Content-Type.")
    if code == 406:
        return NotAcceptable("No acceptable representation.")

    generic = type(
        "HttpProblem",
        (ProblemError,),
        {
            "status": code,
            "slug": (exc.name or "error").lower().replace(" ", "-"),
            "title": exc.name or "Error",
        },
    )
    problem: ProblemError = generic(exc.description or exc.name or "Error")
    return problem


#: The most of a request body left unread that is read (and dropped) before answering.
DRAIN_AT_MOST = 1024 * 1024


def _drain_unread_body() -> None:
    """Read what is left of a body the request was answered without reading (a 413, a
    401 or a 415 before the view), up to `DRAIN_AT_MOST` bytes.

    The connection then carries the client's next request. gunicorn drains at most
    64 KiB itself and otherwise closes the connection after a response that already
    said keep-alive, so a client's next request on it failed ("connection closed").
    """
    length = request.content_length
    stream = request.environ.get("wsgi.input")
    if not length or length > DRAIN_AT_MOST or stream is None:
        return
    left = length
    try:
        while left > 0 and (chunk := stream.read(min(left, 64 * 1024))):
            left -= len(chunk)
    except (OSError, ValueError):  # the client went away, or the stream was closed
        return


def init_app(
    app: Flask,
    enforce: Callable[[Operation], None],
    audit_failure: Callable[..., None],
) -> None:
    """The hooks of every request; `enforce` checks an operation's token and scopes,
    `audit_failure(error, cause=None)` writes the entry of a failed request."""
    max_body: int = app.config["MAX_CONTENT_LENGTH"]

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        # Our request id and trace are always our own (security finding 10): a caller
        # could otherwise file its requests under ids of the meldpunt's. The caller's ids
        # are kept apart (`callerRequestId`, `callerTrace`), unless they hold personal data.
        g.request_id = str(uuid.uuid4())
        incoming = request.headers.get("X-Request-Id", "")
        keep = REQUEST_ID.match(incoming) and not holds_personal_data(incoming)
        g.caller_request_id = incoming if keep else None
        caller = parse_traceparent(request.headers.get("traceparent"))
        g.caller_trace = (
            caller
            if caller.parent_span_id is not None
            and not holds_personal_data(f"{caller.trace_id}-{caller.parent_span_id}")
            else None
        )
        g.trace = TraceContext(secrets.token_hex(16), caller.span_id, None, caller.flags)
        clear_sensitive()
        bind_request(
            {
                "request_id": g.request_id,
                "caller_request_id": g.caller_request_id,
                "trace_id": g.trace.trace_id,
                "span_id": g.trace.span_id,
                "route": request.url_rule.rule if request.url_rule else None,
                "method": request.method,
            }
        )
        op = current_operation()
        if op is not None:
            enforce(op)
            _check_negotiation(op, max_body)

    @app.after_request
    def _finish(response: Response) -> Response:
        _drain_unread_body()
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # Every response, the static CSS included (Flask sends files `no-cache`): nothing
        # of the gateway is kept in a browser's or a proxy's cache (DESIGN.md).
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            HTML_CSP if response.mimetype == "text/html" else API_CSP
        )
        response.headers["API-Version"] = API_VERSION
        response.headers["X-Request-Id"] = request_id()
        if "trace" in g:
            response.headers["traceparent"] = g.trace.traceparent
        op = current_operation()
        if op is not None and op.cors_any_origin:
            response.headers["Access-Control-Allow-Origin"] = "*"
        duration = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        services().metrics.observe(request.method, route, response.status_code, duration)
        log.info(
            "request",
            status=response.status_code,
            duration_ms=round(duration * 1000, 2),
        )
        return response

    @app.teardown_request
    def _forget(_: BaseException | None = None) -> None:
        clear_sensitive()
        structlog.contextvars.clear_contextvars()

    @app.errorhandler(ProblemError)
    def _problem(error: ProblemError) -> Response:
        audit_failure(error)
        return render_problem(error)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        problem = problem_for_http_exception(error)
        audit_failure(problem)
        return render_problem(problem)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if database_unavailable(error):
            # 503 + Retry-After in the blueprint's own error format (problem+json, or
            # RFC 6749 `temporarily_unavailable` on the OAuth endpoints).
            log.warning("database unavailable", error=type(error).__name__)
            unavailable = DatabaseUnavailable()
            audit_failure(unavailable, cause=error)  # tried; logged when it cannot be
            mark_audited(unavailable)
            return app.make_response(app.handle_user_exception(unavailable))
        log.error("unhandled error", exc_info=error)
        problem = InternalError(
            "An internal error occurred; quote the request id when reporting it."
        )
        audit_failure(problem, cause=error)
        return render_problem(problem)
