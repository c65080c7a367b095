"""`../shared` is found relative to the repository, and its absence is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_folder import ENV, REPOSITORY, SharedFolderMissing, shared_path


def test_found_beside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    ruleset = shared_path("adr", "linter-2.2.1.yaml")
    assert ruleset == (REPOSITORY.parent / "shared" / "adr" / "linter-2.2.1.yaml").resolve()
    assert (REPOSITORY / "gateway" / "__init__.py").exists()


def test_missing_is_an_error_naming_the_place(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SharedFolderMissing, match=str(tmp_path / "nowhere")):
        shared_path("vectors", "merkle")
