"""Retention: a signal past its retention is gone everywhere but the audit log, and the
epoch key of a month whose signals are all erased is destroyed (crypto-shredding)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from gateway.audit.models import AuditEntryRow
from gateway.cases.approvals import meldpunt_plaintext
from gateway.cases.models import CaseErasureRow, CaseSignalRow, SharePayloadRow
from gateway.cases.service import NewCase
from gateway.cli import main
from gateway.errors import InternalError
from gateway.keys import KeyStore, load_master_key
from gateway.keys.epochs import epoch_of, erasure_month
from gateway.lifecycle.retention import RetentionJob, RetentionService
from gateway.matching.models import MatchMemberRow, MatchRow, NotificationRow
from gateway.matching.processor import process_outbox
from gateway.signals.models import SignalPseudonymRow, SignalRow
from tests.audit.test_verify import cli_env, run_verify
from tests.cases.conftest import ANNA, World
from tests.lifecycle.support import store_signal


def _service(app: Flask) -> RetentionService:
    svc = app.extensions["ketenpoort"]
    return RetentionService(svc.db, svc.policy.engine, svc.keys)


def _count(app: Flask, model: Any, *where: Any) -> int:
    with app.extensions["ketenpoort"].db.session() as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar())


def _entries(app: Flask, action: str) -> list[dict[str, Any]]:
    with app.extensions["ketenpoort"].db.session() as session:
        rows = session.execute(select(AuditEntryRow).where(AuditEntryRow.action == action))
        return [json.loads(r.data) for r in rows.scalars()]


def test_a_signal_past_retention_is_gone_everywhere_but_the_audit_log(world: World) -> None:
    app = world.app
    world.partner("jeugdhulp-twente", "care")
    gone = store_signal(
        app, "Zij (15) spijbelt", days=30, org="roc-twente", kind="education", idempotency_key="k1"
    )
    stays = store_signal(app, "Hij (16)", days=400, org="jeugdhulp-twente", kind="care")
    world.match(gone, stays)
    with world.session() as session:
        case = world.svc.cases.create(session, ANNA, NewCase("Casus", signal_ids=(gone, stays)))
        world.svc.shares.share(
            session, ANNA, case.id, ["jeugdhulp-twente"], [gone], "care-referral"
        )
        session.commit()
    db = app.extensions["ketenpoort"].db
    process_outbox(db)
    assert _count(app, SharePayloadRow) == 1

    now = datetime.now(UTC) + timedelta(days=31)
    report = _service(app).run(now=now)
    assert (report.expired, report.erased, report.waiting, report.tombstones) == (1, 1, 0, 1)
    assert report.matches_removed == 1
    (group,) = report.groups
    assert (group.category, group.signals) == ("possible-victim", 1)

    # Gone: the row, pseudonyms, idempotency record, match, case link and share copy.
    assert _count(app, SignalRow, SignalRow.id == gone) == 0
    assert _count(app, SignalRow, SignalRow.idempotency_key.is_not(None)) == 0
    assert _count(app, SignalRow, SignalRow.id == stays, SignalRow.status == "active") == 1
    assert _count(app, SignalPseudonymRow) == 1  # the other signal's
    assert _count(app, MatchMemberRow) == _count(app, MatchRow) == 0
    assert _count(app, CaseSignalRow) == 1
    assert _count(app, SharePayloadRow) == 0
    with db.session() as session:
        (tombstone,) = session.execute(select(CaseErasureRow)).scalars()
        assert tombstone.category == "possible-victim"
        assert tombstone.erased_at.replace(tzinfo=UTC) == now
        notified = {
            (n.recipient, n.type)
            for n in session.execute(
                select(NotificationRow).where(NotificationRow.signal_id == gone)
            ).scalars()
        }
    # The coordinator and the owner heard of the expiry before the signal went.
    assert {("role:coordinator", "signal.expired"), ("roc-twente", "signal.expired")} <= notified

    # The audit log keeps the expiry and one entry for the run, which holds no id.
    assert [e for e in _entries(app, "signal.expire") if e["resource"]["id"] == gone]
    (run,) = _entries(app, "retention.run")
    assert run["detail"]["erased"] == 1 and gone not in json.dumps(run)
    assert run_verify(app.extensions["ketenpoort"].settings)[0] == 0

    # The case shows the tombstone.
    with world.session() as session:
        shown = world.svc.cases.get(session, ANNA, case.id)
    assert [s.id for s in shown.signals] == [stays]

    # A second run finds nothing and writes no entry (the job runs every minute).
    again = _service(app).run(now=now)
    assert (again.expired, again.erased) == (0, 0)
    assert len(_entries(app, "retention.run")) == 1


def test_erased_payloads_do_not_come_back_from_an_old_database(world: World) -> None:
    """Back up (the stored payloads), erase, restore with the current key store: the
    erased signals' payloads do not decrypt, the others do."""
    app = world.app
    svc = app.extensions["ketenpoort"]
    now = datetime.now(UTC)
    short = store_signal(app, "kort bewaard", days=1, now=now)
    long = store_signal(app, "lang bewaard", days=400, now=now)
    legacy = store_signal(app, "van voor de epochs", days=400, now=now, sealed=False)
    with svc.db.session() as session:
        backup = {i: p for i, p in session.execute(select(SignalRow.id, SignalRow.payload))}
    short_epoch = epoch_of(backup[short])
    assert short_epoch and short_epoch.startswith(erasure_month(now + timedelta(days=1)))
    assert epoch_of(backup[long]) not in (None, short_epoch) and epoch_of(backup[legacy]) is None
    assert "kort" not in backup[short] and "recipients" not in backup[short]

    # Before its month has ended the epoch key stays, even with its signals erased.
    early = now + timedelta(days=2)
    assert _service(app).run(now=early).epoch_keys == ()
    end = datetime(early.year + early.month // 12, early.month % 12 + 1, 1, tzinfo=UTC)
    dry = _service(app).run(now=end, dry_run=True)
    assert dry.epoch_keys == (short_epoch,)
    report = _service(app).run(now=end)
    assert report.epoch_keys == (short_epoch,)
    (destroyed,) = _entries(app, "key.destroy")
    assert destroyed["resource"] == {"type": "epoch-key", "id": short_epoch}

    settings = svc.settings
    current = KeyStore(
        settings.keys_dir, load_master_key(settings.keys_dir, settings.master_key, create=False)
    )
    with pytest.raises(InternalError, match="destroyed"):
        meldpunt_plaintext(current, backup[short])
    assert meldpunt_plaintext(current, backup[long]) == b"lang bewaard"
    assert meldpunt_plaintext(current, backup[legacy]) == b"van voor de epochs"
    assert [e.kid for e in current.epochs()] == [epoch_of(backup[long])]


def test_sealed_payloads_are_read_and_shared_as_before(world: World) -> None:
    app = world.app
    sid = store_signal(app, "meisje, 15", days=30)
    with world.session() as session:
        read = world.svc.payloads.read(session, ANNA, sid, "case-assessment")
        session.commit()
    assert read.content == b"meisje, 15"


def test_submissions_store_the_payload_wrapped_under_its_epoch(
    app: Flask, client: Any, police: dict[str, str]
) -> None:
    from tests.signals.test_api import body

    created = client.post("/v1/signals", json=body(client, police), headers=police).get_json()
    with app.extensions["ketenpoort"].db.session() as session:
        row = session.execute(select(SignalRow).where(SignalRow.id == created["id"])).scalar_one()
    assert row.payload is not None and row.payload_epoch == epoch_of(row.payload)
    assert row.payload_epoch.startswith(erasure_month(row.expires_at))


def test_dry_run_and_run_from_the_command_line(world: World) -> None:
    app = world.app
    past = datetime.now(UTC) - timedelta(days=40)
    store_signal(app, "a", days=30, now=past)
    store_signal(app, "b", days=31, now=past, category="possible-perpetrator")
    store_signal(app, "c", days=400)
    env = cli_env(app.extensions["ketenpoort"].settings)
    dry = CliRunner().invoke(main, ["retention", "run", "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.stdout)
    month = erasure_month(past + timedelta(days=30))
    assert data["dryRun"] is True and data["due"] == 2 and data["erased"] == 0
    assert {(g["category"], g["signals"]) for g in data["groups"]} == {
        ("possible-victim", 1),
        ("possible-perpetrator", 1),
    }
    assert month in {g["month"] for g in data["groups"]}
    assert _count(app, SignalRow) == 3 and _entries(app, "retention.run") == []

    human = CliRunner().invoke(main, ["retention", "run"], env=env)
    assert human.exit_code == 0, human.output
    assert "erased 2 signal(s)" in human.stdout and "possible-perpetrator" in human.stdout
    assert _count(app, SignalRow) == 1
    (run,) = _entries(app, "retention.run")
    assert run["actor"]["type"] != "system"  # the operator's run


def test_the_background_job_runs_the_same_service(world: World) -> None:
    app = world.app
    store_signal(app, "a", days=30)
    service = _service(app)
    service.clock = lambda: datetime.now(UTC) + timedelta(days=31)
    assert RetentionJob(service).step() is False
    assert _count(app, SignalRow) == 0
