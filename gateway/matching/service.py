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
- A pair of signals matches when `gateway.matching.scoring.assess` places it in a tier
  (`strong` or `possible`) from the key families that agree, frequent keys
  down-weighted. A member keeps the best tier by which it is tied in; a match is
  `strong` when every member is, else `possible`.
- Twins rule: two signals whose BSNs are both known and differ are different people;
  they never match, whatever else agrees. At cluster level: a match never holds two
  different BSNs. A new signal without a BSN that links clusters with different BSNs
  joins each of them (it could be either person) and they stay apart.
- A dismissed match never grows and takes no part in a merge, and no later signal
  brings two of its signals together again: each can still match others (new
  evidence), but they end up in different clusters, as the twins rule keeps apart.
- The coordinator hears of every new, grown or merged match and of every withdrawal or
  expiry of a matched signal. A partner hears "hit" only when the caller's `HitPolicy`
  allows it for the partner's organisation kind (the default: never), about its own
  signal only, and names of other organisations only when the rule reveals them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    Table,
    TextClause,
    and_,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from gateway.actors import SYSTEM
from gateway.api.paging import CursorCodec, Page, clamp_limit, decode_cursor, encode_cursor
from gateway.audit.entries import AuditEvent, SubjectRef
from gateway.audit.service import record_event
from gateway.matching.models import (
    COORDINATOR,
    MatchMemberRow,
    MatchRow,
    NotificationRow,
)
from gateway.matching.outbox import is_pending
from gateway.matching.scoring import Tier, assess
from gateway.pseudonyms.detector import recordable_uuid
from gateway.pseudonyms.service import by_family
from gateway.signals.models import SignalPseudonymRow, SignalRow

ChangeKind = Literal["created", "grown", "merged"]
#: A signal's pseudonyms by family (a multi-valued family holds several elements).
Pseudonyms = Mapping[str, frozenset[bytes]]


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
    #: The best tier by which this signal is tied to another member.
    tier: str = "strong"
    #: The linkage key families this signal has itself, so its page can say what its
    #: sender knew (a date of birth missing on one side is not one that differs);
    #: filled by `with_supplied` for one match's page, empty elsewhere.
    supplied: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Match:
    id: str
    created_at: datetime
    updated_at: datetime
    signals: tuple[MatchSignal, ...]
    #: Every linkage key that agreed between members (union over the cluster).
    linkage_keys: tuple[str, ...]
    #: "strong" when every member is tied in strongly, else "possible".
    tier: str = "strong"
    #: "new", "under-review", "confirmed", "dismissed" (stored), or "linked" (derived
    #: by `MatchService` from case links).
    state: str = "new"
    #: For "dismissed": the reason code.
    state_reason: str | None = None
    state_changed_at: datetime | None = None
    #: The ids of its signals that some case holds (filled by `MatchService` from the
    #: case links; empty elsewhere).
    in_cases: frozenset[str] = frozenset()

    @property
    def active_signals(self) -> tuple[MatchSignal, ...]:
        return tuple(s for s in self.signals if s.status == "active")

    @property
    def outside_cases(self) -> tuple[MatchSignal, ...]:
        """Its active signals that no case holds yet."""
        return tuple(s for s in self.active_signals if s.id not in self.in_cases)


@dataclass(frozen=True)
class MatchLinks:
    """How a match is tied to cases: which of its signals some case holds, and whether a
    case was made from it (`gateway.cases.match_links`)."""

    in_cases: frozenset[str] = frozenset()
    case_made: bool = False

    def linked(self, match: Match) -> bool:
        """In a case, with every active signal in one (a new member makes it unlinked)."""
        return (self.case_made or bool(self.in_cases)) and all(
            s.id in self.in_cases for s in match.signals if s.status == "active"
        )


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
    #: What the partner sees as the notification's id: opaque, and a cursor.
    ref: str
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


