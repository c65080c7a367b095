"""Match detection and clusters: across organisations, repeats, growth, merges, twins.

Matching runs after the submission's commit, in the outbox processor: `submit` stores a
signal, then drains the outbox as the background job would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, select

from gateway.db import Database
from gateway.matching.models import COORDINATOR, MatchRow
from gateway.matching.processor import Processed, process_outbox
from gateway.matching.service import (
    HitPolicy,
    HitRule,
    Match,
    MatchChange,
    candidate_pks,
    get_match,
    list_matches,
    list_notifications,
    no_hits,
    stored_sharing,
)
from gateway.signals.models import SignalRow
from gateway.signals.service import (
    Signal,
    create_signal,
    expire_due,
    get_signal,
    withdraw_signal,
)
from tests.conftest import TEST_CURSORS
from tests.signals.factory import NOW, new_signal, person


@dataclass(frozen=True)
class Submitted:
    """A stored signal (as read back after matching) and what its matching did."""

    signal: Signal
    matches: list[MatchChange] = field(default_factory=list)


def drain(database: Database, hit_policy: HitPolicy = no_hits) -> list[Processed]:
    """Do the matching work the outbox holds, as the background job would."""
    return process_outbox(database, hit_policy)


def submit(
    database: Database,
    organisation: str,
    pseudonyms: dict[str, bytes],
    *,
    now: datetime = NOW,
    hit_policy: HitPolicy = no_hits,
) -> Submitted:
    with database.transaction() as session:
        created = create_signal(session, new_signal(organisation, pseudonyms), now=now)
    (done,) = [p for p in drain(database, hit_policy) if p.signal_id == created.signal.id]
    with database.transaction(write=False) as session:
        signal = get_signal(session, organisation, created.signal.id)
    assert signal is not None
    return Submitted(signal, done.changes)


def withdraw(
    database: Database,
    organisation: str,
    signal_id: str,
    now: datetime,
    hit_policy: HitPolicy = no_hits,
) -> Processed:
    with database.transaction() as session:
        assert withdraw_signal(session, organisation, signal_id, now) is not None
    (done,) = drain(database, hit_policy)
    assert done.event == "withdrawn" and done.signal_id == signal_id
    return done


def all_matches(database: Database) -> list[Match]:
    with database.transaction(write=False) as session:
        return list_matches(session, None, 200).items


def members(match: Match) -> set[str]:
    return {s.id for s in match.signals}


def notes(database: Database, recipient: str) -> list[tuple[str, str | None, str | None]]:
    with database.transaction(write=False) as session:
        items = list_notifications(session, recipient, None, 200, TEST_CURSORS).items
    return [(n.type, n.signal_id, n.match_id) for n in items]


def test_two_organisations_signalling_one_person_match(database: Database) -> None:
    subject = person()
    police = submit(database, "police-oost", subject, now=NOW)
    care = submit(database, "zorg-twente", subject, now=NOW)
    assert police.matches == []
    (change,) = care.matches
    assert change.kind == "created" and change.added_signal_ids[0] == care.signal.id
    (match,) = all_matches(database)
    assert match.id == change.match.id
    assert members(match) == {police.signal.id, care.signal.id}
    assert match.linkage_keys == ("bsn", "name_dob")
    by_id = {s.id: s for s in match.signals}
    assert by_id[police.signal.id].organisation == "police-oost"
    assert by_id[care.signal.id].reference == care.signal.reference
    assert by_id[care.signal.id].category == "possible-victim"
    assert notes(database, COORDINATOR) == [("match", care.signal.id, match.id)]
    # The default policy tells partners nothing: the coordinator decides what to share.
    assert notes(database, "police-oost") == [] and notes(database, "zorg-twente") == []


def test_linkage_keys_name_what_agreed(database: Database) -> None:
    subject = person()
    submit(database, "police-oost", {"bsn": subject["bsn"]}, now=NOW)
    submit(database, "zorg-twente", subject, now=NOW)
    other = person()
    submit(database, "police-oost", {"name_dob": other["name_dob"]}, now=NOW)
    submit(database, "zorg-twente", other, now=NOW)
    first, second = all_matches(database)
    assert first.linkage_keys == ("bsn",) and second.linkage_keys == ("name_dob",)


def test_different_people_do_not_match(database: Database) -> None:
    submit(database, "police-oost", person(), now=NOW)
    submit(database, "zorg-twente", person(), now=NOW)
    assert all_matches(database) == []


def test_one_organisation_twice_is_a_repeat_not_a_match(database: Database) -> None:
    subject = person()
    first = submit(database, "police-oost", subject, now=NOW)
    second = submit(database, "police-oost", subject, now=NOW)
    third = submit(database, "police-oost", {"name_dob": subject["name_dob"]}, now=NOW)
    assert second.matches == [] and third.matches == []
    assert second.signal.repeat_of == first.signal.id
    assert third.signal.repeat_of == first.signal.id
    assert all_matches(database) == [] and notes(database, COORDINATOR) == []


def test_a_third_partner_grows_the_match(database: Database) -> None:
    subject = person()
    a = submit(database, "police-oost", subject, now=NOW)
    b = submit(database, "zorg-twente", subject, now=NOW)
    c = submit(database, "roc-twente", {"name_dob": subject["name_dob"]}, now=NOW)
    (change,) = c.matches
    assert change.kind == "grown" and change.added_signal_ids == (c.signal.id,)
    (match,) = all_matches(database)
    assert members(match) == {a.signal.id, b.signal.id, c.signal.id}
    assert {s.id: s.linkage_keys for s in match.signals}[c.signal.id] == ("name_dob",)
    assert notes(database, COORDINATOR) == [
        ("match", b.signal.id, match.id),
        ("match.updated", c.signal.id, match.id),
    ]


def test_a_repeat_of_a_matched_signal_does_not_join_twice(database: Database) -> None:
    subject = person()
    submit(database, "police-oost", subject, now=NOW)
    submit(database, "zorg-twente", subject, now=NOW)
    again = submit(database, "police-oost", subject, now=NOW)
    # Another police signal about the person is both a repeat and in the match.
    assert again.signal.repeat_of is not None
    (change,) = again.matches
    assert change.kind == "grown"
    (match,) = all_matches(database)
    assert len(match.signals) == 3


def test_a_bridging_signal_merges_two_matches(database: Database) -> None:
    subject = person()
    a = submit(database, "police-oost", {"bsn": subject["bsn"]}, now=NOW)
    b = submit(database, "zorg-twente", {"bsn": subject["bsn"]}, now=NOW)
    c = submit(database, "roc-twente", {"name_dob": subject["name_dob"]}, now=NOW)
    d = submit(database, "gemeente-enschede", {"name_dob": subject["name_dob"]}, now=NOW)
    first, second = all_matches(database)
    assert members(first) == {a.signal.id, b.signal.id}
    assert members(second) == {c.signal.id, d.signal.id}
    bridge = submit(database, "gemeente-hengelo", subject, now=NOW)
    (change,) = bridge.matches
    assert change.kind == "merged" and change.absorbed_match_ids == (second.id,)
    (merged,) = all_matches(database)
    assert merged.id == first.id
    assert members(merged) == {s.signal.id for s in (a, b, c, d, bridge)}
    assert merged.linkage_keys == ("bsn", "name_dob")
    with database.transaction(write=False) as session:
        # The absorbed match keeps its row and leads to the one that absorbed it.
        absorbed = session.execute(select(MatchRow).where(MatchRow.id == second.id)).scalar_one()
        assert absorbed.merged_into == first.id
        followed = get_match(session, second.id)
        assert followed is not None and followed.id == first.id
        assert get_match(session, "no-such-match") is None
    assert notes(database, COORDINATOR)[-1] == ("match.updated", bridge.signal.id, first.id)


def test_twins_with_different_bsns_never_match(database: Database) -> None:
    twin_a, twin_b = person(), person()
    twin_b["name_dob"] = twin_a["name_dob"]  # same family name and date of birth
    submit(database, "police-oost", twin_a, now=NOW)
    b = submit(database, "zorg-twente", twin_b, now=NOW)
    assert b.matches == [] and all_matches(database) == []
    # Nor as a repeat within one organisation.
    again = submit(database, "police-oost", twin_b, now=NOW)
    assert again.signal.repeat_of is None


def test_a_match_never_takes_a_second_bsn(database: Database) -> None:
    twin_a = person()
    a = submit(database, "police-oost", twin_a, now=NOW)
    c = submit(database, "zorg-twente", {"name_dob": twin_a["name_dob"]}, now=NOW)
    (match,) = all_matches(database)
    # The twin, with another BSN, agrees with c on name and date of birth only; the
    # match already holds twin a's BSN, so the twin does not join it.
    twin_b = {"bsn": person()["bsn"], "name_dob": twin_a["name_dob"]}
    b = submit(database, "roc-twente", twin_b, now=NOW)
    assert b.matches == []
    (unchanged,) = all_matches(database)
    assert members(unchanged) == {a.signal.id, c.signal.id} == members(match)


def test_a_signal_without_bsn_between_twins_joins_both_apart(database: Database) -> None:
    twin_a, twin_b = person(), person()
    twin_b["name_dob"] = twin_a["name_dob"]
    a = submit(database, "police-oost", twin_a, now=NOW)
    b = submit(database, "zorg-twente", twin_b, now=NOW)
    c = submit(database, "roc-twente", {"name_dob": twin_a["name_dob"]}, now=NOW)
    assert [change.kind for change in c.matches] == ["created", "created"]
    first, second = all_matches(database)
    assert members(first) == {a.signal.id, c.signal.id}
    assert members(second) == {b.signal.id, c.signal.id}


def test_withdrawn_and_expired_signals_never_match(database: Database) -> None:
    withdrawn, expired = person(), person()
    w = submit(database, "police-oost", withdrawn, now=NOW)
    submit(database, "police-oost", expired, now=NOW - timedelta(days=366))
    withdraw(database, "police-oost", w.signal.id, NOW)
    # Expired by time: no match even before `expire_due` has run.
    assert submit(database, "zorg-twente", expired, now=NOW).matches == []
    assert submit(database, "zorg-twente", withdrawn, now=NOW).matches == []
    assert all_matches(database) == []


def test_withdrawal_of_a_matched_signal_is_a_notification(database: Database) -> None:
    subject = person()
    a = submit(database, "police-oost", subject, now=NOW)
    submit(database, "zorg-twente", subject, now=NOW)
    (match,) = all_matches(database)
    removal = withdraw(database, "police-oost", a.signal.id, NOW + timedelta(hours=1))
    assert removal.match_ids == (match.id,)
    assert notes(database, COORDINATOR)[-1] == ("signal.withdrawn", a.signal.id, match.id)
    # The match stays as history; the member's status says it was withdrawn.
    (after,) = all_matches(database)
    assert {s.id: s.status for s in after.signals}[a.signal.id] == "withdrawn"
    assert after.updated_at == NOW + timedelta(hours=1)


def test_expiry_of_a_matched_signal_is_a_notification(database: Database) -> None:
    subject = person()
    old = submit(database, "police-oost", subject, now=NOW - timedelta(days=300))
    submit(database, "zorg-twente", subject, now=NOW)
    (match,) = all_matches(database)
    with database.transaction() as session:
        (expired,) = expire_due(session, NOW + timedelta(days=70))
    (removal,) = drain(database)
    assert expired.signal.id == removal.signal_id == old.signal.id
    assert removal.event == "expired" and removal.match_ids == (match.id,)
    assert notes(database, COORDINATOR)[-1] == ("signal.expired", old.signal.id, match.id)


def police_may_know(kind: str) -> HitRule:
    return HitRule(notify=kind == "police")


def test_partners_hear_of_hits_only_as_the_policy_says(database: Database) -> None:
    subject = person()
    a = submit(database, "police-oost", subject, now=NOW, hit_policy=police_may_know)
    b = submit(database, "zorg-twente", subject, now=NOW, hit_policy=police_may_know)
    c = submit(database, "roc-twente", subject, now=NOW, hit_policy=police_may_know)
    assert b.matches and c.matches
    with database.transaction(write=False) as session:
        police = list_notifications(session, "police-oost", None, 10, TEST_CURSORS).items
    # Told of the hit about its own signal, then that the match grew; never who else.
    assert [(n.type, n.signal_id, n.match_id) for n in police] == [
        ("match", a.signal.id, None),
        ("match.updated", a.signal.id, None),
    ]
    assert all(n.extra == {} for n in police)
    assert notes(database, "zorg-twente") == [] and notes(database, "roc-twente") == []
    withdraw(database, "zorg-twente", b.signal.id, NOW, police_may_know)
    with database.transaction(write=False) as session:
        last = list_notifications(session, "police-oost", None, 10, TEST_CURSORS).items[-1]
    assert (last.type, last.signal_id, last.extra) == (
        "match.updated",
        a.signal.id,
        {"change": "withdrawn"},
    )


def test_other_organisations_are_named_only_when_the_policy_reveals(database: Database) -> None:
    subject = person()

    def reveal(kind: str) -> HitRule:
        return HitRule(notify=True, reveal_organisations=True)

    submit(database, "police-oost", subject, now=NOW, hit_policy=reveal)
    b = submit(database, "zorg-twente", subject, now=NOW, hit_policy=reveal)
    with database.transaction(write=False) as session:
        (care,) = list_notifications(session, "zorg-twente", None, 10, TEST_CURSORS).items
    assert care.signal_id == b.signal.id and care.extra == {"organisations": ["police-oost"]}


def test_notifications_page_by_after_cursor(database: Database) -> None:
    for _ in range(7):
        subject = person()
        submit(database, "police-oost", subject, now=NOW)
        submit(database, "zorg-twente", subject, now=NOW)
    seen: list[int] = []
    after = None
    with database.transaction(write=False) as session:
        while True:
            page = list_notifications(session, COORDINATOR, after, 3, TEST_CURSORS)
            seen.extend(n.id for n in page.items)
            if not page.items:  # a feed: `next` is always given, so a poll can resume
                assert page.next == after
                break
            after = page.next
    assert len(seen) == 7 and seen == sorted(seen)


def test_matches_page_by_cursor(database: Database) -> None:
    for _ in range(5):
        subject = person()
        submit(database, "police-oost", subject, now=NOW)
        submit(database, "zorg-twente", subject, now=NOW)
    expected = [m.id for m in all_matches(database)]
    seen: list[str] = []
    cursor = None
    with database.transaction(write=False) as session:
        while True:
            page = list_matches(session, cursor, 2)
            seen.extend(m.id for m in page.items)
            if page.next is None:
                break
            cursor = page.next
    assert seen == expected and len(seen) == 5


def _one_among_twenty(database: Database) -> tuple[dict[str, bytes], Any]:
    """A person the police reported, among twenty others care reported."""
    subject = person()
    first = submit(database, "police-oost", subject, now=NOW)
    for _ in range(20):
        submit(database, "zorg-twente", person(), now=NOW)
    return subject, first


@contextmanager
def _statements(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) run on `database` meanwhile."""
    found: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        found.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        yield found
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)


