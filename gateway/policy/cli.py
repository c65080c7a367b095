"""`ketenpoort policy check|test|show|versions`.

FILE defaults to `KETENPOORT_POLICY`. Problems go to stderr, one per line, naming file,
line and field, with exit 1; `--json` prints the result as JSON on stdout instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.cli_support import admin_database, settings_from_env
from gateway.errors import OperatorError

if TYPE_CHECKING:
    from gateway.db import Database
    from gateway.policy.loader import LoadedPolicy


def _path(file: str | None) -> Path:
    return Path(file) if file is not None else settings_from_env().policy


def _load(file: str | None) -> LoadedPolicy:
    from gateway.policy.loader import load_policy

    return load_policy(_path(file))  # a PolicyError is an OperatorError: one line


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group("policy")
def policy() -> None:
    """Check, test and show the data-sharing policy."""


@policy.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check(file: str | None, as_json: bool) -> None:
    """Validate a policy file (default: KETENPOORT_POLICY)."""
    from gateway.policy.loader import PolicyError, load_policy

    path = _path(file)
    try:
        loaded = load_policy(path)
    except PolicyError as exc:
        if as_json:
            problems = [
                {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                for p in exc.problems
            ]
            _dump({"valid": False, "file": str(path), "problems": problems})
        else:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
        raise SystemExit(1) from None
    p = loaded.policy
    if as_json:
        _dump(
            {
                "valid": True,
                "file": str(path),
                "id": p.id,
                "version": p.version,
                "digest": loaded.digest,
                "tests": len(p.tests),
            }
        )
    else:
        click.echo(f"{path}: valid — {p.id} version {p.version}, digest {loaded.digest}")


@policy.command("test")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def test(file: str | None, as_json: bool) -> None:
    """Run the test cases in a policy file; exit 1 when one fails."""
    from gateway.policy.cases import run_cases
    from gateway.policy.engine import PolicyEngine

    loaded = _load(file)
    results = run_cases(PolicyEngine(loaded))
    failed = [r for r in results if not r.passed]
    if as_json:
        _dump(
            {
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "digest": loaded.digest,
                "results": [
                    {
                        "name": r.case.name,
                        "passed": r.passed,
                        "decision": r.decision.as_json(),
                        "failures": list(r.failures),
                    }
                    for r in results
                ],
            }
        )
    else:
        for r in results:
            click.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.case.name}")
            for failure in r.failures:
                click.echo(f"      {failure}")
        click.echo(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise SystemExit(1)


@policy.command("show")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--digest", help="Show a version once active in this database, by its digest.")
@click.option("--json", "as_json", is_flag=True, help="Print the canonical document as JSON.")
def show(file: str | None, digest: str | None, as_json: bool) -> None:
    """Render the policy as Markdown for the privacy officer."""
    from gateway.policy.render import to_markdown

    loaded = _stored(digest) if digest else _load(file)
    if as_json:
        _dump({"digest": loaded.digest, "document": json.loads(loaded.canonical)})
    else:
        click.echo(to_markdown(loaded), nl=False)


@policy.command("versions")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def versions(as_json: bool) -> None:
    """List the policy versions that were ever active, newest first."""
    from gateway.policy.active import list_versions

    database = _database()
    try:
        with database.transaction(write=False) as session:
            rows = [
                {
                    "digest": row.digest,
                    "id": row.policy_id,
                    "version": row.version,
                    "firstActivatedAt": row.first_activated_at.isoformat(),
                    "activatedAt": row.activated_at.isoformat(),
                }
                for row in list_versions(session)
            ]
    finally:
        database.dispose()
    if as_json:
        _dump({"versions": rows})
    else:
        for r in rows:
            click.echo(f"{r['activatedAt']}  {r['digest']}  {r['id']} {r['version']}")


def _database() -> Database:
    return admin_database(settings_from_env())


def _stored(digest: str) -> LoadedPolicy:
    from gateway.policy.active import version_by_digest
    from gateway.policy.loader import parse_document

    database = _database()
    try:
        with database.transaction(write=False) as session:
            row = version_by_digest(session, digest)
            document = row.document if row is not None else None
    finally:
        database.dispose()
    if document is None:
        raise OperatorError(f"no policy version with digest {digest} in this database")
    loaded = parse_document(json.loads(document), f"digest {digest}")  # PolicyError: one line
    if loaded.digest != digest:
        raise OperatorError(f"the stored document does not hash to {digest}")
    return loaded


@policy.command("schema")
@click.argument("output", required=False, type=click.Path(dir_okay=False), default=None)
def schema(output: str | None) -> None:
    """Print the JSON Schema of the policy format, or write it to OUTPUT."""
    from gateway.policy.schema import json_schema, schema_text

    if output is None:
        click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    else:
        Path(output).write_text(schema_text(), encoding="utf-8")