@dataclass(frozen=True)
class SignalFacts:
    """What matching needs to know of a signal, read by the statement that found it
    (the processor's hot path loads no ORM row)."""

    pk: int
    id: str
    organisation: str
    organisation_kind: str
    category: str
    reference: str
    status: str


_SIGNALS = cast(Table, SignalRow.__table__)
_PSEUDONYMS = cast(Table, SignalPseudonymRow.__table__)
_MATCHES = cast(Table, MatchRow.__table__)
_MEMBERS = cast(Table, MatchMemberRow.__table__)
_NOTIFICATIONS = cast(Table, NotificationRow.__table__)
#: The columns `SignalFacts` is made of, in its order.
FACT_COLUMNS = (
    _SIGNALS.c.pk,
    _SIGNALS.c.id,
    _SIGNALS.c.organisation,
    _SIGNALS.c.organisation_kind,
    _SIGNALS.c.category,
    _SIGNALS.c.reference,
    _SIGNALS.c.status,
)


def signal_facts(row: Sequence[Any]) -> SignalFacts:
    """`SignalFacts` from the first columns of a row that selected `FACT_COLUMNS` first."""
    return SignalFacts(*row[: len(FACT_COLUMNS)])


@dataclass(frozen=True)
class Link:
    """How a new signal is tied to one earlier signal."""

    agreed: frozenset[str]
    tier: Tier


#: PostgreSQL: the stored pseudonyms equal to any of a signal's, as one statement whose
#: text never changes (the pairs are two arrays, unnested and joined on the
#: (family, element) index): no clause of ~35 comparisons built, keyed and compiled per
#: signal.
_SHARING_PG = text(
    "SELECT p.family, p.element, p.signal_pk "
    "FROM unnest(CAST(:families AS text[]), CAST(:elements AS bytea[])) AS t(family, element) "
    "JOIN signal_pseudonyms AS p ON p.family = t.family AND p.element = t.element"
)
_SHARING_SQLITE: dict[int, TextClause] = {}
#: A stored signal's own pseudonyms and every stored pseudonym equal to one of them,
#: in one statement: its rows by primary key (`own`), then for each one index search
#: of (family, element). The join order is fixed (PostgreSQL: a LATERAL subquery that
#: OFFSET 0 keeps from being flattened into a join; SQLite: CROSS JOIN), so no planner,
#: with or without statistics, hashes the whole table instead.
_STORED_SHARING = {
    "postgresql": text(
        "SELECT p.family, p.element, p.signal_pk FROM signal_pseudonyms AS own "
        "CROSS JOIN LATERAL (SELECT q.family, q.element, q.signal_pk "
        "FROM signal_pseudonyms AS q WHERE q.family = own.family AND q.element = own.element"
        " OFFSET 0) AS p WHERE own.signal_pk = :pk"
    ),
    "sqlite": text(
        "SELECT p.family, p.element, p.signal_pk FROM signal_pseudonyms AS own "
        "CROSS JOIN signal_pseudonyms AS p "
        "WHERE own.signal_pk = :pk AND p.family = own.family AND p.element = own.element"
    ),
}


def _sharing_sqlite(count: int) -> TextClause:
    """SQLite: the same as a join on a VALUES list of `count` pairs (one index search
    per pair); its text depends only on `count`, so it is built once per count."""
    found = _SHARING_SQLITE.get(count)
    if found is None:
        pairs = ", ".join(f"(:f{n}, :e{n})" for n in range(count))
        found = text(
            "SELECT p.family, p.element, p.signal_pk "  # noqa: S608 - placeholders only
            f"FROM (VALUES {pairs}) AS t "
            "JOIN signal_pseudonyms AS p ON p.family = t.column1 AND p.element = t.column2"
        )
        if len(_SHARING_SQLITE) < 512:
            _SHARING_SQLITE[count] = found
    return found


