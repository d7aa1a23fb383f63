"""`pyrnn bench MODEL`: decode and prefill speed against this machine's limits.

Decode of a small model is bound by memory bandwidth: each token reads every weight once, so
tokens/s ≤ bandwidth ÷ bytes read per token. Prefill is bound by arithmetic: a chunk's projections
are one GEMM (2 FLOP per weight per token). The report gives both, with the measured limits, medians
of repeated runs, and the machine's load average (a shared machine makes every number noisier).
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass

import numpy as np

from . import _core
from .model import Model


@dataclass
class BenchResult:
    threads: int
    decode_tok_s: float
    decode_limit_tok_s: float
    prefill_tok_s: float
    prefill_gflops: float
    peak_gflops: float


def bytes_per_token(model: Model) -> int:
    """Weight bytes one decode step reads: every tensor, the embedding only one row of it unless it is
    also the output head (tied: no output.weight, as llama.cpp writes Mamba), plus the state."""
    tensors = model.metadata.tensors
    tied = not any(t["name"] == "output.weight" for t in tensors)
    total = 0
    for t in tensors:
        if t["name"] == "token_embd.weight" and not tied:
            total += t["n_bytes"] // max(1, t["shape"][0])
        else:
            total += t["n_bytes"]
    return total + 2 * 4 * model.state_size  # the state is read and written


def matmul_params(model: Model) -> int:
    """Weights that take part in a matrix product per token (2 FLOP each): 2-d tensors but the embedding."""
    return sum(t["n_elements"] for t in model.metadata.tensors
               if len(t["shape"]) == 2 and t["name"] != "token_embd.weight")


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def speeds(model: Model, decode_tokens: int = 64, prompt_tokens: int = 512, repeats: int = 3) -> tuple[float, float]:
    """(decode tok/s, prefill tok/s), medians of `repeats` runs, on the model's device and threads."""
    rng = np.random.default_rng(0)
    prompt = rng.integers(1, model.n_vocab, prompt_tokens).tolist()
    decode = rng.integers(1, model.n_vocab, decode_tokens).tolist()
    model.forward(prompt[:8], model.new_state())  # warm: pages mapped, pool threads started, kernels loaded

    def prefill() -> None:
        model.forward(prompt, model.new_state())

    state = model.new_state()
    model.forward(prompt[:16], state)
    model.forward(decode[:1], state.copy())  # warm the one-token path (on a GPU: captures its graph)

    def decode_run() -> None:
        s = state.copy()
        for t in decode:
            model.forward([t], s)

    t_prefill = _median_time(prefill, repeats)
    t_decode = _median_time(decode_run, repeats) / decode_tokens
    return 1.0 / t_decode, prompt_tokens / t_prefill


def run(model: Model, threads: int, decode_tokens: int = 64, prompt_tokens: int = 512, repeats: int = 3,
        bandwidth: float | None = None, peak: float | None = None) -> BenchResult:
    model.threads = threads
    decode_tok_s, prefill_tok_s = speeds(model, decode_tokens, prompt_tokens, repeats)
    bw = bandwidth if bandwidth is not None else _core.read_bandwidth(1024, threads, 5)
    pk = peak if peak is not None else _core.fma_peak(threads)
    flops = 2.0 * matmul_params(model)
    return BenchResult(threads, decode_tok_s, bw / bytes_per_token(model), prefill_tok_s,
                       flops * prefill_tok_s / 1e9, pk / 1e9)


def device_report(path: str, device: str, decode_tokens: int, prompt_tokens: int, repeats: int) -> str:
    """`pyrnn bench MODEL --device cuda`: decode and prefill speed on the device (no CPU limits apply)."""
    model = Model(path, device)
    decode_tok_s, prefill_tok_s = speeds(model, decode_tokens, prompt_tokens, repeats)
    bpt = bytes_per_token(model)
    return "\n".join([
        f"model:      {path} ({model.arch}, {model.n_layer} layers, C={model.n_embd}, V={model.n_vocab})",
        f"device:     {device}: {model._core.device_name}",
        f"decode:     {decode_tok_s:.1f} tok/s ({decode_tok_s * bpt / 1e9:.1f} GB/s of weights and state read)",
        f"prefill:    {prefill_tok_s:.1f} tok/s ({2 * matmul_params(model) * prefill_tok_s / 1e9:.1f} GFLOP/s), "
        f"{prompt_tokens} tokens, median of {repeats}",
    ])


def report(path: str, threads_list: list[int], decode_tokens: int, prompt_tokens: int, repeats: int) -> str:
    model = Model(path)
    bpt = bytes_per_token(model)
    lines = [
        f"model:      {path} ({model.arch}, {model.n_layer} layers, C={model.n_embd}, V={model.n_vocab})",
        f"per token:  {bpt / 2**20:.1f} MiB read in decode, {2 * matmul_params(model) / 1e6:.0f} MFLOP in prefill",
        f"kernels:    {_core.isa()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        "threads  bandwidth  decode tok/s  limit tok/s  % of limit  prefill tok/s  GFLOP/s  peak GFLOP/s  % of peak",
    ]
    for th in threads_list:
        bw = _core.read_bandwidth(1024, th, 5)
        r = run(model, th, decode_tokens, prompt_tokens, repeats, bandwidth=bw)
        lines.append(
            f"{th:>7}  {bw / 1e9:6.1f} GB/s  {r.decode_tok_s:12.1f}  {r.decode_limit_tok_s:11.1f}  "
            f"{100 * r.decode_tok_s / r.decode_limit_tok_s:9.1f}%  {r.prefill_tok_s:13.1f}  {r.prefill_gflops:7.1f}  "
            f"{r.peak_gflops:12.1f}  {100 * r.prefill_gflops / r.peak_gflops:8.1f}%"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"\npeak RSS: {rss:.0f} MiB (the weights are memory-mapped and count once touched)")
    return "\n".join(lines)
