"""Structured logging with structlog, and redaction of personal data.

Every log line — ours, the web server's, a library's — passes the same processors, so
the redaction applies to all of them. Three layers, because no single one is enough:
1. values under sensitive keys (``bsn``, ``familyName``, ``subject`` …) are replaced;
2. values the current request declared sensitive (`mark_sensitive`, called by the body
   parser for identifier fields) are replaced wherever they occur, even inside an
   exception message or traceback;
3. anything shaped like a BSN (nine digits passing the 11-test) or a calendar date is
   replaced.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"

#: Keys whose values are personal data or secrets wherever they appear.
SENSITIVE_KEYS = frozenset(
    {
        "bsn",
        "familyname",
        "givennames",
        "givenname",
        "name_dob",
        "dateofbirth",
        "birthdate",
        "subject",
        "identifiers",
        "payload",
        "plaintext",
        "password",
        "secret",
        "token",
        "access_token",
        "authorization",
        "client_assertion",
        "dpop",
        "totp",
    }
)

_request_sensitive: ContextVar[frozenset[str]] = ContextVar(
    "ketenpoort_request_sensitive", default=frozenset()
)

_NINE_DIGITS = re.compile(r"(?<![A-Za-z0-9])(\d{9})(?![A-Za-z0-9])")
_DATE = re.compile(
    r"(?<![A-Za-z0-9])(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}"
    r"|(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))(?![A-Za-z0-9])"
)


def _passes_eleven_test(digits: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
    total -= int(digits[8])
    return total % 11 == 0


def looks_like_identifier(text: str) -> bool:
    """True when `text` holds something shaped like a BSN (11-test) or a calendar date."""
    if _DATE.search(text):
        return True
    return any(_passes_eleven_test(m.group(1)) for m in _NINE_DIGITS.finditer(text))


def mark_sensitive(values: Iterable[str]) -> None:
    """Declare strings of the current request that must never be logged."""
    extra = {v for v in values if isinstance(v, str) and len(v.strip()) >= 2}
    if extra:
        _request_sensitive.set(_request_sensitive.get() | frozenset(extra))


def sensitive_values() -> frozenset[str]:
    """The values the current request declared sensitive (its subject's identifiers)."""
    return _request_sensitive.get()


def clear_sensitive() -> None:
    _request_sensitive.set(frozenset())


def redact_text(text: str) -> str:
    """Remove request-declared values, BSN-shaped numbers and dates from a string."""
    for value in sorted(_request_sensitive.get(), key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
        elif value.lower() in text.lower():
            text = re.sub(re.escape(value), REDACTED, text, flags=re.IGNORECASE)
    text = _NINE_DIGITS.sub(
        lambda m: REDACTED if _passes_eleven_test(m.group(1)) else m.group(1), text
    )
    return _DATE.sub(REDACTED, text)


def redact_value(value: Any, key: str | None = None) -> Any:
    if key is not None and key.lower().replace("-", "_") in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_text(repr(value))


_NEVER_REDACT = frozenset({"timestamp", "level", "logger"})


def redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: scrub every value of the event, rendered traces included."""
    for key in list(event_dict):
        if key in _NEVER_REDACT:
            continue
        event_dict[key] = redact_value(event_dict[key], None if key == "event" else key)
    return event_dict


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: Any = None) -> None:
    """Route structlog and the standard library through one redacting pipeline."""
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    pre_chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *pre_chain,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_color_message,
            structlog.processors.format_exc_info,
            redact_processor,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name("ketenpoort")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "ketenpoort":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("werkzeug", "gunicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)


def bind_request(values: MutableMapping[str, Any]) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**values)