def _sharing(
    session: Session, pseudonyms: Mapping[str, bytes | Collection[bytes]]
) -> list[tuple[str, bytes, int]]:
    """(family, element, signal_pk) of every stored pseudonym equal to one of these."""
    pairs = sorted(
        (family, element) for family, values in by_family(pseudonyms).items() for element in values
    )
    if not pairs:
        return []
    if session.get_bind().dialect.name == "postgresql":
        params: dict[str, Any] = {
            "families": [family for family, _ in pairs],
            "elements": [element for _, element in pairs],
        }
        rows = session.execute(_SHARING_PG, params)
    else:
        params = {}
        for n, (family, element) in enumerate(pairs):
            params[f"f{n}"] = family
            params[f"e{n}"] = element
        rows = session.execute(_sharing_sqlite(len(pairs)), params)
    return [(family, bytes(element), pk) for family, element, pk in rows]


def stored_sharing(
    session: Session, signal_pk: int
) -> tuple[dict[str, frozenset[bytes]], list[tuple[str, bytes, int]]]:
    """A stored signal's pseudonyms by family, and what `_sharing` finds for them (its
    own rows included), from one statement instead of two."""
    statement = _STORED_SHARING[session.get_bind().dialect.name]
    sharing = [
        (family, bytes(element), pk)
        for family, element, pk in session.execute(statement, {"pk": signal_pk}).all()
    ]
    own: dict[str, set[bytes]] = {}
    for family, element, pk in sharing:
        if pk == signal_pk:
            own.setdefault(family, set()).add(element)
    return {family: frozenset(elements) for family, elements in own.items()}, sharing


def candidate_pks(
    session: Session,
    pseudonyms: Mapping[str, bytes | Collection[bytes]],
    now: datetime,
    exclude_pk: int,
    *,
    sharing: Sequence[tuple[str, bytes, int]] | None = None,
) -> list[int]:
    """Active, unexpired signals sharing any pseudonym: one index seek per pseudonym.

    Two statements on purpose: given one join, a planner without fresh statistics may
    walk every active signal by the (status, expires_at) index instead. The first
    statement can only be answered from the (family, element) index; the second looks
    the few hits up by primary key. `sharing`: the first statement's rows, if read.
    """
    if not pseudonyms:
        return []
    found = _sharing(session, pseudonyms) if sharing is None else sharing
    shared = {pk for _, _, pk in found}
    shared.discard(exclude_pk)
    sharing_pks = shared
    if not sharing_pks:
        return []
    live = session.execute(_LIVE, {"pks": sorted(sharing_pks), "now": now}).scalars().all()
    return sorted(live)


#: Which of the signals `pks` are active and unexpired at `now`: by primary key.
_LIVE = select(_SIGNALS.c.pk).where(
    _SIGNALS.c.pk.in_(bindparam("pks", expanding=True)),
    _SIGNALS.c.status == "active",
    _SIGNALS.c.expires_at > bindparam("now"),
)


#: The candidates whose own matching is done (no "created" outbox row pending), with
#: their facts and pseudonyms: one row per pseudonym.
_MATCHED_CANDIDATES = (
    select(*FACT_COLUMNS, _PSEUDONYMS.c.family, _PSEUDONYMS.c.element)
    .join(_PSEUDONYMS, _PSEUDONYMS.c.signal_pk == _SIGNALS.c.pk)
    .where(
        _SIGNALS.c.pk.in_(bindparam("pks", expanding=True)),
        ~is_pending(_SIGNALS.c.pk),
    )
)


def _matched_candidates(
    session: Session, pks: Sequence[int]
) -> tuple[dict[int, SignalFacts], dict[int, dict[str, set[bytes]]]]:
    """Of `pks`, those matched already (a pending one will find this signal when its
    turn comes): their facts and their pseudonyms by family."""
    facts: dict[int, SignalFacts] = {}
    pseudonyms: dict[int, dict[str, set[bytes]]] = {}
    for row in session.execute(_MATCHED_CANDIDATES, {"pks": list(pks)}).all():
        pk = row[0]
        if pk not in facts:
            facts[pk] = signal_facts(row)
            pseudonyms[pk] = {}
        pseudonyms[pk].setdefault(row.family, set()).add(bytes(row.element))
    return facts, pseudonyms


