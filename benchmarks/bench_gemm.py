"""GEMM micro-benchmark: one kernel table against another on the same bytes (single thread).

    python benchmarks/bench_gemm.py                       # avx2 vs avx512 (the ISAs this CPU runs)
    python benchmarks/bench_gemm.py --isas ref avx2 --types q4_0 --reps 9
    python benchmarks/bench_gemm.py --isas avx512 avx512:packed --types q4_0 q8_0   # the 16-row layout

Each cell is the median over --reps runs of the time per call (each run loops for ~--ms ms); the
ISAs are interleaved in every run, so load from other processes hits them alike. Calls go through
pyrnn._core.gemm (a few µs of Python/pybind11 overhead per call, the same for every ISA).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from pyrnn import _core

TYPES = {"f32": 0, "f16": 1, "bf16": 30, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8}


def weights(type_name: str, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    if type_name == "f32":
        return w
    if type_name == "f16":
        return w.astype(np.float16)
    if type_name == "bf16":
        return (w.view(np.uint32) >> 16).astype(np.uint16)
    return _core.quantize(w, TYPES[type_name]).reshape(rows, -1)


def time_gemm(w: np.ndarray, type_id: int, x: np.ndarray, isa: str, ms: float) -> float:
    """Seconds per gemm call, calling it for about ms milliseconds. isa "NAME:packed": NAME's packed
    kernel on the weights repacked into 16-row groups (rows a multiple of 16)."""
    rows, cols = w.shape[0], x.shape[1]
    name, _, variant = isa.partition(":")
    packed = variant == "packed"
    if packed:
        w = _core.pack(w, type_id, rows, cols)
    calls, t0 = 0, time.thread_time()
    while True:
        _core.gemm(w, type_id, rows, cols, x, name, packed)
        calls += 1
        dt = time.thread_time() - t0
        if dt * 1000 >= ms:
            return dt / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isas", nargs="+", default=[i for i in ("avx2", "avx512") if i in _core.available_isas()],
                    help="kernel tables; NAME:packed for NAME's kernel on packed weights (q4_0, q8_0)")
    ap.add_argument("--types", nargs="+", default=["f16", "q8_0", "q4_0"], choices=list(TYPES))
    ap.add_argument("--shapes", nargs="+", default=["768x768", "3072x768"], help="ROWSxCOLS")
    ap.add_argument("--tokens", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--ms", type=float, default=60.0)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"cpu: {_core.cpu_features()}; single thread; median of {a.reps} runs of ~{a.ms:g} ms")
    base = a.isas[0]
    head = " ".join(f"{i + ' µs':>12}" for i in a.isas)
    ratios = " ".join(f"{base + '/' + i:>12}" for i in a.isas[1:])
    print(f"{'type':6} {'rows x cols':>11} {'n':>3} {head} {ratios}")
    for type_name in a.types:
        for shape in a.shapes:
            rows, cols = (int(v) for v in shape.split("x"))
            w = weights(type_name, rows, cols, rng)
            for n in a.tokens:
                x = rng.standard_normal((n, cols)).astype(np.float32)
                times: dict[str, list[float]] = {i: [] for i in a.isas}
                for _ in range(a.reps):
                    for isa in a.isas:
                        times[isa].append(time_gemm(w, TYPES[type_name], x, isa, a.ms))
                med = {i: statistics.median(v) for i, v in times.items()}
                cells = " ".join(f"{med[i] * 1e6:12.1f}" for i in a.isas)
                rcells = " ".join(f"{med[base] / med[i]:12.2f}" for i in a.isas[1:])
                print(f"{type_name:6} {shape:>11} {n:3d} {cells} {rcells}", flush=True)


if __name__ == "__main__":
    main()
