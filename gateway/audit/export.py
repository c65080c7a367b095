"""Export formats: JSON Lines and CSV of entries, and Logboek Dataverwerkingen records.

LDV (Logboek Dataverwerkingen 1.0) wants one record per data subject, with trace and
span ids, name, status, start and end in ms, and the attributes
`dpl.core.processing_activity_id`, `dpl.core.data_subject_id`,
`dpl.core.data_subject_id_type`. Per LDV §2.3.4 an LDV record names no user: the
actor stays in our own audit entries only. When an entry concerns several subjects,
the first record carries the entry's span and each further subject a child span
(derived deterministically), as the standard's reference implementation does.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from gateway import __version__
from gateway.audit.queries import StoredEntry

LDV_STATUS_CODES = {
    "Unset": "STATUS_CODE_UNSET",
    "Ok": "STATUS_CODE_OK",
    "Error": "STATUS_CODE_ERROR",
}
CSV_COLUMNS = (
    "index",
    "leafHash",
    "time",
    "action",
    "outcome",
    "actorType",
    "actorId",
    "actorOrganisation",
    "actorRole",
    "resourceType",
    "resourceId",
    "policyRule",
    "policyDigest",
    "purpose",
    "processingActivity",
    "subjects",
    "requestId",
    "traceId",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


#: Entries of schema version 1 named the LDV fields in camelCase.
_V1_NAMES = {
    "trace_id": "traceId",
    "span_id": "spanId",
    "parent_span_id": "parentSpanId",
    "start_time": "startTimeMs",
    "end_time": "endTimeMs",
    "dpl.core.processing_activity_id": "processingActivityId",
}


def ldv_fields(data: dict[str, Any]) -> dict[str, Any]:
    """An entry's LDV block under LDV's own names, whatever the entry's schema version."""
    ldv = dict(data.get("ldv") or {})
    for name, old in _V1_NAMES.items():
        if name not in ldv and old in ldv:
            ldv[name] = ldv.pop(old)
    return ldv


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def api_item(entry: StoredEntry) -> dict[str, Any]:
    """An entry as the API and the JSON Lines export give it."""
    return {
        "index": entry.index,
        "leafHash": b64(entry.leaf_hash),
        "data": b64(entry.data),
        "entry": json.loads(entry.data),
    }


def jsonl_lines(entries: Iterable[StoredEntry]) -> Iterator[str]:
    for entry in entries:
        yield json.dumps(api_item(entry), ensure_ascii=False, separators=(",", ":")) + "\n"


def _cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted (OWASP)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_row(entry: StoredEntry) -> list[str]:
    data = json.loads(entry.data)
    actor = data.get("actor") or {}
    resource = data.get("resource") or {}
    policy = data.get("policy") or {}
    ldv = ldv_fields(data)
    values = [
        data.get("time"),
        data.get("action"),
        data.get("outcome"),
        actor.get("type"),
        actor.get("id"),
        actor.get("organisation"),
        actor.get("role"),
        resource.get("type"),
        resource.get("id"),
        policy.get("rule"),
        policy.get("digest"),
        data.get("purpose"),
        ldv.get("dpl.core.processing_activity_id"),
        " ".join(s["id"] for s in data.get("subjects") or []),
        data.get("requestId"),
        ldv.get("trace_id"),
    ]
    return [str(entry.index), b64(entry.leaf_hash), *(_cell(v) for v in values)]


def csv_lines(entries: Iterable[StoredEntry]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow(csv_row(entry))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def _child_span(span_id: str, number: int) -> str:
    return hashlib.sha256(f"{span_id}:{number}".encode()).hexdigest()[:16]


def ldv_records(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The LDV records of one entry: one per data subject, none without subjects."""
    ldv = ldv_fields(data)
    records = []
    for number, subject in enumerate(data.get("subjects") or []):
        span = ldv["span_id"] if number == 0 else _child_span(ldv["span_id"], number)
        parent = ldv.get("parent_span_id") if number == 0 else ldv["span_id"]
        attributes: dict[str, Any] = {
            "dpl.core.data_subject_id": subject["id"],
            "dpl.core.data_subject_id_type": subject["type"],
        }
        if ldv.get("dpl.core.processing_activity_id"):
            attributes["dpl.core.processing_activity_id"] = ldv["dpl.core.processing_activity_id"]
        record: dict[str, Any] = {
            "trace_id": ldv["trace_id"],
            "span_id": span,
            "name": ldv.get("name") or data.get("action"),
            "status_code": LDV_STATUS_CODES.get(ldv.get("status", "Unset"), "STATUS_CODE_UNSET"),
            "start_time": ldv["start_time"],
            "end_time": ldv["end_time"],
            "resource": {
                "attributes": {"service.name": "ketenpoort", "service.version": __version__}
            },
            "attributes": attributes,
        }
        if parent:
            record["parent_span_id"] = parent
        records.append(record)
    return records


def ldv_lines(entries: Iterable[StoredEntry]) -> Iterator[str]:
    for entry in entries:
        for record in ldv_records(json.loads(entry.data)):
            yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


FORMATS = {"jsonl": jsonl_lines, "csv": csv_lines, "ldv": ldv_lines}
MEDIA_TYPES = {"jsonl": "application/jsonl", "csv": "text/csv", "ldv": "application/jsonl"}
