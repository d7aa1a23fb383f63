"""The command line: info, convert, quantize and bench run end to end; user mistakes give one line
on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from run_pyrnn import run_pyrnn
from tiny_models import rwkv7_state_dict, save_safetensors


def pyrnn_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_pyrnn(*args, cwd=cwd)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    return save_safetensors(rwkv7_state_dict(128, 2, 300, (32, 32, 32, 32), seed=3), d / "tiny.safetensors")


def test_convert_info_quantize_bench(checkpoint: Path, tmp_path: Path) -> None:
    """convert → info → quantize → bench, each exiting 0 with the expected output."""
    out = tmp_path / "m.gguf"
    r = pyrnn_cmd("convert", str(checkpoint), "-o", str(out), "--type", "f16", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stderr and "100.0%" in r.stderr  # the progress bar reached the end
    r = pyrnn_cmd("info", str(out), cwd=tmp_path)
    assert r.returncode == 0 and "architecture:  rwkv7" in r.stdout and "block_count" in r.stdout
    r = pyrnn_cmd("quantize", str(out), str(tmp_path / "q4.gguf"), "--type", "q4_0", "-q", cwd=tmp_path)
    assert r.returncode == 0 and "re-stored as q4_0" in r.stderr
    assert "q4_0" in pyrnn_cmd("info", str(tmp_path / "q4.gguf"), cwd=tmp_path).stdout
    r = pyrnn_cmd("bench", str(tmp_path / "q4.gguf"), "--threads", "1", "--repeats", "1", "--decode-tokens", "4",
                  "--prompt-tokens", "16", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "% of limit" in r.stdout and "prefill tok/s" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["info", "missing.gguf"], "No such file"),
    (["info", "notgguf.gguf"], "not a valid GGUF file"),
    (["convert", "missing.pth", "-o", "x.gguf"], "no such file"),
    (["convert", "notgguf.gguf", "-o", "x.gguf"], "expected"),
    (["quantize", "notgguf.gguf", "y.gguf", "--type", "q8_0"], "not a valid GGUF file"),
    (["bench", "missing.gguf"], "No such file"),
    (["bench", "notgguf.gguf", "--threads", "0"], "--threads"),
])
def test_user_mistakes(tmp_path: Path, args: list[str], message: str) -> None:
    """Missing or wrong files and bad flags: one clear line on stderr, exit 1, no traceback, no output file."""
    (tmp_path / "notgguf.gguf").write_bytes(b"hello, not a model")
    r = pyrnn_cmd(*args, cwd=tmp_path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "y.gguf").exists()