@dataclass(frozen=True)
class _Member:
    """A signal's membership of a match, as stored."""

    linkage_keys: str
    tier: str
    joined_at: datetime


@dataclass
class _StoredMatch:
    """An existing match as the update reads it: its row and its members by signal."""

    pk: int
    id: str
    created_at: datetime
    state: str
    state_reason: str | None
    state_changed_at: datetime | None
    members: dict[int, _Member] = field(default_factory=dict)
    bsns: set[bytes] = field(default_factory=set)


@dataclass
class _Group:
    """An existing match, or a linked signal in no match yet, as the merge sees it."""

    match: _StoredMatch | None
    signal_pks: set[int]
    bsns: set[bytes]
    #: Signals it may not share a cluster with (a dismissed match held them together).
    apart: set[int] = field(default_factory=set)


def match_new_signal(
    session: Session,
    signal: SignalFacts,
    pseudonyms: Mapping[str, bytes | Collection[bytes]],
    now: datetime,
    hit_policy: HitPolicy = no_hits,
    *,
    sharing: Sequence[tuple[str, bytes, int]] | None = None,
) -> MatchOutcome:
    """Find what the new `signal` matches and update the clusters; the caller holds the
    cluster lock. Signals whose own matching is still pending are left out: they will
    find this one when their turn comes. `sharing`: `_sharing`'s rows for `pseudonyms`,
    if read (`stored_sharing`)."""
    own = by_family(pseudonyms)
    if sharing is None:
        sharing = _sharing(session, own)
    # How many stored signals hold each of this signal's elements (itself included):
    # a key many people share is weak evidence (`scoring.HANDFUL`).
    held = Counter((family, element) for family, element, _ in sharing)
    candidates = candidate_pks(session, own, now, signal.pk, sharing=sharing)
    if not candidates:
        return MatchOutcome([], None)
    facts, their_pseudonyms = _matched_candidates(session, candidates)
    if not facts:
        return MatchOutcome([], None)
    linked: dict[int, Link] = {}
    repeat_of: str | None = None

    def frequency(family: str, element: bytes) -> int:
        return held.get((family, element), 1)

    for pk in candidates:
        if pk not in facts:
            continue
        found = assess(own, their_pseudonyms[pk], frequency)
        if found.tier is None:
            continue
        if facts[pk].organisation == signal.organisation:
            if pk < signal.pk:  # candidates are sorted: the earliest
                repeat_of = repeat_of or facts[pk].id
        else:
            linked[pk] = Link(found.agreed, found.tier)
    if not linked:
        return MatchOutcome([], repeat_of)
    facts[signal.pk] = signal
    changes = _update_clusters(session, signal, own, linked, facts, their_pseudonyms, now)
    notifications: list[dict[str, Any]] = []
    _notify_changes(notifications, changes, now, hit_policy, facts)
    _write_notifications(session, notifications)
    return MatchOutcome(changes, repeat_of)


#: The members of every dismissed match that holds any of the signals `pks`.
_DISMISSED_TOGETHER = select(_MEMBERS.c.match_pk, _MEMBERS.c.signal_pk).where(
    _MEMBERS.c.match_pk.in_(
        select(_MEMBERS.c.match_pk)
        .join(_MATCHES, _MATCHES.c.pk == _MEMBERS.c.match_pk)
        .where(
            _MEMBERS.c.signal_pk.in_(bindparam("pks", expanding=True)),
            _MATCHES.c.state == "dismissed",
        )
    )
)


