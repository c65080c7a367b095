"""What a partner client remembers between runs: receipts, the last checkpoint it saw,
the pinned log key and the notification cursor. One JSON file, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Receipt:
    leaf_hash: str  # base64, as the gateway returned it
    signal_id: str | None = None
    action: str | None = None
    index: int | None = None  # known once an inclusion proof was verified


@dataclass
class Checkpoint:
    origin: str
    size: int
    root: str  # base64
    note: str


@dataclass
class ClientState:
    receipts: list[Receipt] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    log_key: str | None = None  # the signed-note verifier key, pinned on first use
    notifications_cursor: str | None = None

    @classmethod
    def load(cls, path: Path | None) -> ClientState:
        if path is None or not path.exists():
            return cls()
        data: dict[str, Any] = json.loads(path.read_text())
        checkpoint = data.get("checkpoint")
        return cls(
            receipts=[Receipt(**r) for r in data.get("receipts", [])],
            checkpoint=Checkpoint(**checkpoint) if checkpoint else None,
            log_key=data.get("log_key"),
            notifications_cursor=data.get("notifications_cursor"),
        )

    def save(self, path: Path | None) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state-")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(asdict(self), handle, indent=2)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
