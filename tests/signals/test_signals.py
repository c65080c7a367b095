"""Storing, reading, paging, withdrawing and expiring signals (service layer, both DBs)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.api.paging import encode_cursor
from gateway.db import Database
from gateway.errors import InvalidInput, UnprocessableContent
from gateway.matching.models import MatchingOutboxRow, MatchRow, NotificationRow
from gateway.matching.processor import process_outbox
from gateway.matching.service import list_notifications
from gateway.signals.errors import IdempotencyKeyReused, InvalidCursor
from gateway.signals.models import SignalPseudonymRow, SignalRow
from gateway.signals.service import (
    create_signal,
    expire_due,
    get_payload,
    get_signal,
    list_signals,
    remember_response,
    signal_subject_refs,
    signals_by_pseudonyms,
    subject_refs,
    withdraw_signal,
)
from tests.conftest import TEST_CURSORS
from tests.signals.factory import NOW, PAYLOAD, count, new_signal, person


def test_create_stores_the_signal_with_its_pseudonyms(database: Database) -> None:
    subject = person()
    with database.transaction() as session:
        signal, created = create_signal(
            session, new_signal("police-oost", subject, reference="BVH-2026-00123"), now=NOW
        )
    assert created
    assert signal.organisation == "police-oost" and signal.organisation_kind == "police"
    assert signal.reference == "BVH-2026-00123" and signal.category == "possible-victim"
    assert signal.status == "active" and signal.withdrawn_at is None
    assert signal.created_at == NOW and signal.expires_at == NOW + timedelta(days=365)
    assert signal.linkage_keys == ("bsn", "name_dob") and signal.repeat_of is None
    with database.transaction(write=False) as session:
        assert get_signal(session, "police-oost", signal.id) == signal
        stored = {
            p.family: p.element for p in session.execute(select(SignalPseudonymRow)).scalars()
        }
        assert stored == subject
        assert get_payload(session, signal.id) == PAYLOAD
        # Its matching waits in the outbox, to run after the commit.
        (pending,) = session.execute(select(MatchingOutboxRow)).scalars()
        assert pending.event == "created" and pending.subjects is None


def test_only_one_linkage_key_is_enough(database: Database) -> None:
    with database.transaction() as session:
        signal = create_signal(session, new_signal("police-oost", person(bsn=False)), now=NOW)
    assert signal.signal.linkage_keys == ("name_dob",)


def test_another_organisations_signal_is_not_found(database: Database) -> None:
    with database.transaction() as session:
        signal = create_signal(session, new_signal("police-oost", person()), now=NOW).signal
    with database.transaction(write=False) as session:
        assert get_signal(session, "zorg-twente", signal.id) is None
        assert get_signal(session, "police-oost", "no-such-id") is None
    with database.transaction() as session:
        assert withdraw_signal(session, "zorg-twente", signal.id, NOW) is None
    with database.transaction(write=False) as session:
        assert get_signal(session, "police-oost", signal.id) is not None


@pytest.mark.parametrize(
    "change",
    [
        {"pseudonyms": {}},
        {"pseudonyms": {"email": b"\x00" * 32}},
        {"pseudonyms": {"bsn": b"\x00" * 31}},
        {"retention_days": 0},
    ],
)
def test_malformed_input_is_a_programming_error(database: Database, change: dict) -> None:
    base = new_signal("police-oost", person())
    fields = {**base.__dict__, **change}
    with database.transaction() as session, pytest.raises(ValueError):
        create_signal(session, type(base)(**fields), now=NOW)


def test_list_pages_are_stable_and_complete(database: Database) -> None:
    ids = []
    with database.transaction() as session:
        for _ in range(23):
            ids.append(
                create_signal(session, new_signal("police-oost", person()), now=NOW).signal.id
            )
            create_signal(session, new_signal("zorg-twente", person()), now=NOW)
    seen: list[str] = []
    cursor = None
    pages = 0
    with database.transaction(write=False) as session:
        while True:
            page = list_signals(session, "police-oost", cursor, 5, TEST_CURSORS)
            seen.extend(s.id for s in page.items)
            pages += 1
            if page.next is None:
                break
            cursor = page.next
            assert len(page.items) == 5
    assert seen == ids and pages == 5
    with database.transaction(write=False) as session:
        again = list_signals(session, "police-oost", None, 5, TEST_CURSORS)
        assert [s.id for s in again.items] == ids[:5]
        assert list_signals(session, "roc-twente", None, 5, TEST_CURSORS).items == []


def test_a_signal_added_while_paging_comes_last(database: Database) -> None:
    with database.transaction() as session:
        first = [
            create_signal(session, new_signal("police-oost", person()), now=NOW).signal.id
            for _ in range(4)
        ]
    with database.transaction(write=False) as session:
        page = list_signals(session, "police-oost", None, 2, TEST_CURSORS)
    with database.transaction() as session:
        late = create_signal(session, new_signal("police-oost", person()), now=NOW).signal.id
    seen = [s.id for s in page.items]
    with database.transaction(write=False) as session:
        while page.next:
            page = list_signals(session, "police-oost", page.next, 2, TEST_CURSORS)
            seen.extend(s.id for s in page.items)
    assert seen == [*first, late]


@pytest.mark.parametrize("cursor", ["not a cursor", "!!!", encode_cursor(1)[:-1] + "~", "aGVsbG8"])
def test_a_bad_cursor_is_a_400(database: Database, cursor: str) -> None:
    with database.transaction(write=False) as session, pytest.raises(InvalidCursor) as caught:
        list_signals(session, "police-oost", cursor, 10, TEST_CURSORS)
    assert isinstance(caught.value, InvalidInput) and caught.value.status == 400
    assert caught.value.slug == "invalid-cursor"
    assert caught.value.errors[0].parameter == "cursor"


def test_idempotent_retry_returns_the_first_response(database: Database) -> None:
    with database.transaction() as session:
        first = create_signal(
            session, new_signal("police-oost", person(), idempotency_key="k-1", body=b"A"), now=NOW
        )
        remember_response(session, first.signal.id, '{"id": "first"}')
    with database.transaction() as session:
        retry = create_signal(
            session, new_signal("police-oost", person(), idempotency_key="k-1", body=b"A"), now=NOW
        )
    assert retry.created is False
    assert retry.signal.id == first.signal.id
    assert retry.signal.stored_response == '{"id": "first"}'
    with database.transaction(write=False) as session:
        assert count(session, SignalRow) == 1 and count(session, SignalPseudonymRow) == 2


def test_idempotency_key_with_another_body_is_a_422(database: Database) -> None:
    with database.transaction() as session:
        create_signal(
            session, new_signal("police-oost", person(), idempotency_key="k-1", body=b"A"), now=NOW
        )
    with database.transaction() as session, pytest.raises(IdempotencyKeyReused) as caught:
        create_signal(
            session, new_signal("police-oost", person(), idempotency_key="k-1", body=b"B"), now=NOW
        )
    assert isinstance(caught.value, UnprocessableContent) and caught.value.status == 422
    assert caught.value.slug == "idempotency-key-reused"
    # Keys are per organisation: another partner may use the same one.
    with database.transaction() as session:
        other = create_signal(
            session, new_signal("zorg-twente", person(), idempotency_key="k-1", body=b"B"), now=NOW
        )
    assert other.created
    with database.transaction(write=False) as session:
        assert count(session, SignalRow) == 2


def test_withdrawal_forgets_payload_and_pseudonyms(database: Database) -> None:
    subject = person()
    with database.transaction() as session:
        signal = create_signal(session, new_signal("police-oost", subject), now=NOW).signal
        keep = create_signal(session, new_signal("police-oost", person()), now=NOW).signal
    later = NOW + timedelta(hours=1)
    with database.transaction() as session:
        removal = withdraw_signal(session, "police-oost", signal.id, later)
    assert removal is not None and removal.changed
    assert removal.signal.status == "withdrawn" and removal.signal.withdrawn_at == later
    assert removal.subjects == subject_refs(subject)
    with database.transaction(write=False) as session:
        row = session.execute(select(SignalRow).where(SignalRow.id == signal.id)).scalar_one()
        assert row.payload is None and row.status == "withdrawn"
        assert get_payload(session, signal.id) is None
        remaining = session.execute(select(SignalPseudonymRow.signal_pk)).scalars().all()
        assert set(remaining) == {
            session.execute(select(SignalRow.pk).where(SignalRow.id == keep.id)).scalar_one()
        }
        assert get_signal(session, "police-oost", signal.id).status == "withdrawn"  # type: ignore[union-attr]
        assert signals_by_pseudonyms(session, subject.items()) == []
    with database.transaction() as session:
        again = withdraw_signal(session, "police-oost", signal.id, later)
    assert again is not None and not again.changed and again.subjects == ()


def test_expiry_forgets_payload_and_pseudonyms(database: Database) -> None:
    with database.transaction() as session:
        short = create_signal(
            session, new_signal("police-oost", person(), retention_days=30), now=NOW
        )
        long = create_signal(
            session, new_signal("police-oost", person(), retention_days=90), now=NOW
        )
    with database.transaction() as session:
        assert expire_due(session, NOW + timedelta(days=29)) == []
    with database.transaction() as session:
        expired = expire_due(session, NOW + timedelta(days=30))
    process_outbox(database)  # the owner is told by the outbox processor
    assert [r.signal.id for r in expired] == [short.signal.id]
    assert expired[0].signal.status == "expired" and len(expired[0].subjects) == 2
    with database.transaction(write=False) as session:
        row = session.execute(select(SignalRow).where(SignalRow.id == short.signal.id)).scalar_one()
        assert row.payload is None and row.status == "expired"
        assert count(session, SignalPseudonymRow) == 2  # only the long one's
        assert get_signal(session, "police-oost", long.signal.id).status == "active"  # type: ignore[union-attr]
        # The owner hears of its own signal's expiry (nothing about anyone else).
        notes = list_notifications(session, "police-oost", None, 10, TEST_CURSORS).items
        assert [(n.type, n.signal_id) for n in notes] == [("signal.expired", short.signal.id)]
        assert count(session, MatchRow) == 0
    with database.transaction() as session:
        assert expire_due(session, NOW + timedelta(days=30)) == []
        # Withdrawing an expired signal changes nothing.
        removal = withdraw_signal(session, "police-oost", short.signal.id, NOW)
        assert removal is not None and not removal.changed


def test_expire_due_works_in_batches(database: Database) -> None:
    with database.transaction() as session:
        for _ in range(5):
            create_signal(session, new_signal("police-oost", person(), retention_days=1), now=NOW)
    batches = []
    while True:
        with database.transaction() as session:
            done = expire_due(session, NOW + timedelta(days=2), limit=2)
        if not done:
            break
        batches.append(len(done))
    assert batches == [2, 2, 1]
    assert [p.event for p in process_outbox(database)] == ["created"] * 5 + ["expired"] * 5
    with database.transaction(write=False) as session:
        assert count(session, SignalPseudonymRow) == 0
        assert count(session, NotificationRow) == 5


def test_subject_search_finds_signals_of_every_organisation(database: Database) -> None:
    subject = person()
    with database.transaction() as session:
        a = create_signal(session, new_signal("police-oost", {"bsn": subject["bsn"]}), now=NOW)
        b = create_signal(
            session, new_signal("zorg-twente", {"name_dob": subject["name_dob"]}), now=NOW
        )
        create_signal(session, new_signal("roc-twente", person()), now=NOW)
    with database.transaction(write=False) as session:
        found = signals_by_pseudonyms(session, subject.items())
        assert [s.id for s in found] == [a.signal.id, b.signal.id]
        assert signals_by_pseudonyms(session, []) == []
        # A family must agree too: the BSN element under another family finds nothing.
        assert signals_by_pseudonyms(session, [("name_dob", subject["bsn"])]) == []
        assert signal_subject_refs(session, a.signal.id) == subject_refs([subject["bsn"]])


def test_subject_refs_are_base64url_of_the_element() -> None:
    element = bytes(range(32))
    (ref,) = subject_refs({"bsn": element})
    assert ref.type == "ketenpoort-pseudonym"
    assert base64.urlsafe_b64decode(ref.id + "=") == element and "=" not in ref.id
