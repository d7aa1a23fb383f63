"""examples/*.py run as written (as subprocesses) against a tiny converted model and exit 0 with output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_bpe import tiny_rwkv7_bpe_gguf

import pyrnn

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_rwkv7_bpe_gguf(tmp_path_factory.mktemp("examples"))


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(pyrnn.__file__).resolve().parent.parent))  # this tree's pyrnn
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          encoding="utf-8", errors="replace", env=env, timeout=300)


@pytest.mark.parametrize("name,expect", [
    ("generate.py", "Once upon a time"),
    ("chat_session.py", "Assistant:"),
    ("save_state.py", "continues exactly"),
])
def test_example_runs(model_path: Path, name: str, expect: str) -> None:
    """The example exits 0 and prints what it promises."""
    r = run_example(name, str(model_path))
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout


def test_save_state_writes_the_given_file(model_path: Path, tmp_path: Path) -> None:
    """save_state.py saves where it is told, and the file loads as a state of that model."""
    target = tmp_path / "sys.state"
    r = run_example("save_state.py", str(model_path), str(target))
    assert r.returncode == 0, r.stderr
    model = pyrnn.load(model_path)
    assert pyrnn.State.load(model, target).data.shape == (model.state_size,)
