"""Decode and prefill speed on a CUDA device against the CPU, for one model file (a GPU run is owed:
docs/CUDA.md). Needs a -DPYRNN_CUDA=ON build of pyrnn._core in the imported pyrnn.

    python benchmarks/cuda_bench.py MODEL.gguf [--prompt-tokens 512] [--decode-tokens 128] [--repeats 5]

Prints tok/s (medians) for cpu and cuda, and cuda with the decode graph off (PYRNN_CUDA_GRAPH=0),
with the ratios; also the max |Δlogit| / max |logit| of the GPU's prefill logits against the CPU's.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import pyrnn
from pyrnn.bench import speeds


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--decode-tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cpu-threads", type=int, default=0, help="0: the default (physical cores)")
    a = p.parse_args()

    cpu = pyrnn.load(a.model, threads=a.cpu_threads or None)
    gpu = pyrnn.load(a.model, device="cuda")
    os.environ["PYRNN_CUDA_GRAPH"] = "0"
    gpu_plain = pyrnn.load(a.model, device="cuda")
    del os.environ["PYRNN_CUDA_GRAPH"]

    tokens = np.random.default_rng(0).integers(1, cpu.n_vocab, 256).tolist()
    err = np.abs(gpu.forward(tokens, all_logits=True) - (ref := cpu.forward(tokens, all_logits=True))).max()
    print(f"model {a.model} ({cpu.arch}, {cpu.n_layer} layers, C={cpu.n_embd}); device {gpu._core.device_name}")
    print(f"prefill logits, 256 tokens: max|Δ|/max|ref| = {err / np.abs(ref).max():.2e}")
    rows = {}
    for name, m in [("cpu", cpu), ("cuda", gpu), ("cuda, no graph", gpu_plain)]:
        rows[name] = speeds(m, a.decode_tokens, a.prompt_tokens, a.repeats)
    base_d, base_p = rows["cpu"]
    print(f"{'':16} {'decode tok/s':>13} {'x cpu':>7} {'prefill tok/s':>14} {'x cpu':>7}")
    for name, (d, pf) in rows.items():
        print(f"{name:16} {d:13.1f} {d / base_d:7.2f} {pf:14.1f} {pf / base_p:7.2f}")


if __name__ == "__main__":
    main()
