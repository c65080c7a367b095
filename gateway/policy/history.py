"""The agreement for people: its versions, who activated them, and what changed.

Every version that was once active is kept in `policy_versions` (canonical JSON); the
`policy.activated` audit entries say when and by whom. A diff compares two stored
documents line by line, pretty-printed as YAML (keys sorted, as in the canonical form),
so that a privacy officer sees the changed thresholds, rules and texts.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit.models import AuditEntryRow
from gateway.policy.audited import record_decision
from gateway.policy.engine import PolicyEngine, Resource
from gateway.policy.models import PolicyVersionRow

DIGEST = re.compile(r"^[0-9a-f]{64}$")
LineKind = Literal["context", "added", "removed", "hunk"]


@dataclass(frozen=True)
class Activation:
    at: datetime
    by: str


@dataclass(frozen=True)
class Version:
    digest: str
    policy_id: str
    version: str
    first_activated_at: datetime
    activated_at: datetime
    active: bool
    activations: tuple[Activation, ...]


@dataclass(frozen=True)
class DiffLine:
    kind: LineKind
    old: int | None
    new: int | None
    text: str


@dataclass(frozen=True)
class Diff:
    old: Version
    new: Version
    lines: tuple[DiffLine, ...]

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind == "added")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.kind == "removed")


@dataclass(frozen=True)
class PolicyOverview:
    versions: tuple[Version, ...]
    diff: Diff | None


class UnknownVersion(LookupError):
    """No stored policy version has this digest."""


def readable(document: str) -> list[str]:
    """A stored canonical document as YAML lines (keys sorted, texts unwrapped)."""
    data = json.loads(document)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=True, width=100_000)
    return text.splitlines()


def diff_lines(old: list[str], new: list[str], context: int = 3) -> Iterator[DiffLine]:
    """`difflib.unified_diff`, with the line numbers of both sides."""
    o = n = 0
    for line in difflib.unified_diff(old, new, lineterm="", n=context):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            found = re.match(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@", line)
            assert found is not None
            o, n = int(found.group(1)), int(found.group(2))
            yield DiffLine("hunk", None, None, line)
        elif line.startswith("-"):
            yield DiffLine("removed", o, None, line[1:])
            o += 1
        elif line.startswith("+"):
            yield DiffLine("added", None, n, line[1:])
            n += 1
        else:
            yield DiffLine("context", o, n, line[1:])
            o += 1
            n += 1


@dataclass
class PolicyHistoryService:
    engine: PolicyEngine

    def overview(
        self, session: Session, actor: Actor, old: str | None = None, new: str | None = None
    ) -> PolicyOverview:
        """The version history and, given two digests, their diff; audited as `policy.read`.
        Raises `UnknownVersion` for a digest no version has."""
        resource = Resource(type="policy", id=self.engine.loaded.policy.id)
        decision = self.engine.decide(actor, "policy.read", resource)
        if not decision.allowed:  # the page checked already; fail closed all the same
            raise PermissionError(decision.rule)
        rows = list(
            session.execute(
                select(PolicyVersionRow).order_by(PolicyVersionRow.activated_at.desc())
            ).scalars()
        )
        activations = self._activations(session)
        active = self.engine.loaded.digest
        versions = tuple(
            Version(
                digest=r.digest,
                policy_id=r.policy_id,
                version=r.version,
                first_activated_at=r.first_activated_at,
                activated_at=r.activated_at,
                active=r.digest == active,
                activations=tuple(activations.get(r.digest, ())),
            )
            for r in rows
        )
        diff = None
        if old and new:
            by_digest = {r.digest: r for r in rows}
            if old not in by_digest or new not in by_digest:
                raise UnknownVersion(old if old not in by_digest else new)
            lines = diff_lines(readable(by_digest[old].document), readable(by_digest[new].document))
            version = {v.digest: v for v in versions}
            diff = Diff(version[old], version[new], tuple(lines))
        record_decision(
            session, actor, decision, resource, detail={"diff": [old, new]} if diff else {}
        )
        return PolicyOverview(versions, diff)

    @staticmethod
    def _activations(session: Session) -> dict[str, list[Activation]]:
        found: dict[str, list[Activation]] = {}
        rows = session.execute(
            select(AuditEntryRow.data, AuditEntryRow.created_at)
            .where(AuditEntryRow.action == "policy.activated")
            .order_by(AuditEntryRow.id)
        )
        for data, created in rows:
            entry = json.loads(data)
            digest = (entry.get("policy") or {}).get("digest")
            if isinstance(digest, str):
                by = str((entry.get("actor") or {}).get("id", ""))
                found.setdefault(digest, []).append(Activation(created, by))
        return found
