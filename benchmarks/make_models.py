"""Real-shape models with random weights for the speed tables (speed does not depend on the values).

    python benchmarks/make_models.py OUT_DIR                       # the three CPU-table models, F16/Q8_0/Q4_0
    python benchmarks/make_models.py OUT_DIR --only rwkv7-0.1b mamba-130m --types f16 q8_0

Shapes: RWKV-7 0.1B (C=768, 12 layers, vocab 65536, LoRA 64/64/32/128), Mamba 130M (d 768, 24
layers, vocab 50280, d_state 16, tied embeddings), RWKV-4 169M (C=768, 12 layers, vocab 50277);
with --only, also RWKV-7 0.4B (C=1024, 24 layers) for the CUDA table.
Converted by pyrnn's own converter from numpy checkpoints in the published layouts (tests/tiny_models.py):
numpy only, no torch, so it also runs on a bare GPU machine (tools/gpu_check.sh).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from tiny_models import mamba_state_dict, rwkv4_state_dict, rwkv7_state_dict  # noqa: E402

from pyrnn.converters.convert import convert_tensors  # noqa: E402
from pyrnn.quantize import quantize_file  # noqa: E402

TYPES = ("f16", "q8_0", "q4_0")
MODELS: dict[str, Callable[[], dict[str, np.ndarray]]] = {
    "rwkv7-0.1b": lambda: rwkv7_state_dict(768, 12, 65536, (64, 64, 32, 128), seed=1),
    "mamba-130m": lambda: mamba_state_dict(768, 24, 50280, seed=0),
    "rwkv4-169m": lambda: rwkv4_state_dict(768, 12, 50277, seed=1),
    # the official x070 LoRA ranks for C=1024 (decay 64, a 64, v 32, gate 160); for the CUDA table only
    "rwkv7-0.4b": lambda: rwkv7_state_dict(1024, 24, 65536, (64, 64, 32, 160), seed=2),
}
DEFAULT = ["rwkv7-0.1b", "mamba-130m", "rwkv4-169m"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", default="/tmp/pyrnn-bench", type=Path)
    p.add_argument("--only", nargs="+", choices=list(MODELS), default=DEFAULT)
    p.add_argument("--types", nargs="+", choices=TYPES, default=list(TYPES))
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for name in a.only:
        f16 = a.out / f"{name}-f16.gguf"  # the others are quantized from it, as a user would
        convert_tensors(MODELS[name](), None, f16, "f16")
        print("wrote", f16, flush=True)
        for t in a.types:
            if t != "f16":
                quantize_file(f16, a.out / f"{name}-{t}.gguf", t)
                print("wrote", a.out / f"{name}-{t}.gguf", flush=True)
        if "f16" not in a.types:
            f16.unlink()


if __name__ == "__main__":
    main()
