"""pyrnn beside llama.cpp on the same GGUF files: decode and prefill tok/s, same thread counts.

    PYTHONPATH=. python benchmarks/compare_llamacpp.py /tmp/llamacpp/build/bin/llama-bench /tmp/pyrnn-bench
    PYTHONPATH=. python benchmarks/compare_llamacpp.py BENCH FOLDER --models rwkv7-0.1b --types q8_0 --threads 1

For each model/type file in FOLDER (`{model}-{type}.gguf`, as benchmarks/make_models.py names them)
and each thread count, runs llama-bench twice (`-p 512 -n 0` for prefill, `-p 0 -n 64` for decode,
`-t N -r 3 -o json`) and pyrnn's own measurement (`pyrnn.bench.run`, as run_benchmarks.py) on the
same file, then prints a Markdown table. Speeds are medians of the repeats on both sides (llama-bench's
`samples_ts`; it runs one warm-up first, as pyrnn.bench does). The decode limit is this machine's read
bandwidth ÷ the bytes one token reads (pyrnn.bench.bytes_per_token), the same for both runtimes.

What differs: llama-bench decodes 64 tokens from an empty state, pyrnn from a 16-token one (no
difference for a recurrent model's cost); llama.cpp's RWKV-7 and Mamba prefill runs its own
recurrence kernels (ggml's rwkv_wkv7 / ssm_scan) over the whole 512-token batch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path

from pyrnn import _core
from pyrnn.bench import bytes_per_token, run
from pyrnn.model import Model

MODELS = ["rwkv7-0.1b", "mamba-130m"]
TYPES = ["f16", "q8_0", "q4_0"]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def llama_bench(binary: Path, path: Path, threads: int, prompt: int, gen: int, repeats: int) -> tuple[float, str]:
    """(median tok/s, llama.cpp build commit) of one llama-bench test: `-p prompt -n gen`."""
    cmd = [str(binary), "-m", str(path), "-p", str(prompt), "-n", str(gen), "-t", str(threads),
           "-r", str(repeats), "-o", "json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    tests = json.loads(out)
    if len(tests) != 1:
        raise RuntimeError(f"llama-bench {' '.join(cmd[1:])}: expected 1 test in its JSON, found {len(tests)}")
    return statistics.median(tests[0]["samples_ts"]), str(tests[0]["build_commit"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("llama_bench", type=Path, help="path of llama.cpp's llama-bench binary")
    ap.add_argument("folder", type=Path, help="folder with {model}-{type}.gguf files")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--types", nargs="+", default=TYPES)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=512, help="prefill tokens")
    ap.add_argument("--decode", type=int, default=64, help="decode tokens")
    a = ap.parse_args()

    print(f"Load average at start: {load_average()}; pyrnn kernels {_core.isa()}, {os.cpu_count()} CPUs")
    bw = {t: _core.read_bandwidth(1024, t, 7) for t in a.threads}
    peak = {t: _core.fma_peak(t) for t in a.threads}
    print("Read bandwidth: " + ", ".join(f"{bw[t] / 1e9:.1f} GB/s ({t} thr)" for t in a.threads) + "\n")
    print(f"| model | type | threads | decode limit tok/s | llama.cpp decode tok/s | pyrnn decode tok/s | ratio "
          f"| llama.cpp prefill {a.prompt} tok/s | pyrnn prefill tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    commits = set()
    for name in a.models:
        for typ in a.types:
            path = a.folder / f"{name}-{typ}.gguf"
            if not path.exists():
                print(f"| {name} | {typ} | missing: {path} | | | | | | | |")
                continue
            model = Model(path)
            for th in a.threads:
                l_dec, c1 = llama_bench(a.llama_bench, path, th, 0, a.decode, a.repeats)
                l_pre, c2 = llama_bench(a.llama_bench, path, th, a.prompt, 0, a.repeats)
                commits |= {c1, c2}
                r = run(model, th, decode_tokens=a.decode, prompt_tokens=a.prompt, repeats=a.repeats,
                        bandwidth=bw[th], peak=peak[th])
                limit = bw[th] / bytes_per_token(model)
                print(f"| {name} | {typ} | {th} | {limit:.0f} | {l_dec:.1f} ({100 * l_dec / limit:.0f}%) "
                      f"| {r.decode_tok_s:.1f} ({100 * r.decode_tok_s / limit:.0f}%) "
                      f"| {r.decode_tok_s / l_dec:.2f}× | {l_pre:.0f} | {r.prefill_tok_s:.0f} "
                      f"| {r.prefill_tok_s / l_pre:.2f}× |", flush=True)
    print(f"\nRatios are pyrnn ÷ llama.cpp. llama.cpp build commit (llama-bench): {', '.join(sorted(commits))}")
    print(f"Load average at end: {load_average()}")


if __name__ == "__main__":
    main()
