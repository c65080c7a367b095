"""`../shared` (the contract, the ADR ruleset, the Merkle test vectors), found beside
the repository this file belongs to — whichever clone or worktree runs the tests.

`KETENPOORT_TEST_SHARED_DIR` points elsewhere (a CI job with its own copy). A missing
folder is an error that says where it was looked for: never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root: tests/shared_folder.py → tests → root.
REPOSITORY = Path(__file__).resolve().parents[1]
ENV = "KETENPOORT_TEST_SHARED_DIR"


class SharedFolderMissing(FileNotFoundError):
    """`../shared` is not where the tests look for it."""


def shared_path(*parts: str) -> Path:
    """A path inside `../shared`; raises `SharedFolderMissing` naming where it looked."""
    configured = os.environ.get(ENV)
    folder = Path(configured) if configured else (REPOSITORY / ".." / "shared").resolve()
    path = folder.joinpath(*parts)
    if not path.exists():
        raise SharedFolderMissing(
            f"{path} does not exist: the tests need the shared contract folder "
            f"{'from ' + ENV if configured else 'beside the repository, at ' + str(folder)}"
            f" (or set {ENV} to a copy of it)"
        )
    return path
