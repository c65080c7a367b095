"""The OpenAPI document is valid 3.1 and passes the official NL API Design Rules linter."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from gateway.api.openapi import build_openapi
from tests.conftest import ROOT, TEST_ISSUER
from tests.shared_folder import shared_path

RULESET = ("adr", "linter-2.2.1.yaml")  # in ../shared beside the repository
SPECTRAL = ROOT / "node_modules" / ".bin" / "spectral"


def test_document_is_valid_openapi_31(client: FlaskClient) -> None:
    document = client.get("/v1/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["servers"][0]["url"] == f"{TEST_ISSUER}/v1"
    assert set(document["info"]["contact"]) >= {"name", "url", "email"}


def test_every_documented_response_declares_api_version(client: FlaskClient) -> None:
    document = client.get("/v1/openapi.json").get_json()
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            for code, response in op["responses"].items():
                if "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[-1]
                    response = document["components"]["responses"][name]
                assert "API-Version" in response["headers"], (path, method, code)


def test_paths_are_kebab_case_without_trailing_slash(client: FlaskClient) -> None:
    document = client.get("/v1/openapi.json").get_json()
    for path in document["paths"]:
        assert path == "/" or not path.endswith("/")
        assert path.lower() == path or "{" in path


def test_adr_linter_passes_with_zero_errors(app: Flask, tmp_path: Path) -> None:
    """`make test` installs Spectral; the ruleset is the official ADR 2.2.1 one."""
    ruleset = shared_path(*RULESET)  # a clear error when ../shared is missing
    spectral = str(SPECTRAL) if SPECTRAL.exists() else shutil.which("spectral")
    assert spectral, "Spectral is not installed; run `make test` (it runs npm install)"
    with app.app_context():
        document = build_openapi(app, "https://ketenpoort.example.nl")
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    result = subprocess.run(
        [spectral, "lint", "-r", str(ruleset), "-f", "json", "--quiet", str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f.get("severity") == 0]
    assert errors == [], json.dumps(errors, indent=2)
