"""Match detection, match clusters and notifications.

`match_new_signal` runs in the outbox processor (`gateway.matching.processor`), after
the transaction that stored the signal committed, under the cluster lock (one
processor at a time): it looks up the active, unexpired signals sharing a pseudonym
(one index seek per pseudonym) that were matched already, applies the twins rule,
notes same-organisation repeats, and grows, creates or merges match clusters. No
request does any of this, so a hit and a miss cost a partner the same.

Rules:
- Signals of one organisation never match each other; a later one is noted as a
  repeat of the earliest active one (`repeat_of`).
- Twins rule: two signals whose BSNs are both known and differ are different people;
  they never match, whatever else agrees. At cluster level: a match never holds two
  different BSNs. A new signal without a BSN that links clusters with different BSNs
  joins each of them (it could be either person) and they stay apart.
- The coordinator hears of every new, grown or merged match and of every withdrawal or
  expiry of a matched signal. A partner hears "hit" only when the caller's `HitPolicy`
  allows it for the partner's organisation kind (the default: never), about its own
  signal only, and names of other organisations only when the rule reveals them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gateway.actors import SYSTEM
from gateway.api.paging import Page, clamp_limit, decode_cursor, encode_cursor
from gateway.audit.entries import AuditEvent, SubjectRef
from gateway.audit.service import record_event
from gateway.matching.models import COORDINATOR, MatchMemberRow, MatchRow, NotificationRow
from gateway.matching.outbox import pending_signal_pks
from gateway.signals.locks import lock_clusters
from gateway.signals.models import SignalPseudonymRow, SignalRow

ChangeKind = Literal["created", "grown", "merged"]


@dataclass(frozen=True)
class HitRule:
    """What the policy lets a partner of some organisation kind learn of a match."""

    notify: bool = False
    reveal_organisations: bool = False


#: organisation kind → what partners of that kind learn of a match.
HitPolicy = Callable[[str], HitRule]


def no_hits(_kind: str) -> HitRule:
    """The default policy: partners learn nothing; the coordinator decides what to share."""
    return HitRule()


@dataclass(frozen=True)
class MatchSignal:
    id: str
    organisation: str
    category: str
    reference: str
    status: str
    #: The linkage keys by which this signal is tied into the match.
    linkage_keys: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    id: str
    created_at: datetime
    updated_at: datetime
    signals: tuple[MatchSignal, ...]
    #: Every linkage key that agreed between members (union over the cluster).
    linkage_keys: tuple[str, ...]


@dataclass(frozen=True)
class MatchChange:
    """What one signal did to one match, for the response, the audit entry and tests."""

    kind: ChangeKind
    match: Match
    added_signal_ids: tuple[str, ...]
    absorbed_match_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notification:
    id: int
    recipient: str
    type: str
    signal_id: str | None
    match_id: str | None
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MatchOutcome:
    changes: list[MatchChange]
    repeat_of: str | None


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _keys(text: str) -> set[str]:
    return {k for k in text.split(",") if k}


def _join(keys: Iterable[str]) -> str:
    return ",".join(sorted(set(keys)))


def _pseudonyms_of(session: Session, signal_pks: Iterable[int]) -> dict[int, dict[str, bytes]]:
    pks = list(signal_pks)
    found: dict[int, dict[str, bytes]] = {pk: {} for pk in pks}
    if not pks:
        return found
    rows = session.execute(
        select(
            SignalPseudonymRow.signal_pk, SignalPseudonymRow.family, SignalPseudonymRow.element
        ).where(SignalPseudonymRow.signal_pk.in_(pks))
    )
    for signal_pk, family, element in rows:
        found[signal_pk][family] = bytes(element)
    return found


def agreed_keys(a: Mapping[str, bytes], b: Mapping[str, bytes]) -> set[str] | None:
    """The linkage keys two signals agree on, or None when the twins rule separates them."""
    if "bsn" in a and "bsn" in b and a["bsn"] != b["bsn"]:
        return None
    return {family for family, element in a.items() if b.get(family) == element}


def candidate_pks(
    session: Session, pseudonyms: Mapping[str, bytes], now: datetime, exclude_pk: int
) -> list[int]:
    """Active, unexpired signals sharing any pseudonym: one index seek per pseudonym.

    Two statements on purpose: given one join, a planner without fresh statistics may
    walk every active signal by the (status, expires_at) index instead. The first
    statement can only be answered from the (family, element) index; the second looks
    the few hits up by primary key.
    """
    if not pseudonyms:
        return []
    wanted = or_(
        *(
            and_(SignalPseudonymRow.family == family, SignalPseudonymRow.element == element)
            for family, element in sorted(pseudonyms.items())
        )
    )
    sharing = set(session.execute(select(SignalPseudonymRow.signal_pk).where(wanted)).scalars())
    sharing.discard(exclude_pk)
    if not sharing:
        return []
    live = session.execute(
        select(SignalRow.pk).where(
            SignalRow.pk.in_(sorted(sharing)),
            SignalRow.status == "active",
            SignalRow.expires_at > now,
        )
    ).scalars()
    return sorted(live)


@dataclass
class _Group:
    """An existing match, or a linked signal in no match yet, as the merge sees it."""

    match: MatchRow | None
    signal_pks: set[int]
    bsns: set[bytes]


def match_new_signal(
    session: Session,
    signal: SignalRow,
    pseudonyms: Mapping[str, bytes],
    now: datetime,
    hit_policy: HitPolicy = no_hits,
) -> MatchOutcome:
    """Find what the new `signal` matches and update the clusters; the caller holds the
    cluster lock. Signals whose own matching is still pending are left out: they will
    find this one when their turn comes."""
    candidates = candidate_pks(session, pseudonyms, now, signal.pk)
    if candidates:
        waiting = pending_signal_pks(session, candidates)
        candidates = [pk for pk in candidates if pk not in waiting]
    if not candidates:
        return MatchOutcome([], None)
    rows = {
        row.pk: row
        for row in session.execute(select(SignalRow).where(SignalRow.pk.in_(candidates))).scalars()
    }
    their_pseudonyms = _pseudonyms_of(session, candidates)
    linked: dict[int, set[str]] = {}
    repeat_of: str | None = None
    for pk in candidates:
        agreed = agreed_keys(pseudonyms, their_pseudonyms[pk])
        if not agreed:
            continue
        if rows[pk].organisation == signal.organisation:
            if pk < signal.pk:  # candidates are sorted: the earliest
                repeat_of = repeat_of or rows[pk].id
        else:
            linked[pk] = agreed
    if not linked:
        return MatchOutcome([], repeat_of)
    lock_clusters(session)
    changes = _update_clusters(session, signal, pseudonyms, linked, now)
    _notify_changes(session, changes, now, hit_policy)
    return MatchOutcome(changes, repeat_of)


def _update_clusters(
    session: Session,
    signal: SignalRow,
    pseudonyms: Mapping[str, bytes],
    linked: dict[int, set[str]],
    now: datetime,
) -> list[MatchChange]:
    # Memberships are read after the cluster lock: a merge that committed meanwhile is seen.
    memberships = session.execute(
        select(MatchMemberRow.match_pk, MatchMemberRow.signal_pk).where(
            MatchMemberRow.signal_pk.in_(list(linked))
        )
    ).all()
    match_pks = sorted({match_pk for match_pk, _ in memberships})
    groups: list[_Group] = []
    if match_pks:
        matches = {
            m.pk: m
            for m in session.execute(
                select(MatchRow)
                .where(MatchRow.pk.in_(match_pks))
                .execution_options(populate_existing=True)
            ).scalars()
        }
        members: dict[int, set[int]] = {pk: set() for pk in match_pks}
        for match_pk, signal_pk in session.execute(
            select(MatchMemberRow.match_pk, MatchMemberRow.signal_pk).where(
                MatchMemberRow.match_pk.in_(match_pks)
            )
        ):
            members[match_pk].add(signal_pk)
        bsns: dict[int, set[bytes]] = {pk: set() for pk in match_pks}
        for match_pk, element in session.execute(
            select(MatchMemberRow.match_pk, SignalPseudonymRow.element)
            .join(SignalPseudonymRow, SignalPseudonymRow.signal_pk == MatchMemberRow.signal_pk)
            .where(MatchMemberRow.match_pk.in_(match_pks), SignalPseudonymRow.family == "bsn")
        ):
            bsns[match_pk].add(bytes(element))
        groups.extend(_Group(matches[pk], members[pk], bsns[pk]) for pk in match_pks)
    in_a_match = {signal_pk for _, signal_pk in memberships}
    singles = sorted(pk for pk in linked if pk not in in_a_match)
    single_pseudonyms = _pseudonyms_of(session, singles)
    for pk in singles:
        bsn = single_pseudonyms[pk].get("bsn")
        groups.append(_Group(None, {pk}, {bsn} if bsn else set()))

    # Greedy: each group joins the first cluster whose BSNs it agrees with; a group
    # holding another BSN than the new signal's own is skipped (twins rule).
    own_bsn = {pseudonyms["bsn"]} if "bsn" in pseudonyms else set()
    clusters: list[list[_Group]] = []
    cluster_bsns: list[set[bytes]] = []
    for group in groups:
        if len(group.bsns | own_bsn) > 1:
            continue
        for index, known in enumerate(cluster_bsns):
            if len(known | group.bsns) <= 1:
                clusters[index].append(group)
                known |= group.bsns
                break
        else:
            clusters.append([group])
            cluster_bsns.append(group.bsns | own_bsn)
    return [_apply_cluster(session, signal, linked, cluster, now) for cluster in clusters]


def _apply_cluster(
    session: Session,
    signal: SignalRow,
    linked: dict[int, set[str]],
    cluster: list[_Group],
    now: datetime,
) -> MatchChange:
    existing = sorted((g.match for g in cluster if g.match is not None), key=lambda m: m.pk)
    absorbed: list[MatchRow] = []
    if existing:
        target = existing[0]
        absorbed = existing[1:]
        kind: ChangeKind = "merged" if absorbed else "grown"
    else:
        target = MatchRow(id=str(uuid.uuid4()), created_at=now, updated_at=now)
        session.add(target)
        session.flush()
        kind = "created"
    target.updated_at = now
    current = {
        m.signal_pk: m
        for m in session.execute(
            select(MatchMemberRow).where(MatchMemberRow.match_pk == target.pk)
        ).scalars()
    }
    for match in absorbed:
        for member in session.execute(
            select(MatchMemberRow).where(MatchMemberRow.match_pk == match.pk)
        ).scalars():
            if member.signal_pk in current:
                keys = _keys(current[member.signal_pk].linkage_keys) | _keys(member.linkage_keys)
                current[member.signal_pk].linkage_keys = _join(keys)
                session.delete(member)
            else:
                moved = MatchMemberRow(
                    match_pk=target.pk,
                    signal_pk=member.signal_pk,
                    linkage_keys=member.linkage_keys,
                    joined_at=member.joined_at,
                )
                session.delete(member)
                session.add(moved)
                current[member.signal_pk] = moved
        match.merged_into = target.id
        match.updated_at = now
    session.flush()
    cluster_pks = set().union(*(g.signal_pks for g in cluster))
    own_keys: set[str] = set()
    added: list[int] = []
    for pk in sorted(cluster_pks & set(linked)):
        own_keys |= linked[pk]
        if pk in current:
            member = current[pk]
            member.linkage_keys = _join(_keys(member.linkage_keys) | linked[pk])
        else:
            session.add(
                MatchMemberRow(
                    match_pk=target.pk, signal_pk=pk, linkage_keys=_join(linked[pk]), joined_at=now
                )
            )
            added.append(pk)
    session.add(
        MatchMemberRow(
            match_pk=target.pk, signal_pk=signal.pk, linkage_keys=_join(own_keys), joined_at=now
        )
    )
    session.flush()
    added_ids = [signal.id] + [
        row.id
        for row in session.execute(select(SignalRow).where(SignalRow.pk.in_(added))).scalars()
    ]
    return MatchChange(
        kind=kind,
        match=_load_matches(session, [target])[0],
        added_signal_ids=tuple(added_ids),
        absorbed_match_ids=tuple(m.id for m in absorbed),
    )


def _load_matches(session: Session, matches: Sequence[MatchRow]) -> list[Match]:
    pks = [m.pk for m in matches]
    members: dict[int, list[MatchSignal]] = {pk: [] for pk in pks}
    if pks:
        rows = session.execute(
            select(MatchMemberRow.match_pk, MatchMemberRow.linkage_keys, SignalRow)
            .join(SignalRow, SignalRow.pk == MatchMemberRow.signal_pk)
            .where(MatchMemberRow.match_pk.in_(pks))
            .order_by(MatchMemberRow.match_pk, SignalRow.pk)
        )
        for match_pk, keys, row in rows:
            members[match_pk].append(
                MatchSignal(
                    id=row.id,
                    organisation=row.organisation,
                    category=row.category,
                    reference=row.reference,
                    status=row.status,
                    linkage_keys=tuple(sorted(_keys(keys))),
                )
            )
    result = []
    for match in matches:
        signals = tuple(members[match.pk])
        agreed: set[str] = set().union(*(s.linkage_keys for s in signals))
        result.append(
            Match(
                id=match.id,
                created_at=utc(match.created_at),
                updated_at=utc(match.updated_at),
                signals=signals,
                linkage_keys=tuple(sorted(agreed)),
            )
        )
    return result


def _notify(
    session: Session,
    recipient: str,
    type_: str,
    now: datetime,
    *,
    signal_id: str | None,
    match_id: str | None,
    extra: dict[str, Any] | None = None,
) -> None:
    session.add(
        NotificationRow(
            recipient=recipient,
            type=type_,
            signal_id=signal_id,
            match_id=match_id,
            created_at=now,
            extra=json.dumps(extra or {}, sort_keys=True, separators=(",", ":")),
        )
    )


def _partner_extra(rule: HitRule, own: str, match: Match, **extra: Any) -> dict[str, Any]:
    if rule.reveal_organisations:
        extra["organisations"] = sorted({s.organisation for s in match.signals} - {own})
    return extra


def _kind_of(session: Session, signal_ids: Iterable[str]) -> dict[str, str]:
    ids = list(signal_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(SignalRow.id, SignalRow.organisation_kind).where(SignalRow.id.in_(ids))
    )
    return {signal_id: kind for signal_id, kind in rows}


def _notify_changes(
    session: Session, changes: list[MatchChange], now: datetime, hit_policy: HitPolicy
) -> None:
    for change in changes:
        match = change.match
        new_signal = change.added_signal_ids[0]
        if change.kind == "created":
            _notify(session, COORDINATOR, "match", now, signal_id=new_signal, match_id=match.id)
        else:
            _notify(
                session,
                COORDINATOR,
                "match.updated",
                now,
                signal_id=new_signal,
                match_id=match.id,
                extra={
                    "change": change.kind,
                    "addedSignalIds": list(change.added_signal_ids),
                    "absorbedMatchIds": list(change.absorbed_match_ids),
                },
            )
        kinds = _kind_of(session, (s.id for s in match.signals))
        added = set(change.added_signal_ids)
        for member in match.signals:
            if member.status != "active":
                continue
            rule = hit_policy(kinds[member.id])
            if not rule.notify:
                continue
            type_ = "match" if member.id in added else "match.updated"
            extra = _partner_extra(rule, member.organisation, match)
            _notify(
                session,
                member.organisation,
                type_,
                now,
                signal_id=member.id,
                match_id=None,
                extra=extra,
            )


def matches_of_signal(session: Session, signal_pk: int) -> list[Match]:
    rows = session.execute(
        select(MatchRow)
        .join(MatchMemberRow, MatchMemberRow.match_pk == MatchRow.pk)
        .where(MatchMemberRow.signal_pk == signal_pk)
        .order_by(MatchRow.pk)
        .execution_options(populate_existing=True)
    ).scalars()
    return _load_matches(session, list(rows))


def on_signal_removed(
    session: Session,
    signal: SignalRow,
    type_: Literal["signal.withdrawn", "signal.expired"],
    now: datetime,
    hit_policy: HitPolicy = no_hits,
) -> list[str]:
    """Tell who must know that `signal` left; run by the outbox processor.

    Returns the ids of the matches it was in. Membership stays as history; the
    signal's status shows it is gone.
    """
    lock_clusters(session)
    matches = matches_of_signal(session, signal.pk)
    if type_ == "signal.expired":
        _notify(session, signal.organisation, type_, now, signal_id=signal.id, match_id=None)
    for match in matches:
        row = session.execute(select(MatchRow).where(MatchRow.id == match.id)).scalar_one()
        row.updated_at = now
        _notify(session, COORDINATOR, type_, now, signal_id=signal.id, match_id=match.id)
        kinds = _kind_of(session, (s.id for s in match.signals))
        for member in match.signals:
            if member.id == signal.id or member.status != "active":
                continue
            rule = hit_policy(kinds[member.id])
            if rule.notify:
                _notify(
                    session,
                    member.organisation,
                    "match.updated",
                    now,
                    signal_id=member.id,
                    match_id=None,
                    extra=_partner_extra(
                        rule, member.organisation, match, change=type_.removeprefix("signal.")
                    ),
                )
    return [m.id for m in matches]


def record_matching(
    session: Session,
    signal_id: str,
    subjects: Sequence[SubjectRef],
    detail: Mapping[str, Any],
) -> None:
    """The gateway's entry of what matching did for a signal (`matching.update`).

    Its actor is the gateway itself, so no partner reads it (a partner sees only
    entries it is the actor of); it is written for every signal whether or not
    anything matched, so neither the entry nor the log's size says whether it did.
    """
    record_event(
        session,
        AuditEvent(
            action="matching.update",
            outcome="success",
            actor=SYSTEM,
            resource_type="signal",
            resource_id=signal_id,
            subjects=tuple(subjects),
            detail=dict(detail),
        ),
    )


def list_matches(session: Session, cursor: str | None, limit: int | None) -> Page[Match]:
    """Current matches (absorbed ones left out), oldest first, keyset-paged."""
    after = decode_cursor(cursor)
    size = clamp_limit(limit)
    rows = list(
        session.execute(
            select(MatchRow)
            .where(MatchRow.pk > after, MatchRow.merged_into.is_(None))
            .order_by(MatchRow.pk)
            .limit(size + 1)
        ).scalars()
    )
    more = len(rows) > size
    rows = rows[:size]
    return Page(_load_matches(session, rows), encode_cursor(rows[-1].pk) if more else None)


def get_match(session: Session, match_id: str) -> Match | None:
    """A match by id; an absorbed match id leads to the match that absorbed it."""
    for _ in range(64):
        row = session.execute(select(MatchRow).where(MatchRow.id == match_id)).scalar_one_or_none()
        if row is None:
            return None
        if row.merged_into is None:
            return _load_matches(session, [row])[0]
        match_id = row.merged_into
    return None  # pragma: no cover - a merge chain never loops


def list_notifications(
    session: Session, recipient: str, after: str | None, limit: int | None
) -> Page[Notification]:
    """Notifications for `recipient` (an organisation id or "coordinator"), oldest first."""
    start = decode_cursor(after, parameter="after")
    size = clamp_limit(limit)
    rows = list(
        session.execute(
            select(NotificationRow)
            .where(NotificationRow.recipient == recipient, NotificationRow.id > start)
            .order_by(NotificationRow.id)
            .limit(size)
        ).scalars()
    )
    items = [
        Notification(
            id=row.id,
            recipient=row.recipient,
            type=row.type,
            signal_id=row.signal_id,
            match_id=row.match_id,
            created_at=utc(row.created_at),
            extra=json.loads(row.extra),
        )
        for row in rows
    ]
    # A feed: `next` always names the position after what was delivered (or the given
    # position when nothing came), so a poll with `after=next` gets only what is new.
    return Page(items, encode_cursor(rows[-1].id if rows else start))
