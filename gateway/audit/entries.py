"""Typed audit entries and their canonical bytes (RFC 8785 JSON).

An entry names actor, action, resource, outcome, the policy rule and digest that decided,
the purpose given, and — per data subject — a pseudonymised subject reference; never a
raw identifier. It also carries the fields of Logboek Dataverwerkingen 1.0 (trace and
span id, status, name, start and end in ms, processing activity).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import rfc8785

from gateway.actors import Actor

#: 2: the `ldv` block uses the field names of LDV 1.0 itself (`trace_id`, `span_id`,
#: `dpl.core.processing_activity_id`, ...) as the contract names them; 1 used camelCase.
#: 3: `subjects` carry a reference made for the entry alone (`entry_subject_id`), not
#: the pseudonym reference itself.
SCHEMA_VERSION = 3
Outcome = Literal["success", "denied", "error"]
#: LDV status: `Error` only for failures inside the system; a request refused on its
#: input or by the policy was handled correctly and is `Unset` (LDV, component Logboek).
LDV_STATUS = {"success": "Ok", "denied": "Unset", "error": "Error"}


#: The `type` of a subject in an entry: a reference made for that entry alone.
ENTRY_SUBJECT_TYPE = "ketenpoort-entry-subject"


@dataclass(frozen=True)
class SubjectRef:
    """A data subject, pseudonymised: the privacy officer searches by `id`.

    `id` is the search handle (derived from a stored pseudonym); it goes into the
    database index beside the entry, never into the entry itself: an entry carries
    `entry_subject_id(entry id, handle)` instead, so a partner reading its own entries
    sees no pseudonym and no value that recurs across entries.
    """

    id: str
    type: str  # e.g. "ketenpoort-pseudonym"


def entry_subject_id(entry_id: str, handle: str) -> str:
    """The subject reference an entry carries: HMAC(handle, entry id), base64url.

    The handle (a pseudonym reference) is unknown outside the gateway, so the value
    tells a reader nothing; the privacy officer, who holds the handle from a subject
    search, can recompute it for any entry.
    """
    mac = hmac.new(
        handle.encode("ascii"), b"ketenpoort-audit-subject-v1:" + entry_id.encode(), "sha256"
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AuditEvent:
    action: str  # dotted verb, e.g. "token.issue", "signal.create", "policy.decide"
    outcome: Outcome
    actor: Actor
    resource_type: str | None = None
    resource_id: str | None = None
    policy_rule: str | None = None
    policy_digest: str | None = None
    purpose: str | None = None
    processing_activity: str | None = None
    subjects: tuple[SubjectRef, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)
    started: datetime | None = None
    ended: datetime | None = None


@dataclass(frozen=True)
class TraceFields:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    request_id: str | None
    #: What the caller sent as its own ids (X-Request-Id, traceparent): kept apart from
    #: ours, so no caller can file its requests under the meldpunt's ids.
    caller_request_id: str | None = None
    caller_trace_id: str | None = None
    caller_span_id: str | None = None


#: RFC 8785 (I-JSON) numbers are IEEE doubles: integers beyond ±(2**53 - 1) have no
#: canonical form, and `rfc8785` refuses them.
MAX_SAFE_INTEGER = 2**53 - 1


def json_safe(value: Any) -> Any:
    """`value` with every integer beyond the I-JSON range written as a decimal string, so a
    caller's large (but valid) index or size in `detail` cannot make the entry unwritable."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def build_entry(
    event: AuditEvent, trace: TraceFields, now: datetime | None = None
) -> dict[str, Any]:
    """The entry as a JSON object; its canonical bytes are the Merkle leaf."""
    now = now or datetime.now(UTC)
    started = event.started or now
    ended = event.ended or now
    entry_id = str(uuid.uuid4())
    entry: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "id": entry_id,
        "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestId": trace.request_id,
        "action": event.action,
        "outcome": event.outcome,
        "actor": event.actor.as_audit(),
        "resource": (
            {"type": event.resource_type, "id": event.resource_id} if event.resource_type else None
        ),
        "policy": (
            {"rule": event.policy_rule, "digest": event.policy_digest}
            if event.policy_rule or event.policy_digest
            else None
        ),
        "purpose": event.purpose,
        "subjects": [
            {"id": entry_subject_id(entry_id, s.id), "type": ENTRY_SUBJECT_TYPE}
            for s in event.subjects
        ],
        "detail": json_safe(event.detail),
        # LDV fields keep the standard's own names (like JWK or problem details do).
        "ldv": {
            "trace_id": trace.trace_id,
            "span_id": trace.span_id,
            "parent_span_id": trace.parent_span_id,
            "status": LDV_STATUS[event.outcome],
            "name": event.action,
            "start_time": _ms(started),
            "end_time": _ms(ended),
            "dpl.core.processing_activity_id": event.processing_activity,
        },
    }
    caller = {
        k: v
        for k, v in (
            ("requestId", trace.caller_request_id),
            ("traceId", trace.caller_trace_id),
            ("spanId", trace.caller_span_id),
        )
        if v is not None
    }
    if caller:
        entry["caller"] = caller
    return entry


def canonical_bytes(entry: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of `entry`. Every entry is plain JSON (strings, safe integers,
    ASCII keys), for which `json.dumps` with sorted keys writes exactly the RFC 8785
    bytes at a third of the pure-Python encoder's cost; anything else (a float, a
    non-ASCII key whose UTF-16 order might differ) goes to `rfc8785` itself."""
    if _plain(entry):
        try:
            return _JSON.encode(entry).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 refuses it with its own error
    data: bytes = rfc8785.dumps(entry)
    return data


#: RFC 8785 §3.2.2.2 escapes exactly as `json` does without ensure_ascii (\b \t \n \f \r
#: \" \\ and \u00xx in lower case for the other control characters).
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> bool:
    """True when `json` and RFC 8785 write `value` alike: only None, bool, str, safe int,
    list and dict with ASCII string keys (code point order = UTF-16 order).

    Loops rather than `all()` over generators: it runs for every entry written."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            if type(item) is str or item is None:
                continue
            if not _plain(item):
                return False
        return True
    if kind is list:
        for item in value:  # noqa: SIM110 (a loop: no generator per list)
            if type(item) is not str and not _plain(item):
                return False
        return True
    return False


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x00 || entry bytes)."""
    return hashlib.sha256(b"\x00" + data).digest()