def _dismissed_apart(session: Session, signal_pks: Iterable[int]) -> dict[int, set[int]]:
    """For each of `signal_pks`: the signals a dismissed match held it together with."""
    pks = sorted(set(signal_pks))
    apart: dict[int, set[int]] = {pk: set() for pk in pks}
    if not pks:
        return apart
    together: dict[int, set[int]] = {}
    for match_pk, signal_pk in session.execute(_DISMISSED_TOGETHER, {"pks": pks}).all():
        together.setdefault(match_pk, set()).add(signal_pk)
    for members in together.values():
        for pk in members & set(pks):
            apart[pk] |= members - {pk}
    return apart


#: The matches (not dismissed) that any of the linked signals is in.
_MEMBERSHIPS = (
    select(_MEMBERS.c.match_pk, _MEMBERS.c.signal_pk)
    .join(_MATCHES, _MATCHES.c.pk == _MEMBERS.c.match_pk)
    .where(
        _MEMBERS.c.signal_pk.in_(bindparam("pks", expanding=True)),
        _MATCHES.c.state != "dismissed",
    )
)
_BSNS = _PSEUDONYMS.alias("bsns")
#: Those matches: each member with its facts and its BSN pseudonym (if any), one row
#: per member.
_STORED_MATCHES = (
    select(
        *FACT_COLUMNS,
        _MATCHES.c.pk.label("match_pk"),
        _MATCHES.c.id.label("match_id"),
        _MATCHES.c.created_at,
        _MATCHES.c.state,
        _MATCHES.c.state_reason,
        _MATCHES.c.state_changed_at,
        _MEMBERS.c.linkage_keys,
        _MEMBERS.c.tier,
        _MEMBERS.c.joined_at,
        _BSNS.c.element.label("bsn"),
    )
    .select_from(_MATCHES)
    .join(_MEMBERS, _MEMBERS.c.match_pk == _MATCHES.c.pk)
    .join(_SIGNALS, _SIGNALS.c.pk == _MEMBERS.c.signal_pk)
    .outerjoin(_BSNS, and_(_BSNS.c.signal_pk == _MEMBERS.c.signal_pk, _BSNS.c.family == "bsn"))
    .where(_MATCHES.c.pk.in_(bindparam("pks", expanding=True)))
)


def _stored_matches(
    session: Session, match_pks: Sequence[int], facts: dict[int, SignalFacts]
) -> dict[int, _StoredMatch]:
    """The matches `match_pks` with their members; adds the members' facts to `facts`."""
    found: dict[int, _StoredMatch] = {}
    for row in session.execute(_STORED_MATCHES, {"pks": list(match_pks)}).all():
        match = found.get(row.match_pk)
        if match is None:
            match = found[row.match_pk] = _StoredMatch(
                row.match_pk,
                row.match_id,
                row.created_at,
                row.state,
                row.state_reason,
                row.state_changed_at,
            )
        member = signal_facts(row)
        facts.setdefault(member.pk, member)
        match.members[member.pk] = _Member(row.linkage_keys, row.tier, row.joined_at)
        if row.bsn is not None:
            match.bsns.add(bytes(row.bsn))
    return found


