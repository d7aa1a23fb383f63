"""A converter killed at any point leaves no half-written output: the target is either absent or the
previous complete file, because writers fill a temporary file and rename it only when complete."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from run_pyrnn import start_pyrnn
from tiny_models import rwkv7_state_dict, save_safetensors

import pyrnn


def start_convert(src: Path, dst: Path) -> subprocess.Popen[bytes]:
    return start_pyrnn("convert", str(src), "-o", str(dst), "--type", "q4_0", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Large enough (C=512, 6 layers, V=20000: ~170 MB of f32) that conversion takes a while."""
    d = tmp_path_factory.mktemp("big")
    return save_safetensors(rwkv7_state_dict(512, 6, 20000, (32, 32, 32, 32), seed=1), d / "big.safetensors")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_killed_convert_leaves_no_output(big_checkpoint: Path, tmp_path: Path, sig: int) -> None:
    """Killed at several moments, `pyrnn convert` never leaves a partial target; SIGTERM/SIGINT also
    remove the temporary file (SIGKILL cannot be caught: its temporary `.*.partial` may remain)."""
    dst = tmp_path / "out.gguf"
    assert start_convert(big_checkpoint, dst).wait(timeout=600) == 0  # the setup works: a whole run succeeds
    pyrnn.load(dst)
    dst.unlink()
    for delay in (0.5, 1.5, 3.0):
        p = start_convert(big_checkpoint, dst)
        time.sleep(delay)
        p.send_signal(sig)
        p.wait(timeout=120)
        if dst.exists():  # finished before the signal: then it must be complete
            pyrnn.load(dst)
            dst.unlink()
        leftovers = [f.name for f in tmp_path.iterdir()]
        if sig != signal.SIGKILL:
            assert leftovers == [], leftovers
        for f in tmp_path.iterdir():
            f.unlink()


def test_killed_overwrite_keeps_previous_file(big_checkpoint: Path, tmp_path: Path) -> None:
    """Overwriting an existing model and killing the writer leaves the old model intact and loadable."""
    dst = tmp_path / "out.gguf"
    p = start_convert(big_checkpoint, dst)
    assert p.wait(timeout=600) == 0
    before = dst.read_bytes()
    p = start_convert(big_checkpoint, dst)
    time.sleep(1.0)
    p.kill()
    p.wait(timeout=60)
    assert dst.read_bytes() == before
    pyrnn.load(dst)


def test_outputs_get_the_usual_file_mode(tmp_path: Path) -> None:
    """Written models and states get the mode any new file gets (0666 less the umask), not mkstemp's 0600."""
    from tiny_models import tiny_rwkv7_gguf

    old = os.umask(0o022)
    try:
        path = tiny_rwkv7_gguf(tmp_path)
        m = pyrnn.load(path)
        m.new_state().save(tmp_path / "s.state")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "s.state").stat().st_mode & 0o777 == 0o644
