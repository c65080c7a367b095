"""Verification runs: the verifier started from the privacy officer's page, in the background.

`VerificationRuns.start` writes a `running` row and runs `AuditService.verify` (which
decides access and writes the verification's audit entry, `error` when the log is
wrong) in a thread of this process; the thread writes its progress to the row, so the
page shows it whichever gateway process serves the reload. The finished record —
tree size, root, result, first bad index, who started it and when — is signed with the
checkpoint key as a signed note, so a record copied out of the database can be checked
with the log's public key alone (`check_record`).

An external checkpoint (a signed note a partner kept as a witness) can be handed in
with the run: the verifier then also checks that the log's prefix of that size has the
root the partner holds — the log's consistency with what the partner saw.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from gateway.actors import Actor
from gateway.audit.access import AuditService
from gateway.audit.models import AuditVerificationRow
from gateway.audit.note import (
    NoteError,
    SignedNote,
    VerifierKey,
    key_hash,
    open_checkpoint,
    origin_for,
    sign_note,
)
from gateway.audit.sequencer import signer_from, verifier_keys
from gateway.audit.tree import latest_checkpoint
from gateway.audit.verify import Report
from gateway.crypto import ed25519
from gateway.errors import ProblemError
from gateway.logs import get_logger

log = get_logger(__name__)
#: The first line of a signed verification record.
RECORD_HEADER = "ketenpoort audit verification v1"
#: How often a running verification writes its progress (seconds).
PROGRESS_EVERY = 0.5
MAX_NOTE_LENGTH = 8192
#: A run still "running" after this long broke off (its process stopped): shown as such.
STALE_AFTER = timedelta(hours=6)


class CheckpointRefused(ValueError):
    """An uploaded checkpoint that is no signed checkpoint of this log; `empty` when
    there was nothing (or far too much) to read, so a page can say which in its own
    language (the message is the verifier's English)."""

    def __init__(self, reason: str, *, empty: bool = False) -> None:
        super().__init__(reason)
        self.empty = empty


@dataclass(frozen=True)
class RunView:
    id: str
    status: str
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    entries: int
    total: int
    tree_size: int | None
    root_hash: str | None
    first_bad_index: int | None
    problem: str | None
    external_size: int | None
    signed_record: str | None
    #: The record's signature checks out with the log's key (False while running).
    signature_valid: bool

    @property
    def percent(self) -> int:
        if self.status != "running":
            return 100
        return min(99, self.entries * 100 // self.total) if self.total else 0


def record_text(row: AuditVerificationRow) -> str:
    """The signed text of a finished run, one field a line."""
    root = base64.b64encode(row.root_hash).decode() if row.root_hash else "-"
    finished = _utc(row.finished_at).isoformat() if row.finished_at else "-"
    fields = (
        RECORD_HEADER,
        f"id {row.id}",
        f"result {row.status}",
        f"tree-size {row.tree_size if row.tree_size is not None else '-'}",
        f"root {root}",
        f"first-bad-index {row.first_bad_index if row.first_bad_index is not None else '-'}",
        f"external-checkpoint-size {row.external_size if row.external_size is not None else '-'}",
        f"started-by {row.started_by}",
        f"started-at {_utc(row.started_at).isoformat()}",
        f"finished-at {finished}",
    )
    return "".join(line.replace("\n", " ") + "\n" for line in fields)


def check_record(note: str, expected_text: str, keys: Sequence[VerifierKey]) -> bool:
    """True when `note` is `expected_text` signed by one of `keys`."""
    try:
        signed = SignedNote.parse(note)
    except NoteError:
        return False
    if signed.text != expected_text:
        return False
    return any(
        sig.name == key.name
        and sig.key_hash == key_hash(key.name, key.public_key)
        and ed25519.verify(key.public_key, signed.text.encode(), sig.signature)
        for key in keys
        for sig in signed.signatures
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class VerificationRuns:
    """Starts, follows and lists verification runs (see the module docstring)."""

    def __init__(self, audit: AuditService) -> None:
        self.audit = audit
        self._threads: dict[str, threading.Thread] = {}

    def check_external(self, note: str) -> int:
        """The size of an uploaded checkpoint, if it is a checkpoint of this log signed
        with its key; else `CheckpointRefused` saying why."""
        text = note.replace("\r\n", "\n")
        if not text.strip() or len(text) > MAX_NOTE_LENGTH:
            raise CheckpointRefused("the checkpoint is empty or too long", empty=True)
        if not text.endswith("\n"):
            text += "\n"
        keys = verifier_keys(self.audit.keys, self.audit.issuer)
        try:
            return open_checkpoint(text, keys, origin=origin_for(self.audit.issuer)).size
        except NoteError as exc:
            raise CheckpointRefused(str(exc)) from None

    def start(self, actor: Actor, *, external: str | None = None, background: bool = True) -> str:
        """Write a running row and verify in a thread (or here, when not `background`)."""
        external_size = self.check_external(external) if external is not None else None
        witnessed = (_normalised(external),) if external is not None else ()
        self.audit.catch_up()
        run_id = str(uuid.uuid4())
        with self.audit.db.transaction() as session:
            latest = latest_checkpoint(session)
            session.add(
                AuditVerificationRow(
                    id=run_id,
                    status="running",
                    started_by=actor.id,
                    started_at=datetime.now(UTC),
                    entries=0,
                    total=latest.size if latest is not None else 0,
                    external_size=external_size,
                )
            )
        if not background:
            self._run(run_id, actor, witnessed)
            return run_id
        thread = threading.Thread(
            target=self._run, args=(run_id, actor, witnessed), name="audit-verification"
        )
        thread.daemon = True
        self._threads[run_id] = thread
        thread.start()
        return run_id

    def join(self, run_id: str, timeout: float = 60.0) -> None:
        """Wait for a run of this process to finish (tests)."""
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)

    def get(self, run_id: str) -> RunView | None:
        with self.audit.db.session() as session:
            row = session.get(AuditVerificationRow, run_id)
            return self._view(row) if row is not None else None

    def history(self, limit: int = 50) -> list[RunView]:
        with self.audit.db.session() as session:
            rows = session.scalars(
                select(AuditVerificationRow)
                .order_by(AuditVerificationRow.started_at.desc())
                .limit(limit)
            ).all()
            return [self._view(row) for row in rows]

    # -- the run ------------------------------------------------------------------------

    def _run(self, run_id: str, actor: Actor, witnessed: tuple[str, ...]) -> None:
        last = 0.0

        def progress(done: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY:
                last = now
                with self.audit.db.transaction() as session:
                    session.execute(
                        update(AuditVerificationRow)
                        .where(AuditVerificationRow.id == run_id)
                        .values(entries=done)
                    )

        report: Report | None = None
        problem: str | None = None
        try:
            report = self.audit.verify(actor, witnessed=witnessed, progress=progress)
        except ProblemError as exc:  # refused (audited by the service)
            problem = exc.detail
        except Exception as exc:  # the run broke off; the row must not stay "running"
            log.exception("verification run failed", run=run_id)
            problem = type(exc).__name__
        self._finish(run_id, report, problem)

    def _finish(self, run_id: str, report: Report | None, problem: str | None) -> None:
        signer = signer_from(self.audit.keys, self.audit.issuer)
        with self.audit.db.transaction() as session:
            row = session.get(AuditVerificationRow, run_id)
            assert row is not None
            row.finished_at = datetime.now(UTC)
            if report is None:
                row.status = "error"
                row.problem = (problem or "")[:2000]
            else:
                first = report.first_bad
                row.status = "ok" if report.ok else "failed"
                row.entries = report.entries
                row.tree_size = report.size
                row.root_hash = report.root
                row.first_bad_index = first.index if first else None
                row.problem = first.problem[:2000] if first else None
            row.signed_record = sign_note(record_text(row), signer.origin, signer.private_jwk)

    def _view(self, row: AuditVerificationRow) -> RunView:
        valid = row.signed_record is not None and check_record(
            row.signed_record,
            record_text(row),
            verifier_keys(self.audit.keys, self.audit.issuer),
        )
        status, problem = row.status, row.problem
        if status == "running" and datetime.now(UTC) - _utc(row.started_at) > STALE_AFTER:
            status, problem = "error", "the run broke off (its gateway process stopped)"
        return RunView(
            id=row.id,
            status=status,
            started_by=row.started_by,
            started_at=_utc(row.started_at),
            finished_at=_utc(row.finished_at) if row.finished_at else None,
            entries=row.entries,
            total=row.total,
            tree_size=row.tree_size,
            root_hash=base64.b64encode(row.root_hash).decode() if row.root_hash else None,
            first_bad_index=row.first_bad_index,
            problem=problem,
            external_size=row.external_size,
            signed_record=row.signed_record,
            signature_valid=valid,
        )


def _normalised(note: str) -> str:
    text = note.replace("\r\n", "\n")
    return text if text.endswith("\n") else text + "\n"