def _update_clusters(
    session: Session,
    signal: SignalFacts,
    pseudonyms: Pseudonyms,
    linked: dict[int, Link],
    facts: dict[int, SignalFacts],
    their_pseudonyms: Mapping[int, Mapping[str, set[bytes]]],
    now: datetime,
) -> list[MatchChange]:
    # Memberships are read after the cluster lock: a merge that committed meanwhile is
    # seen. A dismissed match is no group: its signals join as singles, kept apart.
    memberships = session.execute(_MEMBERSHIPS, {"pks": list(linked)}).all()
    match_pks = sorted({match_pk for match_pk, _ in memberships})
    groups: list[_Group] = []
    if match_pks:
        stored = _stored_matches(session, match_pks, facts)
        groups.extend(
            _Group(stored[pk], set(stored[pk].members), set(stored[pk].bsns)) for pk in match_pks
        )
    in_a_match = {signal_pk for _, signal_pk in memberships}
    singles = sorted(pk for pk in linked if pk not in in_a_match)
    for pk in singles:
        groups.append(_Group(None, {pk}, set(their_pseudonyms[pk].get("bsn", set()))))
    apart = _dismissed_apart(session, set().union(*(g.signal_pks for g in groups)))
    for group in groups:
        group.apart = set().union(*(apart[pk] for pk in group.signal_pks))

    # Greedy: each group joins the first cluster whose BSNs it agrees with and that
    # holds nothing a dismissal keeps it apart from; a group holding another BSN than
    # the new signal's own is skipped (twins rule).
    own_bsn = set(pseudonyms.get("bsn", frozenset()))
    clusters: list[list[_Group]] = []
    cluster_bsns: list[set[bytes]] = []
    cluster_pks: list[set[int]] = []
    cluster_apart: list[set[int]] = []
    for group in groups:
        if len(group.bsns | own_bsn) > 1:
            continue
        for index, known in enumerate(cluster_bsns):
            if (
                len(known | group.bsns) <= 1
                and not group.signal_pks & cluster_apart[index]
                and not group.apart & cluster_pks[index]
            ):
                clusters[index].append(group)
                known |= group.bsns
                cluster_pks[index] |= group.signal_pks
                cluster_apart[index] |= group.apart
                break
        else:
            clusters.append([group])
            cluster_bsns.append(group.bsns | own_bsn)
            cluster_pks.append(set(group.signal_pks))
            cluster_apart.append(set(group.apart))
    return [_apply_cluster(session, signal, linked, cluster, facts, now) for cluster in clusters]


def _better(a: str, b: str) -> str:
    return "strong" if "strong" in (a, b) else "possible"


def _merged(a: _Member, b: _Member) -> _Member:
    """`a` also tied in as `b` is (the union of keys, the better tier)."""
    keys = _join(_keys(a.linkage_keys) | _keys(b.linkage_keys))
    return _Member(keys, _better(a.tier, b.tier), a.joined_at)


_UPDATE_MEMBER = (
    update(_MEMBERS)
    .where(_MEMBERS.c.match_pk == bindparam("m_pk"), _MEMBERS.c.signal_pk == bindparam("s_pk"))
    .values(linkage_keys=bindparam("m_keys"), tier=bindparam("m_tier"))
)


