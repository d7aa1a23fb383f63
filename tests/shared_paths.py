"""Where the project's shared material (../shared: fixtures, data) is, seen from the tests.

CI lays shared/ beside the checkout; a git worktree sits one level deeper, so look upwards."""

from __future__ import annotations

from pathlib import Path

SHARED = next((p / "shared" for p in Path(__file__).resolve().parents[1:] if (p / "shared" / "fixtures").is_dir()),
              Path(__file__).resolve().parents[2] / "shared")


def interop(name: str) -> Path:
    """shared/fixtures/interop/<name>: tiny llama.cpp-made GGUF files with official logits."""
    return SHARED / "fixtures" / "interop" / name
