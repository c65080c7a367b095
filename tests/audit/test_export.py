"""Exports: LDV records (one per subject, no user identity), JSON Lines and CSV; the CLI."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner
from sqlalchemy import select

from gateway.audit import AuditEvent, SubjectRef, record_event
from gateway.audit.entries import ENTRY_SUBJECT_TYPE, entry_subject_id
from gateway.audit.export import ldv_records
from gateway.audit.models import AuditEntryRow
from gateway.cli import main
from gateway.config import Settings
from gateway.db import Database
from tests.audit.conftest import OFFICER, POLICE, write_events
from tests.audit.test_verify import cli_env

ACTIVITY = "https://register.example.nl/verwerkingen/mensenhandel-signalen"


def _entry(db: Database, event: AuditEvent) -> dict[str, object]:
    with db.transaction() as session:
        record_event(session, event)
    with db.session() as session:
        data = (
            session.execute(select(AuditEntryRow.data).order_by(AuditEntryRow.id.desc()))
            .scalars()
            .first()
        )
    assert data is not None
    return json.loads(data)  # type: ignore[no-any-return]


def test_one_ldv_record_per_subject_without_user_identities(database: Database) -> None:
    entry = _entry(
        database,
        AuditEvent(
            action="case.read",
            outcome="success",
            actor=OFFICER,
            purpose="data-subject request 2026-17",
            processing_activity=ACTIVITY,
            subjects=(
                SubjectRef("cHNldWRvLWE", "ketenpoort-pseudonym"),
                SubjectRef("cHNldWRvLWI", "ketenpoort-pseudonym"),
            ),
        ),
    )
    first, second = ldv_records(entry)
    for record in (first, second):
        assert record["trace_id"] == entry["ldv"]["trace_id"]  # type: ignore[index]
        assert record["name"] == "case.read" and record["status_code"] == "STATUS_CODE_OK"
        assert record["attributes"]["dpl.core.processing_activity_id"] == ACTIVITY
        assert record["attributes"]["dpl.core.data_subject_id_type"] == ENTRY_SUBJECT_TYPE
        assert isinstance(record["start_time"], int) and record["end_time"] >= record["start_time"]
        text = json.dumps(record)
        assert OFFICER.id not in text and "privacy-officer" not in text and "meldpunt" not in text
    assert first["attributes"]["dpl.core.data_subject_id"] == entry_subject_id(
        str(entry["id"]), "cHNldWRvLWE"
    )
    assert second["attributes"]["dpl.core.data_subject_id"] == entry_subject_id(
        str(entry["id"]), "cHNldWRvLWI"
    )
    assert first["span_id"] == entry["ldv"]["span_id"]  # type: ignore[index]
    assert second["parent_span_id"] == first["span_id"] and len(second["span_id"]) == 16
    assert second["span_id"] != first["span_id"]


def test_ldv_status_follows_the_standard(database: Database) -> None:
    denied = _entry(
        database,
        AuditEvent(
            action="signal.read", outcome="denied", actor=POLICE, subjects=(SubjectRef("eA", "t"),)
        ),
    )
    failed = _entry(
        database,
        AuditEvent(
            action="signal.read", outcome="error", actor=POLICE, subjects=(SubjectRef("eA", "t"),)
        ),
    )
    assert ldv_records(denied)[0]["status_code"] == "STATUS_CODE_UNSET"  # handled without fault
    assert ldv_records(failed)[0]["status_code"] == "STATUS_CODE_ERROR"
    assert (
        ldv_records(_entry(database, AuditEvent(action="x", outcome="success", actor=POLICE))) == []
    )


def test_cli_export_and_sequence(settings: Settings, database: Database) -> None:
    runner = CliRunner()
    env = cli_env(settings)
    write_events(database, 3, subject="c3ViamVjdA")
    write_events(database, 1, POLICE, action='=HYPERLINK("http://x")')
    result = runner.invoke(main, ["audit", "sequence", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"sequenced": 4, "treeSize": 4}
    ldv = runner.invoke(main, ["audit", "export", "--format", "ldv"], env=env)
    assert ldv.exit_code == 0, ldv.output
    records = [json.loads(line) for line in ldv.stdout.splitlines()]
    assert len(records) == 3 and "police" not in ldv.stdout
    lines = runner.invoke(
        main, ["audit", "export", "--format", "jsonl"], env=env
    ).stdout.splitlines()
    assert [json.loads(x)["index"] for x in lines] == [0, 1, 2, 3]
    table = runner.invoke(main, ["audit", "export", "--format", "csv"], env=env).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == 4 and rows[3]["action"].startswith("'=")  # no formula runs in a spreadsheet
    with database.session() as session:
        actions = session.execute(
            select(AuditEntryRow.action).where(AuditEntryRow.action == "audit.export")
        ).all()
    assert len(actions) == 3  # every export is an entry too


def test_cli_init_is_audited(settings: Settings, tmp_path: object) -> None:
    from dataclasses import replace

    env = cli_env(replace(settings, keys_dir=settings.keys_dir.parent / "fresh-keys"))
    result = CliRunner().invoke(main, ["init", "--json"], env=env)
    assert result.exit_code == 0, result.output
    db = Database(settings.database_url)
    with db.session() as session:
        rows = session.execute(select(AuditEntryRow.action, AuditEntryRow.actor_id)).all()
    db.dispose()
    assert sorted(a for a, _ in rows) == ["admin.init"] + ["key.create"] * 4 + ["partner.register"]
    # the operator did the administration; the system registered its own meldpunt
    assert all(actor.startswith("cli:") for a, actor in rows if a != "partner.register")


def test_export_counts_every_entry_it_writes() -> None:
    """The export's progress bar is told how many entries went, at the end exactly all."""
    from gateway.audit.cli import _counted

    told: list[int] = []
    assert list(_counted(iter(range(2500)), told.append)) == list(range(2500))
    assert told == [1000, 2000, 2500]
    assert list(_counted(iter("ab"), None)) == ["a", "b"]
