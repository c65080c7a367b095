"""`/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

from flask import Blueprint, Response

from gateway.api.openapi import operation
from gateway.api.validation import json_response
from gateway.errors import ServiceUnavailable
from gateway.services import services

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@operation(operation_id="healthz", summary="Liveness", documented=False)
def healthz() -> Response:
    return json_response({"status": "ok"})


@bp.get("/readyz")
@operation(operation_id="readyz", summary="Readiness", documented=False)
def readyz() -> Response:
    """Ready when the database answers, the keys exist and every domain check passes."""
    failures: dict[str, str] = {}
    svc = services()
    try:
        svc.db.ping()
    except Exception as exc:
        failures["database"] = type(exc).__name__
    missing = svc.keys.missing()
    if missing:
        failures["keys"] = "missing: " + ", ".join(p.value for p in missing)
    for name, check in svc.readiness.items():
        try:
            check()
        except Exception as exc:
            failures[name] = str(exc) or type(exc).__name__
    if failures:
        reasons = "; ".join(f"{name}: {why}" for name, why in sorted(failures.items()))
        raise ServiceUnavailable(f"Not ready — {reasons}.", headers={"Retry-After": "5"})
    return json_response({"status": "ready"})


@bp.get("/metrics")
@operation(
    operation_id="metrics",
    summary="Prometheus metrics",
    documented=False,
    produces=("text/plain",),
)
def metrics() -> Response:
    data = services().metrics.render()
    return Response(data, mimetype="text/plain", content_type="text/plain; version=0.0.4")
