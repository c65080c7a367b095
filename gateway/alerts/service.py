"""`AlertService`: the policy's alert rules over recent audit entries.

Each rule counts one kind of event per actor in a sliding window ending now. An actor
over the threshold raises the alert — once: while an alert of the same rule for the
same actor was raised within the window, it is not raised again. Evaluations in
several gateway processes are serialised (SQLite: the write lock; PostgreSQL: an
advisory lock), so two processes never raise the same alert twice.

A privacy officer marks an alert handled (`AlertService.handle`) with a short note of
what was done or concluded; the note stays on the alert row, and the audit entry says
only which alert was handled, by whom, under which rule of the policy.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.actors import SYSTEM, Actor
from gateway.alerts.models import NOTE_MAX_LENGTH, AlertRow
from gateway.audit import AuditEvent, record_event
from gateway.audit.models import AuditEntryRow
from gateway.db import Database, advisory_xact_lock
from gateway.errors import Conflict, FieldError, InvalidInput, NotFound
from gateway.jobs import BackgroundJob
from gateway.logs import get_logger, looks_like_identifier
from gateway.ops.metrics import DatabaseAway
from gateway.policy.audited import record_decision, refuse
from gateway.policy.engine import PolicyEngine, Resource
from gateway.policy.schema import AlertRule
from gateway.pseudonyms.detector import recordable_uuid, safe_uuid

log = get_logger(__name__)
#: pg_advisory_xact_lock key serialising evaluations across processes ("KPalerts").
_EVALUATION_LOCK = 0x4B50616C65727473
INTERVAL_SECONDS = 60.0
#: The policy action of the officer's work on alerts: reading them, running the rules
#: and marking them handled are all part of reviewing the audit log.
ALERT_ACTION = "audit.read"
#: What can be wrong with a note (the web page says each in its own words).
NoteProblem = Literal["empty", "too-long", "unprintable", "personal-data"]
_NOTE_DETAILS: dict[NoteProblem, str] = {
    "empty": "Must not be empty",
    "too-long": f"Must be at most {NOTE_MAX_LENGTH} characters",
    "unprintable": "Must be printable characters (line breaks allowed)",
    "personal-data": "Looks like personal data (a BSN or a date); leave it out",
}


@dataclass(frozen=True)
class Alert:
    id: str
    rule_id: str
    kind: str
    actor_id: str
    count: int
    threshold: int
    window_start: datetime
    window_end: datetime
    raised_at: datetime
    description: str | None = None
    handled_at: datetime | None = None
    handled_by: str | None = None
    note: str | None = None

    @property
    def handled(self) -> bool:
        return self.handled_at is not None

    @classmethod
    def of(cls, row: AlertRow, description: str | None = None) -> Alert:
        return cls(
            id=row.id,
            rule_id=row.rule_id,
            kind=row.kind,
            actor_id=row.actor_id,
            count=row.count,
            threshold=row.threshold,
            window_start=_utc(row.window_start),
            window_end=_utc(row.window_end),
            raised_at=_utc(row.raised_at),
            description=description,
            handled_at=_utc(row.handled_at) if row.handled_at is not None else None,
            handled_by=row.handled_by,
            note=row.note,
        )


class InvalidNote(InvalidInput):
    """The note to mark an alert handled with is refused; `problem` says why."""

    def __init__(self, problem: NoteProblem) -> None:
        super().__init__(
            "The note is invalid; see errors.", errors=[FieldError("/note", _NOTE_DETAILS[problem])]
        )
        self.problem: NoteProblem = problem


class AlertAlreadyHandled(Conflict):
    slug = "alert-already-handled"
    title = "The alert has already been handled"


def clean_note(note: str) -> str:
    """The note as it is stored: every line break a line feed, no spaces around it."""
    return note.replace("\r\n", "\n").replace("\r", "\n").strip()


def note_problem(note: str) -> NoteProblem | None:
    """What is wrong with a (cleaned) note, if anything. A BSN or a date of birth has no
    place in it (names cannot be told from other words: the page asks to leave them out)."""
    if not note:
        return "empty"
    if len(note) > NOTE_MAX_LENGTH:
        return "too-long"
    if not all(c.isprintable() or c == "\n" for c in note):
        return "unprintable"
    if looks_like_identifier(note):
        return "personal-data"
    return None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _entries(
    session: Session, action: str, since: datetime, until: datetime, outcome: str = "success"
) -> list[tuple[str, str | None, datetime, bytes]]:
    row = AuditEntryRow
    found = session.execute(
        select(row.actor_id, row.actor_organisation, row.created_at, row.data).where(
            row.action == action,
            row.outcome == outcome,
            row.created_at >= since,
            row.created_at <= until,
        )
    )
    return [(a, o, _utc(c), d) for a, o, c, d in found]


def _count_by_actor(
    session: Session, since: datetime, until: datetime, *, action: str | None = None, outcome: str
) -> Counter[str]:
    row = AuditEntryRow
    stmt = (
        select(row.actor_id, func.count())
        .where(row.outcome == outcome, row.created_at >= since, row.created_at <= until)
        .group_by(row.actor_id)
    )
    if action is not None:
        stmt = stmt.where(row.action == action)
    return Counter({actor: int(n) for actor, n in session.execute(stmt)})


def counts(session: Session, rule: AlertRule, now: datetime) -> Counter[str]:
    """Per actor, the events of `rule`'s kind in the window ending `now` (only those over
    any further condition of the rule, such as the usual level of reads)."""
    since = now - timedelta(minutes=rule.window_minutes)
    if rule.kind == "refusals-per-client":
        found = _count_by_actor(session, since, now, outcome="denied")
        found.pop(SYSTEM.id, None)
        return found
    if rule.kind == "subject-searches-per-user":
        return _count_by_actor(session, since, now, action="subject.search", outcome="success")
    if rule.kind == "submit-withdraw-bursts":
        return _bursts(session, since, now)
    if rule.kind == "reads-outside-office-hours":
        assert rule.office_hours is not None
        start, end = rule.office_hours
        zone = ZoneInfo(rule.timezone)
        found = Counter[str]()
        for actor, _, created, _ in _entries(session, "payload.read", since, now):
            local = created.astimezone(zone)
            if local.weekday() >= 5 or not start <= local.hour < end:
                found[actor] += 1
        return found
    assert rule.factor is not None and rule.baseline_days is not None
    reads = _count_by_actor(session, since, now, action="payload.read", outcome="success")
    before = since - timedelta(days=rule.baseline_days)
    usual = _count_by_actor(session, before, since, action="payload.read", outcome="success")
    windows = rule.baseline_days * 24 * 60 / rule.window_minutes
    return Counter(
        {actor: n for actor, n in reads.items() if n > rule.factor * usual.get(actor, 0) / windows}
    )


def _bursts(session: Session, since: datetime, now: datetime) -> Counter[str]:
    """Per organisation, its signals withdrawn in the window that it submitted in it."""
    submitted: dict[str, str] = {}
    for _, org, _, data in _entries(session, "signal.create", since, now):
        resource = json.loads(data).get("resource") or {}
        if org and resource.get("id"):
            submitted[str(resource["id"])] = org
    found = Counter[str]()
    for _, org, _, data in _entries(session, "signal.withdraw", since, now):
        resource = json.loads(data).get("resource") or {}
        if org and submitted.get(str(resource.get("id"))) == org:
            found[org] += 1
    return found


@dataclass
class AlertService:
    engine: PolicyEngine
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def evaluate(self, session: Session, now: datetime | None = None) -> list[Alert]:
        """Run every rule; store and record each new alert (the caller commits)."""
        now = now or self.clock()
        advisory_xact_lock(session, _EVALUATION_LOCK)
        raised: list[Alert] = []
        for rule in self.engine.loaded.policy.alerts:
            for actor_id, count in sorted(counts(session, rule, now).items()):
                if count >= rule.threshold and not self._raised_within(
                    session, rule, actor_id, now
                ):
                    raised.append(self._raise(session, rule, actor_id, count, now))
        return raised

    def evaluate_now(self, session: Session, actor: Actor) -> list[Alert]:
        """On demand (the `/alerts` page): the officer may read the log; audited."""
        resource = Resource(type="alerts")
        decision = self.engine.decide(actor, "audit.read", resource)
        if not decision.allowed:
            raise PermissionError(decision.rule)
        raised = self.evaluate(session)
        record_event(
            session,
            AuditEvent(
                action="alert.evaluate",
                outcome="success",
                actor=actor,
                resource_type=resource.type,
                detail={"raised": len(raised)},
                **decision.audit_fields(),
            ),
        )
        return raised

    def recent(self, session: Session, actor: Actor, limit: int = 200) -> list[Alert]:
        """The open alerts, then the handled ones, each newest first, for a reader of the
        audit log; audited."""
        resource = Resource(type="alerts")
        decision = self.engine.decide(actor, "audit.read", resource)
        if not decision.allowed:
            raise PermissionError(decision.rule)
        handled_last = case((AlertRow.handled_at.is_(None), 0), else_=1)
        rows = session.execute(
            select(AlertRow)
            .order_by(handled_last, AlertRow.raised_at.desc(), AlertRow.id)
            .limit(limit)
        ).scalars()
        descriptions = self._descriptions()
        found = [Alert.of(row, descriptions.get(row.rule_id)) for row in rows]
        record_decision(session, actor, decision, resource, detail={"alerts": len(found)})
        return found

    def handle(
        self,
        session: Session,
        actor: Actor,
        alert_id: str,
        note: str,
        now: datetime | None = None,
    ) -> Alert:
        """Mark one open alert handled, with the officer's `note` (the caller commits).

        Decided as the page's own action (`audit.read`), once; the entry
        (`alert.handle`) names the alert and that it was handled, never the note.
        Refused: by the policy (403, audited), a note that is empty, too long or holds a
        BSN or date (`InvalidNote`), an unknown alert (404, audited), an alert already
        handled (`AlertAlreadyHandled`: the first officer's note stands).
        """
        resource = Resource(type="alert", id=safe_uuid(alert_id))
        decision = self.engine.decide(actor, ALERT_ACTION, resource)
        if not decision.allowed:
            refuse(session, actor, decision, resource)
        text = clean_note(note)
        problem = note_problem(text)
        if problem is not None:
            raise InvalidNote(problem)
        # Locked: two officers handling the same alert at once must not both succeed.
        row = session.execute(
            select(AlertRow).where(AlertRow.id == alert_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            refuse(session, actor, decision, resource, NotFound("No alert with this id."))
        if row.handled_at is not None:
            raise AlertAlreadyHandled("The alert has already been marked handled.")
        row.handled_at = now or self.clock()
        row.handled_by = actor.id
        row.note = text
        record_event(
            session,
            AuditEvent(
                action="alert.handle",
                outcome="success",
                actor=actor,
                resource_type="alert",
                resource_id=row.id,
                detail={"rule": row.rule_id, "state": "handled"},
                **decision.audit_fields(),
            ),
            now=row.handled_at,
        )
        return Alert.of(row, self._descriptions().get(row.rule_id))

    def _descriptions(self) -> dict[str, str | None]:
        """Each alert rule's description in the loaded policy, by rule id."""
        return {r.id: r.description for r in self.engine.loaded.policy.alerts}

    @staticmethod
    def _raised_within(session: Session, rule: AlertRule, actor_id: str, now: datetime) -> bool:
        since = now - timedelta(minutes=rule.window_minutes)
        return (
            session.execute(
                select(AlertRow.id)
                .where(
                    AlertRow.rule_id == rule.id,
                    AlertRow.actor_id == actor_id,
                    AlertRow.raised_at > since,
                )
                .limit(1)
            ).first()
            is not None
        )

    def _raise(
        self, session: Session, rule: AlertRule, actor_id: str, count: int, now: datetime
    ) -> Alert:
        row = AlertRow(
            # An id the audit log records as it is, also when an officer's form sends it
            # back (a random UUID holds a BSN or date shape about one time in 70).
            id=recordable_uuid(),
            rule_id=rule.id,
            kind=rule.kind,
            actor_id=actor_id,
            count=count,
            threshold=rule.threshold,
            window_start=now - timedelta(minutes=rule.window_minutes),
            window_end=now,
            raised_at=now,
        )
        session.add(row)
        record_event(
            session,
            AuditEvent(
                action="alert.raised",
                outcome="success",
                actor=SYSTEM,
                resource_type="alert",
                resource_id=row.id,
                policy_digest=self.engine.loaded.digest,
                detail={
                    "rule": rule.id,
                    "kind": rule.kind,
                    "actor": actor_id,
                    "count": count,
                    "threshold": rule.threshold,
                    "windowMinutes": rule.window_minutes,
                },
            ),
            now=now,
        )
        log.warning("alert.raised", rule=rule.id, kind=rule.kind, count=count)
        return Alert.of(row, rule.description)


def raised_per_rule(db: Database) -> Iterator[tuple[str, int, int]]:
    """How many alerts each rule raised, ever, and how many of those are still open
    (for `/metrics`)."""
    still_open = func.sum(case((AlertRow.handled_at.is_(None), 1), else_=0))
    with db.transaction(write=False) as session:
        rows = session.execute(
            select(AlertRow.rule_id, func.count(), still_open).group_by(AlertRow.rule_id)
        )
        yield from ((rule, int(n), int(o or 0)) for rule, n, o in rows)


class AlertJob(BackgroundJob):
    """Runs the alert rules every minute."""

    name = "alerts"

    def __init__(self, db: Database, service: AlertService, interval: float = INTERVAL_SECONDS):
        super().__init__(interval)
        self._db = db
        self._service = service

    def step(self) -> bool:
        with self._db.transaction() as session:
            self._service.evaluate(session)
        return False


class AlertCounter:
    """`ketenpoort_alerts_raised_total{rule}` and `ketenpoort_alerts_open{rule}` (not yet
    marked handled): counted from the stored alerts, so every gateway process reports
    the same numbers, whichever raised them."""

    def __init__(self, db: Database, away: DatabaseAway | None = None) -> None:
        self._db = db
        self._away = away or DatabaseAway()

    def collect(self) -> Iterator[Metric]:
        raised = CounterMetricFamily(
            "ketenpoort_alerts_raised", "Misuse alerts raised, by alert rule.", labels=["rule"]
        )
        still_open = GaugeMetricFamily(
            "ketenpoort_alerts_open",
            "Misuse alerts not yet marked handled by a privacy officer, by alert rule.",
            labels=["rule"],
        )
        if not self._away.now():
            try:
                for rule, n, o in raised_per_rule(self._db):
                    raised.add_metric([rule], n)
                    still_open.add_metric([rule], o)
            except SQLAlchemyError as exc:  # not initialised yet, or the database is away
                log.warning("alerts.count_failed", error=type(exc).__name__)
                self._away.saw(exc)
        yield raised
        yield still_open
