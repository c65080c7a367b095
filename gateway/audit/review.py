"""The privacy officer's subject filter on `/audit`, kept on the server.

The person's identifiers are pseudonymised by the subject search (which audits the
search) and forgotten; what stays, for one web session, is the list of subject
references, in a row deleted with the session. The filter never goes in a URL or a
cookie.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from gateway.audit.models import AuditSubjectFilterRow

MAX_REFERENCES = 64


def subject_filter(session: Session, session_id: str) -> tuple[str, ...]:
    """The subject references the web session filters by (none: no subject filter)."""
    row = session.get(AuditSubjectFilterRow, session_id)
    return tuple(row.subjects.split()) if row is not None else ()


def set_subject_filter(
    session: Session, session_id: str, references: tuple[str, ...], *, now: datetime
) -> None:
    clear_subject_filter(session, session_id)
    session.add(
        AuditSubjectFilterRow(
            session_id=session_id,
            subjects=" ".join(references[:MAX_REFERENCES]),
            created_at=now,
        )
    )


def clear_subject_filter(session: Session, session_id: str) -> None:
    session.execute(
        delete(AuditSubjectFilterRow).where(AuditSubjectFilterRow.session_id == session_id)
    )
