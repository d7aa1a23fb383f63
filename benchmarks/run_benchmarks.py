"""Runs `pyrnn bench` on every model made by make_models.py and writes the table as Markdown.

    python benchmarks/make_models.py /tmp/pyrnn-bench
    python benchmarks/run_benchmarks.py /tmp/pyrnn-bench > benchmarks/RESULTS.md
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from pyrnn import _core
from pyrnn.bench import bytes_per_token, run
from pyrnn.model import Model

MODELS = ["rwkv7-0.1b", "mamba-130m", "rwkv4-169m"]
TYPES = ["f16", "q8_0", "q4_0"]


def main(folder: Path) -> None:
    bw = {t: _core.read_bandwidth(1024, t, 7) for t in (1, 2)}
    peak = {t: _core.fma_peak(t) for t in (1, 2)}
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, kernels {_core.isa()}; "
          f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"Read bandwidth: {bw[1] / 1e9:.1f} GB/s (1 thread), {bw[2] / 1e9:.1f} GB/s (2 threads); "
          f"FMA peak {peak[1] / 1e9:.0f} / {peak[2] / 1e9:.0f} GFLOP/s.\n")
    print("| model | type | MiB/token | threads | decode tok/s | limit tok/s | % of limit | prefill tok/s (512) "
          "| prefill GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in MODELS:
        for t in TYPES:
            path = folder / f"{name}-{t}.gguf"
            if not path.exists():
                continue
            m = Model(path)
            for th in (1, 2):
                r = run(m, th, decode_tokens=64, prompt_tokens=512, repeats=3, bandwidth=bw[th], peak=peak[th])
                pct_limit = 100 * r.decode_tok_s / r.decode_limit_tok_s
                pct_peak = 100 * r.prefill_gflops / r.peak_gflops
                print(f"| {name} | {t} | {bytes_per_token(m) / 2**20:.0f} | {th} | {r.decode_tok_s:.1f} | "
                      f"{r.decode_limit_tok_s:.1f} | {pct_limit:.0f}% | {r.prefill_tok_s:.0f} | "
                      f"{r.prefill_gflops:.1f} | {pct_peak:.0f}% |", flush=True)
    print(f"\nLoad average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pyrnn-bench"))
