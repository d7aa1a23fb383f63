"""Prefill speed of two builds of pyrnn, interleaved, so both see the same machine load.

    python benchmarks/prefill_ab.py --base /tmp/pyrnn-bench-prefill/base --new . \\
        --threads 1,2 --prompt 512 --rounds 5 MODEL.gguf [MODEL.gguf ...]

--base and --new are folders that hold a `pyrnn` package with its built `_core` (e.g. a copy of the
tree taken before a change, and this worktree). Each round runs one timed prefill of a fresh state per
build, model and thread count, each in its own process (base, then new), after one untimed warm-up
call; the table gives the median tok/s of the rounds and new/base. Speed only: correctness is the tests'.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

CHILD = """
import sys, time
import numpy as np
from pyrnn import _core
m = _core.Model(sys.argv[1])
m.threads = int(sys.argv[2])
n = int(sys.argv[3])
tokens = np.random.default_rng(0).integers(1, m.n_vocab, n).tolist()
m.forward(tokens[:8], np.zeros(m.state_size, np.float32))  # warm: pages mapped, pool threads started
s = np.zeros(m.state_size, np.float32)
t0 = time.perf_counter()
m.forward(tokens, s)
print(n / (time.perf_counter() - t0))
"""


def one(tree: str, model: str, threads: int, prompt: int) -> float:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    cmd = [sys.executable, "-c", CHILD, os.path.abspath(model), str(threads), str(prompt)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd="/")
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("model                 threads  base tok/s  new tok/s  new/base")
    for model in a.models:
        for th in threads:
            base, new = [], []
            for _ in range(a.rounds):
                base.append(one(a.base, model, th, a.prompt))
                new.append(one(a.new, model, th, a.prompt))
            b, n = statistics.median(base), statistics.median(new)
            print(f"{os.path.basename(model):20}  {th:7}  {b:10.1f}  {n:9.1f}  {n / b:8.2f}", flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
