"""`AuditService`: the one way to read, prove, search, export and verify the audit log.

The API's views, the privacy officer's web pages and the CLI call these methods; none
of them repeats the access rules or the auditing. Every method takes the actor, asks
the policy at most once, does the work and writes its own audit entry — the read of
the log is itself an entry, with the decision that allowed it — in a short transaction
of its own before the result is handed out, so a read that could not be logged is not
served. A refusal (scope, policy, input) is an entry too, with outcome `denied`.

Access, decided here and nowhere else:
- checkpoint, verifier key and proofs are open to every authenticated actor (the
  contract: partners act as witnesses); no policy rule is involved, so none is asked;
- entries and searches need the policy's `audit.read`; a client also needs a scope,
  `audit:read` or `signals:read` (see ENTRY_SCOPES); the rule that allowed says how much
  the actor sees: a rule limited to the actor's own organisation shows its own entries;
- exports need `audit.export` from the policy and, for a client, the `audit:read` scope;
- verification reads the whole log, so it needs an `audit.read` rule over the whole log.

The policy is reached through `Decide`, a callable the composition root builds (see
`gateway/policy/audit_access.py`), so this package does not import the policy package
(which itself writes audit entries).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import func, select

from gateway.actors import Actor
from gateway.api.paging import MAX_KEY, decode_cursor, encode_cursor
from gateway.audit import export as formats
from gateway.audit import rfc9162
from gateway.audit.entries import AuditEvent, Outcome, SubjectRef
from gateway.audit.errors import LeafNotFound, LeafNotSequenced, TreeSizeBeyondCheckpoint
from gateway.audit.models import AuditCheckpointRow, AuditEntryRow
from gateway.audit.note import KeyLink, NoteError, VerifierKey, open_checkpoint, origin_for
from gateway.audit.queries import EntryFilter, StoredEntry, page, stream, visible_entries
from gateway.audit.sequencer import (
    CheckpointSigner,
    has_pending,
    sequence_pending,
    signer_from,
    verifier_keys,
)
from gateway.audit.service import record_event
from gateway.audit.tree import latest_checkpoint, stored_consistency_proof, stored_inclusion_proof
from gateway.audit.verify import Report, verify_log
from gateway.audit.verify_rows import database_source
from gateway.crypto import ed25519
from gateway.db import Database
from gateway.errors import (
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PolicyDenied,
    ProblemError,
    is_audited,
    mark_audited,
)
from gateway.keys import KeyPurpose, KeyStore

READ: Final = "audit.read"
EXPORT: Final = "audit.export"
#: A client lists or searches entries with either scope. `audit:read` is the meldpunt's
#: privacy-officer system (the whole log, by policy); `signals:read` is in every
#: partner's default scopes: a partner's own entries record what it did with its
#: signals, so the scope that reads its signals reads their trail, and partners keep
#: checking their own trail without a new client. A token narrowed to anything else
#: (`directory:read`, `notifications:read`) reads no entries.
ENTRY_SCOPES: Final = ("audit:read", "signals:read")
#: An export is a bulk copy of the log: only the `audit:read` systems, and only where
#: the policy gives `audit.export` (the privacy officer and the meldpunt's system).
EXPORT_SCOPES: Final = ("audit:read",)
#: Verifying reads every entry: the `audit:read` systems only.
VERIFY_SCOPES: Final = ("audit:read",)
MAX_LIMIT: Final = 1000
CATCH_UP_BATCHES: Final = 16
Format = Literal["jsonl", "csv", "ldv"]
_B64_HASH = re.compile(r"^[A-Za-z0-9+/]{43}$")


@dataclass(frozen=True)
class Grant:
    """The policy's answer for one audit action, as this package needs it."""

    allowed: bool
    rule: str
    reason: str
    #: True when the allowing rule covers the whole log; False: the actor's organisation only.
    whole_log: bool
    #: Rule, digest, purpose and processing activity for the audit entry.
    audit_fields: Mapping[str, Any] = field(default_factory=dict)


