#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+.

    python3 run.py demo    # install into .venv, then run the whole job on the embedded defaults
    python3 run.py test    # install into .venv, then run the whole test suite

The virtual environment is created in .venv and reinstalled only when pyproject.toml
changes. Extra arguments after the command are passed on (to ``newsletter demo`` or
to pytest).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def ensure_environment() -> None:
    """Create .venv and install the package with its test tools when pyproject.toml changed."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not (BIN / "python").exists():
        print("Creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing newsletter and its dependencies into .venv …", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted + "\n")


def parallel(rest: list[str]) -> list[str]:
    """Two test processes (pytest-xdist), each test file kept in one, unless told otherwise.

    The tests wait on servers and subprocesses as much as they compute, so two processes
    finish the suite in about half the time even on two cores; ``-n 0`` runs it in one.
    """
    if any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) for arg in rest):
        return []
    return ["-n", "2", "--dist", "loadfile"]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__.strip())
        return 2
    ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        args = [str(BIN / "newsletter"), "demo", *rest]
    else:
        args = [str(BIN / "python"), "-m", "pytest", *parallel(rest), *rest]
    return subprocess.run(args, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