def _apply_cluster(
    session: Session,
    signal: SignalFacts,
    linked: dict[int, Link],
    cluster: list[_Group],
    facts: Mapping[int, SignalFacts],
    now: datetime,
) -> MatchChange:
    """Create, grow or merge one match for `cluster`: its members are worked out first,
    then written in a few Core statements (no ORM unit of work)."""
    existing = sorted((g.match for g in cluster if g.match is not None), key=lambda m: m.pk)
    target = existing[0] if existing else None
    absorbed = existing[1:]
    kind: ChangeKind = ("merged" if absorbed else "grown") if target else "created"
    stored = dict(target.members) if target else {}
    current = dict(stored)
    for gone in absorbed:
        for pk, member in gone.members.items():
            current[pk] = _merged(current[pk], member) if pk in current else member
    cluster_pks = set().union(*(g.signal_pks for g in cluster))
    own_keys: set[str] = set()
    own_tier = "possible"
    added: list[int] = []
    for pk in sorted(cluster_pks & set(linked)):
        link = linked[pk]
        own_keys |= link.agreed
        own_tier = _better(own_tier, link.tier)
        tied = _Member(_join(link.agreed), link.tier, now)
        if pk in current:
            current[pk] = _merged(current[pk], tied)
        else:
            current[pk] = tied
            added.append(pk)
    current[signal.pk] = _Member(_join(own_keys), own_tier, now)
    tier = "strong" if all(m.tier == "strong" for m in current.values()) else "possible"

    if target is None:
        match_id = recordable_uuid()
        target_pk = session.execute(
            insert(_MATCHES)
            .values(id=match_id, created_at=now, updated_at=now, tier=tier)
            .returning(_MATCHES.c.pk)
        ).scalar_one()
        created_at, state, reason, changed_at = now, "new", None, None
    else:
        match_id, target_pk = target.id, target.pk
        session.execute(
            update(_MATCHES).where(_MATCHES.c.pk == target_pk).values(updated_at=now, tier=tier)
        )
        created_at, state = target.created_at, target.state
        reason, changed_at = target.state_reason, target.state_changed_at
    if absorbed:
        absorbed_pks = [m.pk for m in absorbed]
        session.execute(
            update(_MATCHES)
            .where(_MATCHES.c.pk.in_(absorbed_pks))
            .values(merged_into=match_id, updated_at=now)
        )
        session.execute(delete(_MEMBERS).where(_MEMBERS.c.match_pk.in_(absorbed_pks)))
    changed = [
        {"m_pk": target_pk, "s_pk": pk, "m_keys": m.linkage_keys, "m_tier": m.tier}
        for pk, m in current.items()
        if pk in stored and m != stored[pk]
    ]
    if changed:
        session.execute(_UPDATE_MEMBER, changed)
    session.execute(
        insert(_MEMBERS),
        [
            {
                "match_pk": target_pk,
                "signal_pk": pk,
                "linkage_keys": m.linkage_keys,
                "joined_at": m.joined_at,
                "tier": m.tier,
            }
            for pk, m in sorted(current.items())
            if pk not in stored
        ],
    )
    members = tuple(
        MatchSignal(
            id=facts[pk].id,
            organisation=facts[pk].organisation,
            category=facts[pk].category,
            reference=facts[pk].reference,
            status=facts[pk].status,
            linkage_keys=tuple(sorted(_keys(m.linkage_keys))),
            tier=m.tier,
        )
        for pk, m in sorted(current.items())
    )
    match = Match(
        id=match_id,
        created_at=utc(created_at),
        updated_at=utc(now),
        signals=members,
        linkage_keys=tuple(sorted(set().union(*(s.linkage_keys for s in members)))),
        tier=tier,
        state=state,
        state_reason=reason,
        state_changed_at=utc(changed_at) if changed_at else None,
    )
    return MatchChange(
        kind=kind,
        match=match,
        added_signal_ids=(signal.id, *(facts[pk].id for pk in added)),
        absorbed_match_ids=tuple(m.id for m in absorbed),
    )


def _load_matches(session: Session, matches: Sequence[MatchRow]) -> list[Match]:
    pks = [m.pk for m in matches]
    members: dict[int, list[MatchSignal]] = {pk: [] for pk in pks}
    if pks:
        rows = session.execute(
            select(
                MatchMemberRow.match_pk, MatchMemberRow.linkage_keys, MatchMemberRow.tier, SignalRow
            )
            .join(SignalRow, SignalRow.pk == MatchMemberRow.signal_pk)
            .where(MatchMemberRow.match_pk.in_(pks))
            .order_by(MatchMemberRow.match_pk, SignalRow.pk)
        )
        for match_pk, keys, tier, row in rows:
            members[match_pk].append(
                MatchSignal(
                    id=row.id,
                    organisation=row.organisation,
                    category=row.category,
                    reference=row.reference,
                    status=row.status,
                    linkage_keys=tuple(sorted(_keys(keys))),
                    tier=tier,
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
                tier=match.tier,
                state=match.state,
                state_reason=match.state_reason,
                state_changed_at=utc(match.state_changed_at) if match.state_changed_at else None,
            )
        )
    return result


