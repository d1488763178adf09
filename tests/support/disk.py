"""A small filesystem of the test's own, to run out of space on: a tmpfs with ``size=``.

Mounting needs root (or CAP_SYS_ADMIN); where that is impossible the test is skipped,
and fails under CI (``unavailable``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.services import unavailable


@contextmanager
def small_disk(folder: Path, size_kb: int) -> Iterator[Path]:
    """Mount a ``size_kb`` tmpfs on ``folder`` for the block; yield the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0777", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a small tmpfs: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def free_bytes(folder: Path) -> int:
    """Free space on the filesystem of ``folder``."""
    return shutil.disk_usage(folder).free


def fill(folder: Path, leave: int = 0, name: str = "filler") -> Path:
    """Write a file that takes all free space of ``folder``'s filesystem but ``leave`` bytes."""
    path = folder / name
    block = b"\0" * 65536
    with open(path, "ab", buffering=0) as handle:
        while (room := free_bytes(folder) - leave) > 0:
            try:
                handle.write(block[: min(len(block), room)])
            except OSError:  # ENOSPC: it is full
                break
    return path
