"""Private folders and files, whatever the process umask (security finding 9).

`mkdir(mode=…)` and `open(…, mode)` are masked by the umask, which can only narrow
them; we still set the mode explicitly afterwards, so a umask of 000 or 022 never
leaves a key or database world-readable. Standard library only: the key store and the
database both use it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE = stat.S_IRUSR | stat.S_IWUSR  # 0600
PRIVATE_DIR = stat.S_IRWXU  # 0700


def make_private_dir(path: Path, *, narrow_existing: bool = False) -> None:
    """Create `path` 0700. An existing folder is left alone unless `narrow_existing`
    (then it is narrowed to 0700 when this process owns it: a folder only we use)."""
    if path.is_dir():
        if narrow_existing:
            info = path.stat()
            if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
                os.chmod(path, PRIVATE_DIR)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        return
    os.chmod(path, PRIVATE_DIR)


def ensure_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if missing; narrow it to 0600 if wider."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def narrow_if_present(path: Path) -> None:
    """Narrow an existing file to 0600; a missing one is fine."""
    try:
        if stat.S_IMODE(path.stat().st_mode) != PRIVATE_FILE:
            os.chmod(path, PRIVATE_FILE)
    except FileNotFoundError:
        return