def _notify(
    out: list[dict[str, Any]],
    recipient: str,
    type_: str,
    now: datetime,
    *,
    signal_id: str | None,
    match_id: str | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Add a notification to `out`, written in order by `_write_notifications`."""
    out.append(
        {
            "recipient": recipient,
            "type": type_,
            "signal_id": signal_id,
            "match_id": match_id,
            "created_at": now,
            "extra": json.dumps(extra or {}, sort_keys=True, separators=(",", ":")),
        }
    )


def _write_notifications(session: Session, rows: list[dict[str, Any]]) -> None:
    """One INSERT for them all, in the order they were made (ids follow that order)."""
    if rows:
        session.execute(insert(_NOTIFICATIONS), rows)


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
    out: list[dict[str, Any]],
    changes: list[MatchChange],
    now: datetime,
    hit_policy: HitPolicy,
    facts: Mapping[int, SignalFacts],
) -> None:
    kinds = {f.id: f.organisation_kind for f in facts.values()}
    for change in changes:
        match = change.match
        new_signal = change.added_signal_ids[0]
        if change.kind == "created":
            _notify(out, COORDINATOR, "match", now, signal_id=new_signal, match_id=match.id)
        else:
            _notify(
                out,
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
                out,
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
    signal: SignalFacts,
    type_: Literal["signal.withdrawn", "signal.expired"],
    now: datetime,
    hit_policy: HitPolicy = no_hits,
) -> list[str]:
    """Tell who must know that `signal` left; run by the outbox processor, which holds
    the cluster lock.

    Returns the ids of the matches it was in. Membership stays as history; the
    signal's status shows it is gone.
    """
    matches = matches_of_signal(session, signal.pk)
    out: list[dict[str, Any]] = []
    if type_ == "signal.expired":
        _notify(out, signal.organisation, type_, now, signal_id=signal.id, match_id=None)
    for match in matches:
        session.execute(update(_MATCHES).where(_MATCHES.c.id == match.id).values(updated_at=now))
        _notify(out, COORDINATOR, type_, now, signal_id=signal.id, match_id=match.id)
        kinds = _kind_of(session, (s.id for s in match.signals))
        for member in match.signals:
            if member.id == signal.id or member.status != "active":
                continue
            rule = hit_policy(kinds[member.id])
            if rule.notify:
                _notify(
                    out,
                    member.organisation,
                    "match.updated",
                    now,
                    signal_id=member.id,
                    match_id=None,
                    extra=_partner_extra(
                        rule, member.organisation, match, change=type_.removeprefix("signal.")
                    ),
                )
    _write_notifications(session, out)
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


def with_supplied(session: Session, match: Match) -> Match:
    """`match` with each signal's own linkage key families (`MatchSignal.supplied`), in
    one read of their pseudonym rows' families (never the pseudonyms themselves)."""
    rows = session.execute(
        select(SignalRow.id, SignalPseudonymRow.family)
        .distinct()
        .join(SignalPseudonymRow, SignalPseudonymRow.signal_pk == SignalRow.pk)
        .where(SignalRow.id.in_([s.id for s in match.signals]))
    )
    found: dict[str, set[str]] = {}
    for signal_id, family in rows:
        found.setdefault(signal_id, set()).add(family)
    signals = tuple(replace(s, supplied=frozenset(found.get(s.id, ()))) for s in match.signals)
    return replace(match, signals=signals)


def list_notifications(
    session: Session, recipient: str, after: str | None, limit: int | None, cursors: CursorCodec
) -> Page[Notification]:
    """Notifications for `recipient` (an organisation id or "coordinator"), oldest first;
    each one's `ref` is its cursor (`after=ref` reads what came after it)."""
    start = cursors.decode(after, parameter="after")
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
            ref=cursors.encode(row.id),
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
    return Page(items, cursors.encode(rows[-1].id if rows else start))


def set_match_state(
    session: Session, match_id: str, state: str, reason: str | None, now: datetime
) -> Match | None:
    """Store a coordinator's review state on the current match (an absorbed match's id
    leads to the match that absorbed it); None when there is no such match."""
    found = get_match(session, match_id)
    if found is None:
        return None
    row = session.execute(
        select(MatchRow).where(MatchRow.id == found.id).execution_options(populate_existing=True)
    ).scalar_one()
    row.state = state
    row.state_reason = reason if state == "dismissed" else None
    row.state_changed_at = now
    session.flush()
    return _load_matches(session, [row])[0]
