"""Runs the `pyrnn` command under test in a subprocess, as a user would.

The child imports the same pyrnn as the tests (installed or built in the tree) and never runs with
the repository root as its working directory: `python -m` puts the working directory first on
sys.path, where the source folder pyrnn/ (without the compiled module) would shadow an install."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyrnn

ROOT = str(Path(pyrnn.__file__).resolve().parent.parent)


def pyrnn_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def run_pyrnn(*args: str, stdin: str = "", cwd: str | os.PathLike[str] | None = None, timeout: float = 300,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyrnn.cli", *args], input=stdin, capture_output=True, text=True,
                          encoding="utf-8", errors="replace", cwd=cwd or tempfile.mkdtemp(prefix="pyrnn-cwd-"),
                          env=env or pyrnn_env(PYTHONIOENCODING="utf-8"), timeout=timeout)


def start_pyrnn(*args: str, cwd: str | os.PathLike[str] | None = None, **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pyrnn.cli", *args], env=pyrnn_env(),
                            cwd=cwd or tempfile.mkdtemp(prefix="pyrnn-cwd-"), **kw)
