"""An audit entry commits with its action or not at all; its leaf is RFC 9162 over RFC 8785."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func, select

from gateway.actors import Actor
from gateway.audit import AuditEvent, SubjectRef, record_event
from gateway.audit.entries import ENTRY_SUBJECT_TYPE, entry_subject_id
from gateway.audit.models import AuditEntryRow, AuditSubjectRow
from gateway.config import Settings
from gateway.db import Database

ACTOR = Actor(type="client", id="police-bvh", organisation="police", scopes=frozenset())


def event(**kwargs: object) -> AuditEvent:
    base: dict[str, object] = {"action": "signal.create", "outcome": "success", "actor": ACTOR}
    base.update(kwargs)
    return AuditEvent(**base)  # type: ignore[arg-type]


def test_entry_commits_with_the_action(settings: Settings, initialised: object) -> None:
    database = Database(settings.database_url)
    with database.transaction() as session:
        receipt = record_event(
            session,
            event(subjects=(SubjectRef("c2lnbmFs", "ketenpoort-pseudonym"),)),
        )
    with database.transaction(write=False) as session:
        row = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.action == "signal.create")
        ).scalar_one()
    assert row.leaf_hash == receipt.leaf_hash == hashlib.sha256(b"\x00" + row.data).digest()
    entry = json.loads(row.data)
    assert row.data == json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    assert entry["actor"] == {"type": "client", "id": "police-bvh", "organisation": "police"}
    assert entry["ldv"]["status"] == "Ok" and len(entry["ldv"]["trace_id"]) == 32
    # The entry names the subject by a reference made for it alone; the handle is
    # only in the index beside it.
    assert entry["subjects"] == [
        {"id": entry_subject_id(entry["id"], "c2lnbmFs"), "type": ENTRY_SUBJECT_TYPE}
    ]
    assert b"c2lnbmFs" not in row.data
    database.dispose()


def test_subject_handles_are_indexed_beside_their_entry_once_each(
    settings: Settings, initialised: object
) -> None:
    database = Database(settings.database_url)
    pseudonym = "ketenpoort-pseudonym"
    with database.transaction() as session:
        record_event(session, event(action="a.none"))
        record_event(
            session,
            event(
                action="a.two",
                subjects=(
                    SubjectRef("aGFuZGxlLTE", pseudonym),
                    SubjectRef("aGFuZGxlLTI", pseudonym),
                    SubjectRef("aGFuZGxlLTE", pseudonym),
                ),
            ),
        )
        record_event(
            session, event(action="a.one", subjects=(SubjectRef("aGFuZGxlLTM", pseudonym),))
        )
    with database.transaction(write=False) as session:
        rows = session.execute(
            select(AuditEntryRow.action, AuditSubjectRow.subject_id)
            .join(AuditSubjectRow, AuditSubjectRow.entry_id == AuditEntryRow.id, isouter=True)
            .where(AuditEntryRow.action.like("a.%"))
            .order_by(AuditEntryRow.id, AuditSubjectRow.subject_id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("a.none", None),
        ("a.two", "aGFuZGxlLTE"),
        ("a.two", "aGFuZGxlLTI"),
        ("a.one", "aGFuZGxlLTM"),
    ]
    database.dispose()


def test_failed_action_leaves_no_entry(settings: Settings, initialised: object) -> None:
    database = Database(settings.database_url)
    with pytest.raises(RuntimeError), database.transaction() as session:
        record_event(session, event())
        raise RuntimeError("the action failed after its entry was added")
    with database.transaction(write=False) as session:
        count = select(func.count(AuditEntryRow.id)).where(AuditEntryRow.action == "signal.create")
        assert session.execute(count).scalar_one() == 0
    database.dispose()


def test_equal_events_get_distinct_leaves(settings: Settings, initialised: object) -> None:
    database = Database(settings.database_url)
    with database.transaction() as session:
        a = record_event(session, event())
        b = record_event(session, event())
    assert a.leaf_hash != b.leaf_hash
    database.dispose()