def test_lookup_is_an_index_seek(database: Database) -> None:
    """Every statement of the match lookup reads an index, never scans a table (only the
    list of the signal's own pseudonyms it joins on)."""
    subject, _first = _one_among_twenty(database)
    with database.transaction() as session:
        session.connection()  # BEGIN (lazy on SQLite write sessions) is not the lookup's
        with _statements(database) as statements:
            found = candidate_pks(session, subject, NOW, exclude_pk=0)
        assert len(found) == 1 and len(statements) == 2
        conn = session.connection()
        for statement, parameters in statements:
            if conn.dialect.name == "sqlite":
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                details = " | ".join(str(row[-1]) for row in plan)
                # the pairs looked up (a VALUES list, `t`) are read in full; no table is
                scans = [
                    str(row[-1])
                    for row in plan
                    if str(row[-1]).startswith("SCAN")
                    and not str(row[-1]).endswith("CONSTANT ROWS")
                    and str(row[-1]) != "SCAN t"
                ]
                assert not scans, details
            else:
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # tiny tables
                plan = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
                details = " | ".join(str(row[0]) for row in plan)
                assert "Seq Scan" not in details, details
            assert "signal_pseudonyms" not in statement or "ix_signal_pseudonyms_lookup" in (
                details
            ), details


def test_stored_sharing_is_index_searches(database: Database) -> None:
    """The processor's one statement for a signal's pseudonyms and the stored ones equal
    to them: its own rows by primary key, then one lookup-index search per pseudonym in
    that order (no hash of the whole table); it finds what `candidate_pks` finds."""
    subject, first = _one_among_twenty(database)
    with database.transaction() as session:
        (pk,) = session.execute(select(SignalRow.pk).where(SignalRow.id == first.signal.id)).one()
        with _statements(database) as statements:
            own, sharing = stored_sharing(session, pk)
        assert {f: set(e) for f, e in own.items()} == {f: {e} for f, e in subject.items()}
        assert sorted(sharing) == sorted((f, e, pk) for f, e in subject.items())
        ((statement, parameters),) = statements
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            details = [str(row[-1]) for row in plan]
            assert details[0].startswith("SEARCH own USING COVERING INDEX"), details
            assert details[1].startswith(
                "SEARCH p USING COVERING INDEX ix_signal_pseudonyms_lookup"
            ), details
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # tiny tables
            plan = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
            details = " | ".join(str(row[0]) for row in plan)
            assert details.startswith("Nested Loop") and "Hash" not in details, details
            assert "ix_signal_pseudonyms_lookup" in details, details


def signal_ids(signals: list[Signal]) -> list[str]:
    return [s.id for s in signals]