#: `decide(actor, action)` → the policy's grant for `audit.read` or `audit.export`.
Decide = Callable[[Actor, str], Grant]


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    hashes: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    hashes: list[bytes]


@dataclass(frozen=True)
class EntryPage:
    entries: list[StoredEntry]
    #: The cursor of the next page; None on the last page.
    next: str | None


@dataclass(frozen=True)
class ProvenEntry:
    entry: StoredEntry
    proof: InclusionProof
    #: None when the proof leads to the signed root of the latest checkpoint; else why not.
    problem: str | None

    @property
    def verified(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Export:
    format: Format
    tree_size: int
    media_type: str
    filename: str
    #: The export's text, produced as it is read, in a database session of its own that
    #: stays open until the generator is exhausted or closed: a caller that stops early
    #: calls `lines.close()` (Flask's `stream_with_context` does so when the response
    #: closes).
    lines: Generator[str, None, None]


class AuditService:
    """Reads of the audit log, each decided and audited; see the module docstring."""

    def __init__(
        self,
        db: Database,
        keys: KeyStore,
        issuer: str,
        decide: Decide,
        *,
        catch_up_batches: int = CATCH_UP_BATCHES,
    ) -> None:
        self.db = db
        self.keys = keys
        self.issuer = issuer
        self.decide = decide
        self.catch_up_batches = catch_up_batches

    # -- witness reads: open to every authenticated actor --------------------------------

    def verifier_key(self) -> VerifierKey:
        """The active checkpoint key (public; not a read of the log, so not audited)."""
        record = self.keys.active(KeyPurpose.AUDIT_CHECKPOINT)
        assert record.public_jwk is not None
        return VerifierKey(origin_for(self.issuer), ed25519.public_key_bytes(record.public_jwk))

    def key_chain(self) -> list[KeyLink]:
        """Every checkpoint key, oldest first, each with the first checkpoint it signed
        (co-signed by the key before it): what a witness that pinned an older key needs
        to follow a rotation. Public material, like the key, so not audited."""
        origin = origin_for(self.issuer)
        records = [
            r for r in self.keys.records(KeyPurpose.AUDIT_CHECKPOINT) if r.public_jwk is not None
        ]
        with self.db.session() as session:
            firsts = dict(
                session.execute(
                    select(AuditCheckpointRow.key_id, func.min(AuditCheckpointRow.id)).group_by(
                        AuditCheckpointRow.key_id
                    )
                ).all()
            )
            wanted = [firsts[r.kid] for r in records if r.kid in firsts]
            notes = dict(
                session.execute(
                    select(AuditCheckpointRow.key_id, AuditCheckpointRow.note).where(
                        AuditCheckpointRow.id.in_(wanted)
                    )
                ).all()
            )
        return [
            KeyLink(
                VerifierKey(origin, ed25519.public_key_bytes(r.public_jwk or {})),
                notes.get(r.kid),
            )
            for r in records
        ]

    def checkpoint(self, actor: Actor) -> str:
        """The latest signed checkpoint (an empty log's is signed on demand)."""
        with self._audited(actor, READ, "audit-checkpoint"):
            self.catch_up()
            with self.db.session() as session:
                latest = latest_checkpoint(session)
                note = latest.note if latest is not None else None
                size = latest.size if latest is not None else 0
            if note is None:
                note = self._signer().sign(0, rfc9162.EMPTY_ROOT)
            self._record(actor, READ, "audit-checkpoint", "success", {"treeSize": size})
            return note

    def inclusion_proof(
        self,
        actor: Actor,
        *,
        index: int | None = None,
        leaf_hash: str | None = None,
        tree_size: int | None = None,
    ) -> InclusionProof:
        """The RFC 9162 inclusion proof of one entry, by index or by a receipt's leaf hash
        (base64 or base64url), in the tree of `tree_size` (default: the latest checkpoint)."""
        with self._audited(actor, READ, "audit-proof"):
            if (index is None) == (leaf_hash is None):
                raise InvalidInput(
                    "Give exactly one of index and leafHash.",
                    errors=[FieldError("/index", "Give index or leafHash, not both", "index")],
                )
            _bounded("index", index, 0)
            _bounded("treeSize", tree_size, 1)
            digest = _leaf_hash(leaf_hash) if leaf_hash is not None else None
            self.catch_up()
            with self.db.session() as session:
                checkpoint = _checkpoint_size(session)
                size = tree_size if tree_size is not None else checkpoint
                if size > checkpoint:
                    raise _beyond("treeSize", size, checkpoint)
                if digest is not None:
                    index = _sequenced_index(session, digest, size, checkpoint)
                assert index is not None
                if size == 0 or index >= size:
                    raise InvalidInput(
                        f"Index {index} is not in a tree of {size} entries.",
                        errors=[FieldError("/index", f"Must be below treeSize ({size})", "index")],
                    )
                hashes = stored_inclusion_proof(session, index, size)
            self._record(actor, READ, "audit-proof", "success", {"index": index, "treeSize": size})
            return InclusionProof(index, size, hashes)

    def consistency_proof(self, actor: Actor, first: int, second: int) -> ConsistencyProof:
        """The RFC 9162 consistency proof between tree sizes `first` ≤ `second`."""
        with self._audited(actor, READ, "audit-proof"):
            _bounded("first", first, 1)
            _bounded("second", second, 1)
            if first > second:
                raise InvalidInput(
                    "first must not be larger than second.",
                    errors=[FieldError("/first", "Must be at most second", "first")],
                )
            self.catch_up()
            with self.db.session() as session:
                checkpoint = _checkpoint_size(session)
                if second > checkpoint:
                    raise _beyond("second", second, checkpoint)
                hashes = stored_consistency_proof(session, first, second)
            detail = {"first": first, "second": second}
            self._record(actor, READ, "audit-proof", "success", detail)
            return ConsistencyProof(first, second, hashes)

    # -- entries, search and export: scope and policy --------------------------------------

    def entries(
        self,
        actor: Actor,
        where: EntryFilter,
        *,
        start: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> EntryPage:
        """Sequenced entries in index order from `start` (or a page's `cursor`), as many
        as the policy lets `actor` see and `where` picks; `where.subject` searches by a
        subject reference, which the read's own entry then carries as its subject."""
        with self._audited(actor, READ, "audit-entries"):
            grant = self._grant(actor, READ, "audit-entries", ENTRY_SCOPES)
            if cursor is not None and start is not None:
                raise InvalidInput(
                    "Give start or cursor, not both.",
                    errors=[FieldError("/cursor", "Not together with start", "cursor")],
                )
            _bounded("start", start, 0)
            if not 1 <= limit <= MAX_LIMIT:
                raise InvalidInput(
                    f"limit must be 1 to {MAX_LIMIT}.",
                    errors=[FieldError("/limit", f"Must be 1 to {MAX_LIMIT}", "limit")],
                )
            first = decode_cursor(cursor) if cursor is not None else (start or 0)
            self.catch_up()
            stmt = visible_entries(
                where, first, organisation=actor.organisation, whole_log=grant.whole_log
            )
            with self.db.session() as session:
                found = page(session, stmt, limit + 1)
            more = len(found) > limit
            found = found[:limit]
            detail: dict[str, Any] = {
                "filters": where.describe(),
                "start": first,
                "count": len(found),
                **({"first": found[0].index, "last": found[-1].index} if found else {}),
            }
            subjects = (
                (SubjectRef(where.subject, "audit-subject-reference"),) if where.subject else ()
            )
            self._record(actor, READ, "audit-entries", "success", detail, grant, subjects)
            last = found[-1].index if found else None
            following = last + 1 if more and last is not None and last < MAX_KEY else None
            return EntryPage(found, encode_cursor(following) if following is not None else None)

    def search(
        self,
        actor: Actor,
        where: EntryFilter,
        *,
        start: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> EntryPage:
        """`entries`, for a search whose filter may name a subject (a body, never a URI)."""
        return self.entries(actor, where, start=start, cursor=cursor, limit=limit)

    def timeline(
        self, actor: Actor, where: EntryFilter, *, before: str | None = None, limit: int = 50
    ) -> EntryPage:
        """`entries`, newest first: keyset paging down the index (`before` is the cursor of
        the page, the index just above its first entry), for the privacy officer's page."""
        with self._audited(actor, READ, "audit-entries"):
            grant = self._grant(actor, READ, "audit-entries", ENTRY_SCOPES)
            if not 1 <= limit <= MAX_LIMIT:
                raise InvalidInput(
                    f"limit must be 1 to {MAX_LIMIT}.",
                    errors=[FieldError("/limit", f"Must be 1 to {MAX_LIMIT}", "limit")],
                )
            below = decode_cursor(before, parameter="before") if before is not None else None
            self.catch_up()
            stmt = visible_entries(
                where, organisation=actor.organisation, whole_log=grant.whole_log
            )
            stmt = stmt.order_by(None).order_by(AuditEntryRow.seq.desc())
            if below is not None:
                stmt = stmt.where(AuditEntryRow.seq < below)
            with self.db.session() as session:
                found = page(session, stmt, limit + 1)
            more = len(found) > limit
            found = found[:limit]
            detail: dict[str, Any] = {
                "filters": where.describe(),
                "order": "newest-first",
                "count": len(found),
                **({"first": found[0].index, "last": found[-1].index} if found else {}),
            }
            subjects = tuple(
                SubjectRef(ref, "audit-subject-reference")
                for ref in ((where.subject,) if where.subject else ()) + where.subjects
            )
            self._record(actor, READ, "audit-entries", "success", detail, grant, subjects)
            following = found[-1].index if more and found else None
            return EntryPage(found, encode_cursor(following) if following is not None else None)

    def entry(self, actor: Actor, index: int) -> ProvenEntry:
        """One sequenced entry with its inclusion proof in the latest checkpoint's tree,
        checked here against that checkpoint's signed root."""
        with self._audited(actor, READ, "audit-entry"):
            grant = self._grant(actor, READ, "audit-entry", ENTRY_SCOPES)
            _bounded("index", index, 0)
            self.catch_up()
            stmt = visible_entries(
                EntryFilter(), index, organisation=actor.organisation, whole_log=grant.whole_log
            ).where(AuditEntryRow.seq == index)
            with self.db.session() as session:
                found = page(session, stmt, 1)
                latest = latest_checkpoint(session)
                if not found:
                    raise NotFound(f"There is no entry {index} you may see.")
                stored = found[0]
                size = latest.size if latest is not None else 0
                note = latest.note if latest is not None else None
                hashes = stored_inclusion_proof(session, index, size) if index < size else []
            problem = _proof_problem(
                stored, size, note, hashes, verifier_keys(self.keys, self.issuer), self.issuer
            )
            self._record(
                actor,
                READ,
                "audit-entry",
                "success",
                {"index": index, "treeSize": size, "proofVerified": problem is None},
                grant,
            )
            return ProvenEntry(stored, InclusionProof(index, size, hashes), problem)

    def export(self, actor: Actor, where: EntryFilter, format: Format) -> Export:
        """The entries up to the latest checkpoint that `actor` may see, as JSON Lines, CSV
        or LDV records; the export's entry is written before the first line is made."""
        with self._audited(actor, EXPORT, "audit-export"):
            grant = self._grant(actor, EXPORT, "audit-export", EXPORT_SCOPES)
            if format not in formats.FORMATS:
                raise InvalidInput(
                    "format must be jsonl, csv or ldv.",
                    errors=[FieldError("/format", "Unknown format", "format")],
                )
            self.catch_up()
            with self.db.session() as session:
                size = _checkpoint_size(session)
            detail = {"format": format, "filters": where.describe(), "treeSize": size}
            self._record(actor, EXPORT, "audit-export", "success", detail, grant)
            stmt = visible_entries(
                where, organisation=actor.organisation, whole_log=grant.whole_log
            ).where(AuditEntryRow.seq < size)
            extension = "csv" if format == "csv" else "jsonl"
            return Export(
                format=format,
                tree_size=size,
                media_type=formats.MEDIA_TYPES[format],
                filename=f"audit-{format}-{size}.{extension}",
                lines=self._lines(stmt, format),
            )

    def verify(
        self,
        actor: Actor,
        *,
        witnessed: tuple[str, ...] = (),
        progress: Callable[[int], None] | None = None,
    ) -> Report:
        """Verify every entry and checkpoint from the database rows with the public keys
        alone (`gateway.audit.verify`), as the privacy officer's check of the log."""
        with self._audited(actor, READ, "audit-verification"):
            grant = self._grant(actor, READ, "audit-verification", VERIFY_SCOPES)
            if not grant.whole_log:
                denial = PolicyDenied(
                    f"verifying the log reads all of it; rule {grant.rule} allows your "
                    "organisation's entries only.",
                    rule=grant.rule,
                )
                self._record(
                    actor,
                    READ,
                    "audit-verification",
                    "denied",
                    {"reason": "whole log required"},
                    grant,
                )
                raise mark_audited(denial)
            keys = verifier_keys(self.keys, self.issuer)
            entries, notes, close = database_source(self.db.url)
            try:
                report = verify_log(
                    entries,
                    notes,
                    keys,
                    origin=origin_for(self.issuer),
                    witnessed=witnessed,
                    progress=progress,
                )
            finally:
                close()
            first = report.first_bad
            detail = {
                "entries": report.entries,
                "firstBadIndex": first.index if first else None,
                **({"witnessedCheckpoints": len(witnessed)} if witnessed else {}),
            }
            outcome: Outcome = "success" if report.ok else "error"
            self._record(actor, READ, "audit-verification", outcome, detail, grant)
            return report

    # -- plumbing ---------------------------------------------------------------------------

    def catch_up(self) -> None:
        """Sequence what is pending before reading, so a reader sees every entry committed
        before its request (read-your-writes). Cheap when nothing is pending; on
        PostgreSQL it skips when another process holds the sequencer lock."""
        if has_pending(self.db):
            sequence_pending(self.db, self._signer(), max_batches=self.catch_up_batches)

    def _signer(self) -> CheckpointSigner:
        return signer_from(self.keys, self.issuer)

    def _lines(self, stmt: Any, format: Format) -> Generator[str, None, None]:
        with self.db.session() as session:
            yield from formats.FORMATS[format](stream(session, stmt))

    def _grant(self, actor: Actor, action: str, resource: str, scopes: tuple[str, ...]) -> Grant:
        """The scope floor (clients), then the policy's one decision; a refusal is audited
        with the rule that refused and raised as a 403."""
        if actor.type == "client" and not actor.scopes.intersection(scopes):
            needed = " or ".join(scopes)
            self._record(
                actor,
                action,
                resource,
                "denied",
                {"problem": Forbidden.slug, "requiredScopes": list(scopes)},
            )
            raise mark_audited(
                Forbidden(
                    f"This operation needs scope {needed}.",
                    headers={
                        "WWW-Authenticate": (
                            f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}"'
                        )
                    },
                )
            )
        grant = self.decide(actor, action)
        if not grant.allowed:
            self._record(actor, action, resource, "denied", {"reason": grant.reason}, grant)
            raise mark_audited(
                PolicyDenied(f"{grant.reason} (rule {grant.rule}).", rule=grant.rule)
            )
        return grant

    def _record(
        self,
        actor: Actor,
        action: str,
        resource: str,
        outcome: Outcome,
        detail: dict[str, Any],
        grant: Grant | None = None,
        subjects: tuple[SubjectRef, ...] = (),
    ) -> None:
        fields = dict(grant.audit_fields) if grant is not None else {}
        with self.db.transaction() as session:
            record_event(
                session,
                AuditEvent(
                    action=action,
                    outcome=outcome,
                    actor=actor,
                    resource_type=resource,
                    subjects=subjects,
                    detail=detail,
                    **fields,
                ),
            )

    @contextmanager
    def _audited(self, actor: Actor, action: str, resource: str) -> Iterator[None]:
        """Refusals the work raises (bad input, a tree size beyond the checkpoint) are
        audited under the action that was asked for; the successful path audits itself."""
        try:
            yield
        except ProblemError as exc:
            if not is_audited(exc):
                outcome: Outcome = "denied" if exc.status < 500 else "error"
                self._record(actor, action, resource, outcome, {"problem": exc.slug})
                mark_audited(exc)
            raise


# -- helpers ------------------------------------------------------------------------------


def _bounded(name: str, value: int | None, least: int) -> None:
    """Refuse an index or size no log can have (the API's models bound them too)."""
    if value is not None and not least <= value <= MAX_KEY:
        raise InvalidInput(
            f"{name} must be {least} to 2**63-1.",
            errors=[FieldError(f"/{name}", f"Must be {least} to 2**63-1", name)],
        )


def _proof_problem(
    stored: StoredEntry,
    size: int,
    note: str | None,
    hashes: list[bytes],
    keys: list[VerifierKey],
    issuer: str,
) -> str | None:
    """Why the entry's inclusion proof does not check out against the signed checkpoint."""
    if note is None or stored.index >= size:
        return "not yet in a checkpoint"
    try:
        checkpoint = open_checkpoint(note, keys, origin=origin_for(issuer))
        if checkpoint.size != size:
            return "the checkpoint row and its signed note disagree on the size"
        if rfc9162.leaf_hash(stored.data) != stored.leaf_hash:
            return "the entry's bytes do not give its recorded leaf hash"
        rfc9162.verify_inclusion(stored.index, size, stored.leaf_hash, hashes, checkpoint.root)
    except (NoteError, rfc9162.ProofError) as exc:
        return str(exc)
    return None


def _checkpoint_size(session: Any) -> int:
    latest = latest_checkpoint(session)
    return latest.size if latest is not None else 0


def _beyond(name: str, size: int, checkpoint: int) -> TreeSizeBeyondCheckpoint:
    return TreeSizeBeyondCheckpoint(
        f"{name} {size} is larger than the latest checkpoint ({checkpoint} entries).",
        errors=[FieldError(f"/{name}", f"At most {checkpoint}", name)],
    )


def _leaf_hash(value: str) -> bytes:
    """Base64 or base64url, padded or not; a `+` that arrived as a space is forgiven."""
    text = value.strip().replace(" ", "+").replace("-", "+").replace("_", "/").rstrip("=")
    if _B64_HASH.match(text):
        raw = base64.b64decode(text + "=")
        if len(raw) == rfc9162.HASH_SIZE:
            return raw
    raise InvalidInput(
        "leafHash must be a base64 SHA-256 hash (32 bytes).",
        errors=[FieldError("/leafHash", "Not a base64 32-byte hash", "leafHash")],
    )


def _sequenced_index(session: Any, digest: bytes, size: int, checkpoint: int) -> int:
    found = session.execute(
        select(AuditEntryRow.id, AuditEntryRow.seq).where(AuditEntryRow.leaf_hash == digest)
    ).first()
    if found is None:
        raise LeafNotFound("No audit entry has this leaf hash.")
    if found.seq is None or found.seq >= checkpoint:
        raise LeafNotSequenced(
            "The entry has no index in a checkpoint yet; try again in a second.",
            headers={"Retry-After": "1"},
        )
    index = int(found.seq)
    if index >= size:  # numbered after the tree the caller asked about
        raise LeafNotSequenced(
            f"The entry is not in the tree of {size} entries; ask with a later "
            "checkpoint's treeSize.",
            headers={"Retry-After": "1"},
        )
    return index
