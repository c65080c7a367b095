"""The matching outbox: what a request leaves for the processor to do after its commit.

Why: a signal that hits a reported person used to take the cluster lock, update the
cluster and write notifications inside the request, so a partner could tell a hit from
a miss by the response time alone. Now the request only stores the signal, its
pseudonyms, one outbox row and its own audit entry — the same work for a hit and a
miss — and `gateway.matching.processor` does the matching later.

No lost matches: the row commits with the signal (or its withdrawal or expiry), and is
deleted in the transaction that does the matching work, so a crash in between leaves
the row to be processed again.

While a signal's "created" row is pending it takes no part in anyone else's matching
(`is_pending`): of two signals about one person, the one processed second sees
the first, whatever order they committed or are processed in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import ColumnElement, Table, exists, insert
from sqlalchemy.orm import Session

from gateway.audit.entries import SubjectRef
from gateway.matching.models import MatchingOutboxRow

_OUTBOX = cast(Table, MatchingOutboxRow.__table__)
OutboxEvent = Literal["created", "withdrawn", "expired"]


def enqueue(
    session: Session,
    signal_pk: int,
    event: OutboxEvent,
    now: datetime,
    subjects: Sequence[SubjectRef] = (),
) -> None:
    """Leave matching work for `signal_pk` in the caller's transaction.

    `subjects`: for a removal, the subject references of the pseudonyms the request
    deleted (the processor's `matching.update` entry names them; nothing else can).
    """
    session.add(
        MatchingOutboxRow(
            signal_pk=signal_pk,
            event=event,
            created_at=now,
            subjects=json.dumps([[s.id, s.type] for s in subjects]) if subjects else None,
            attempts=0,
        )
    )


def enqueue_row(session: Session, signal_pk: int, event: OutboxEvent, now: datetime) -> None:
    """`enqueue` as one Core INSERT (no subjects): the submission's hot path."""
    session.execute(
        insert(_OUTBOX),
        {"signal_pk": signal_pk, "event": event, "created_at": now, "attempts": 0},
    )


def stored_subjects(text: str | None) -> tuple[SubjectRef, ...]:
    """The subject references `enqueue` stored with a row."""
    return tuple(SubjectRef(ref, kind) for ref, kind in json.loads(text)) if text else ()


def is_pending(signal_pk: ColumnElement[int]) -> ColumnElement[bool]:
    """The condition "the signal `signal_pk` names has its "created" row pending (it is
    not matched yet)", for a statement that reads candidates."""
    return exists().where(_OUTBOX.c.signal_pk == signal_pk, _OUTBOX.c.event == "created")
