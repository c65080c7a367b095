"""The README works as written: its `sh` blocks run, in order, against a demo instance.

A block whose first line is `# not run by tests/test_readme.py: <why>` is skipped (the
two commands themselves, which this suite is part of). Each block runs in bash with
`set -euo pipefail`, from a folder laid out like a fresh checkout after `make run`
(var/demo served on a port the OS hands out), so a command that fails, a file a block
names but an earlier one did not write, or an option that does not exist fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.live import ROOT, free_port

SKIP = "# not run by tests/test_readme.py"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_blocks() -> list[str]:
    blocks = BLOCK.findall((ROOT / "README.md").read_text())
    return [b for b in blocks if not b.startswith(SKIP)]


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A checkout-like folder whose var/demo is a serving demo instance."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "policies").symlink_to(ROOT / "policies")
    port = free_port()
    env = {**os.environ, "KETENPOORT_POLICY": str(ROOT / "policies" / "twente.yaml")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--port", str(port), "--dir", "var/demo"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        summary = []
        for line in process.stdout:
            summary.append(line)
            if "Ctrl-C stops" in line:
                break
        assert process.poll() is None, "".join(summary)
        assert "source var/demo/env" in "".join(summary).replace(str(folder) + "/", "")
        yield folder
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_readme_has_runnable_blocks() -> None:
    assert len(readme_blocks()) >= 5


def test_every_sh_block_runs_as_written(demo_folder: Path) -> None:
    for number, block in enumerate(readme_blocks(), 1):
        script = f"set -euo pipefail\nsource var/demo/env\n{block}"
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=demo_folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (
            f"README sh block {number} failed:\n{block}\n--- stdout\n{done.stdout[-3000:]}"
            f"\n--- stderr\n{done.stderr[-3000:]}"
        )


def test_skipped_blocks_say_why() -> None:
    for block in BLOCK.findall((ROOT / "README.md").read_text()):
        if block.startswith(SKIP):
            assert block.startswith(SKIP + ": ") and len(block.split("\n")[0]) > len(SKIP) + 5
