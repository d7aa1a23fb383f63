"""Random checkpoints in real published key layouts, built with numpy (no PyTorch needed).

Parameter ranges are those of trained models (see shared/reference/ARCHITECTURES.md), so the
recurrences are exercised where real models run: decays near 1 and far from it, mixes in (0, 1),
norm weights near (not at) 1 and biases near (not at) 0, so a skipped norm shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def rwkv7_state_dict(C: int, L: int, V: int, ranks: tuple[int, int, int, int], seed: int) -> dict[str, np.ndarray]:
    """RWKV-7 (x070) in BlinkDL's .pth key layout; head size 64; FFN 4C."""
    rng = np.random.default_rng(seed)
    H, N = C // 64, 64
    Dw, Da, Dv, Dg = ranks

    def mat(out_f: int, in_f: int, scale: float = 1.0) -> np.ndarray:  # nn.Linear layout (out, in)
        return (rng.standard_normal((out_f, in_f)) * scale / in_f**0.5).astype(np.float32)

    def uni(lo: float, hi: float, *shape: int) -> np.ndarray:
        return rng.uniform(lo, hi, shape).astype(np.float32)

    def norm(prefix: str) -> dict[str, np.ndarray]:
        return {prefix + ".weight": (1 + 0.1 * rng.standard_normal(C)).astype(np.float32),
                prefix + ".bias": (0.1 * rng.standard_normal(C)).astype(np.float32)}

    sd: dict[str, np.ndarray] = {"emb.weight": rng.standard_normal((V, C)).astype(np.float32)}
    for i in range(L):
        b = f"blocks.{i}."
        if i == 0:
            sd |= norm(b + "ln0")
        sd |= norm(b + "ln1") | norm(b + "ln2")
        for x in "rwkvag":
            sd[b + f"att.x_{x}"] = uni(0, 1, 1, 1, C)
        sd[b + "att.w0"] = uni(-6.0, -0.5, 1, 1, C)
        sd[b + "att.w1"], sd[b + "att.w2"] = mat(Dw, C, 0.5).T.copy(), mat(C, Dw, 0.5).T.copy()
        sd[b + "att.a0"] = (0.5 * rng.standard_normal((1, 1, C))).astype(np.float32)
        sd[b + "att.a1"], sd[b + "att.a2"] = mat(Da, C).T.copy(), mat(C, Da).T.copy()
        sd[b + "att.v0"] = (1 + 0.5 * rng.standard_normal((1, 1, C))).astype(np.float32)
        sd[b + "att.v1"], sd[b + "att.v2"] = mat(Dv, C).T.copy(), mat(C, Dv).T.copy()
        sd[b + "att.g1"], sd[b + "att.g2"] = mat(Dg, C).T.copy(), mat(C, Dg).T.copy()
        sd[b + "att.k_k"] = uni(0.5, 1.5, 1, 1, C)
        sd[b + "att.k_a"] = uni(0, 1, 1, 1, C)
        sd[b + "att.r_k"] = (0.3 * rng.standard_normal((H, N))).astype(np.float32)
        for name in ("receptance", "key", "value", "output"):
            sd[b + f"att.{name}.weight"] = mat(C, C)
        sd |= norm(b + "att.ln_x")
        sd[b + "ffn.x_k"] = uni(0, 1, 1, 1, C)
        sd[b + "ffn.key.weight"] = mat(4 * C, C)
        sd[b + "ffn.value.weight"] = mat(C, 4 * C)
    sd |= norm("ln_out")
    sd["head.weight"] = mat(V, C)
    return sd


def rwkv4_state_dict(C: int, L: int, V: int, seed: int, A: int | None = None) -> dict[str, np.ndarray]:
    """A random RWKV-4 state dict in BlinkDL's key layout with trained-model parameter ranges."""
    rng = np.random.default_rng(seed)
    A = A or C

    def f32(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32)

    def mat(out_f: int, in_f: int, gain: float = 1.0) -> np.ndarray:
        return f32(gain * rng.standard_normal((out_f, in_f)) / in_f**0.5)

    def uni(*shape: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        return f32(rng.uniform(lo, hi, shape))

    def norm(name: str) -> None:
        sd[name + ".weight"] = f32(1 + 0.1 * rng.standard_normal(C))
        sd[name + ".bias"] = f32(0.1 * rng.standard_normal(C))

    sd: dict[str, np.ndarray] = {"emb.weight": f32(rng.standard_normal((V, C)))}
    for i in range(L):
        b = f"blocks.{i}."
        if i == 0:
            norm(b + "ln0")
        norm(b + "ln1")
        norm(b + "ln2")
        # w = −exp(time_decay) from −0.0025 (memory of hundreds of tokens) to −55 (none), as trained
        # models span; time_first (log-space bonus) on both sides of 0; mixes in [0, 1].
        sd[b + "att.time_decay"] = uni(A, lo=-6.0, hi=4.0)
        sd[b + "att.time_first"] = uni(A, lo=-2.5, hi=2.5)
        for x in "kvr":
            sd[b + f"att.time_mix_{x}"] = uni(1, 1, C)
        sd[b + "att.key.weight"] = mat(A, C, gain=4.0)  # k of several units: the max trick matters
        sd[b + "att.value.weight"] = mat(A, C)
        sd[b + "att.receptance.weight"] = mat(A, C)
        sd[b + "att.output.weight"] = mat(C, A)
        for x in "kr":
            sd[b + f"ffn.time_mix_{x}"] = uni(1, 1, C)
        sd[b + "ffn.key.weight"] = mat(4 * C, C)
        sd[b + "ffn.receptance.weight"] = mat(C, C)
        sd[b + "ffn.value.weight"] = mat(C, 4 * C)
    norm("ln_out")
    sd["head.weight"] = mat(V, C)
    return sd


def rwkv5_state_dict(C: int, L: int, V: int, version: int, seed: int) -> dict[str, np.ndarray]:
    """A random RWKV-5.x state dict in BlinkDL's key layout and key order, with trained-model ranges.

    5.2 (x052, the released World models): per-channel time_decay/time_faaaa (H, N), gate, F = 3.5C.
    5.1: per-head time_decay (H,) and time_faaaa (H,), gate, F = 4C.
    5.0: per-head time_decay (H,) and log-space time_first (H,), no gate, F = 4C.
    Key order matters: pip detects the sub-version from the keys in file order (ARCHITECTURES.md §1.0.1).
    """
    rng = np.random.default_rng(seed)
    H, N = C // 64, 64
    F = int(3.5 * C) // 32 * 32 if version == 52 else 4 * C

    def f32(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32)

    def mat(out_f: int, in_f: int) -> np.ndarray:
        return f32(rng.standard_normal((out_f, in_f)) / in_f**0.5)

    def uni(*shape: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        return f32(rng.uniform(lo, hi, shape))

    def norm(sd: dict[str, np.ndarray], key: str, n: int) -> None:
        sd[key + ".weight"] = f32(1 + 0.1 * rng.standard_normal(n))
        sd[key + ".bias"] = f32(0.1 * rng.standard_normal(n))

    sd: dict[str, np.ndarray] = {"emb.weight": f32(rng.standard_normal((V, C)))}
    for i in range(L):
        b = f"blocks.{i}."
        norm(sd, b + "ln1", C)
        norm(sd, b + "ln2", C)
        if i == 0:
            norm(sd, b + "ln0", C)
        a = b + "att."
        for x in "kvrg" if version >= 51 else "kvr":
            sd[a + f"time_mix_{x}"] = uni(1, 1, C)
        if version == 51:
            sd[a + "gate.weight"] = mat(C, C)
        if version == 52:
            sd[a + "time_decay"] = uni(H, N, lo=-6.5, hi=1.0)  # w = exp(−exp(d)) from ≈0.998 to ≈0.07
            sd[a + "time_faaaa"] = uni(H, N, lo=-0.3, hi=1.2)
        else:
            sd[a + "time_decay"] = uni(H, lo=-8.0, hi=0.5)
            if version == 51:
                sd[a + "time_faaaa"] = uni(H, lo=-0.3, hi=1.2)
            else:
                sd[a + "time_first"] = uni(H, lo=-3.0, hi=0.5)  # log space: u = exp(time_first)
        for name in ("receptance", "key", "value", "output"):
            sd[a + f"{name}.weight"] = mat(C, C)
        if version == 52:
            sd[a + "gate.weight"] = mat(C, C)
        norm(sd, a + "ln_x", C)
        f = b + "ffn."
        sd[f + "time_mix_k"] = uni(1, 1, C)
        sd[f + "time_mix_r"] = uni(1, 1, C)
        sd[f + "key.weight"] = mat(F, C)
        sd[f + "receptance.weight"] = mat(C, C)
        sd[f + "value.weight"] = mat(C, F)
    norm(sd, "ln_out", C)
    sd["head.weight"] = mat(V, C)
    return sd


def rwkv6_state_dict(C: int, L: int, V: int, seed: int, decay: tuple[float, float] = (-6.0, -1.0),
                     lora: tuple[int, int] = (32, 64)) -> dict[str, np.ndarray]:
    """RWKV-6 (x060) in BlinkDL's .pth key layout; head size 64; FFN int(3.5C)//32·32; mix LoRA 5×Dm and
    decay LoRA Dd = `lora` (32, 64: every released model with C != 4096, what llama.cpp assumes);
    time_decay U(decay), time_faaaa U(−0.3, 1.2)."""
    rng = np.random.default_rng(seed)
    H, N = C // 64, 64
    F = int(3.5 * C) // 32 * 32
    Dm, Dd = lora

    def mat(out_f: int, in_f: int) -> np.ndarray:  # nn.Linear layout (out, in)
        return (rng.standard_normal((out_f, in_f)) / in_f**0.5).astype(np.float32)

    def gauss(scale: float, *shape: int) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    def uni(lo: float, hi: float, *shape: int) -> np.ndarray:
        return rng.uniform(lo, hi, shape).astype(np.float32)

    def norm(prefix: str) -> dict[str, np.ndarray]:
        return {prefix + ".weight": (1 + 0.1 * rng.standard_normal(C)).astype(np.float32),
                prefix + ".bias": (0.1 * rng.standard_normal(C)).astype(np.float32)}

    sd: dict[str, np.ndarray] = {"emb.weight": gauss(0.5, V, C)}
    for i in range(L):
        b = f"blocks.{i}."
        if i == 0:
            sd |= norm(b + "ln0")
        sd |= norm(b + "ln1") | norm(b + "ln2")
        for x in "xwkvrg":
            sd[b + f"att.time_maa_{x}"] = uni(0, 1, 1, 1, C)
        sd[b + "att.time_maa_w1"] = gauss(0.5 / C**0.5, C, 5 * Dm)  # raw parameters: (in, out), x @ w1
        sd[b + "att.time_maa_w2"] = gauss(0.1, 5, Dm, C)
        sd[b + "att.time_decay"] = uni(decay[0], decay[1], 1, 1, C)
        sd[b + "att.time_decay_w1"] = gauss(0.5 / C**0.5, C, Dd)
        sd[b + "att.time_decay_w2"] = gauss(0.1, Dd, C)
        sd[b + "att.time_faaaa"] = uni(-0.3, 1.2, H, N)
        for name in ("receptance", "key", "value", "gate", "output"):
            sd[b + f"att.{name}.weight"] = mat(C, C)
        sd |= norm(b + "att.ln_x")
        sd[b + "ffn.time_maa_k"] = uni(0, 1, 1, 1, C)
        sd[b + "ffn.time_maa_r"] = uni(0, 1, 1, 1, C)
        sd[b + "ffn.key.weight"] = mat(F, C)
        sd[b + "ffn.receptance.weight"] = mat(C, C)
        sd[b + "ffn.value.weight"] = mat(C, F)
    sd |= norm("ln_out")
    sd["head.weight"] = mat(V, C)
    return sd


def mamba_state_dict(C: int, L: int, V: int, seed: int, N: int = 16, K: int = 4) -> dict[str, np.ndarray]:
    """A random Hugging Face MambaForCausalLM checkpoint (tied embeddings) with realistic SSM parameters."""
    g = np.random.default_rng(seed)
    D, R = 2 * C, -(-C // 16)

    def f(*shape: int, sc: float = 1.0) -> np.ndarray:
        return (sc * g.standard_normal(shape)).astype(np.float32)

    dt = np.exp(g.uniform(np.log(1e-3), np.log(1e-1), D))
    sd = {"backbone.embeddings.weight": f(V, C, sc=0.5), "backbone.norm_f.weight": 1 + f(C, sc=0.1)}
    for i in range(L):
        p = f"backbone.layers.{i}."
        sd |= {p + "norm.weight": 1 + f(C, sc=0.1), p + "mixer.in_proj.weight": f(2 * D, C, sc=C ** -0.5),
               p + "mixer.conv1d.weight": f(D, 1, K, sc=0.5), p + "mixer.conv1d.bias": f(D, sc=0.1),
               p + "mixer.x_proj.weight": f(R + 2 * N, D, sc=D ** -0.5),
               p + "mixer.dt_proj.weight": f(D, R, sc=R ** -0.5),
               p + "mixer.dt_proj.bias": np.log(np.expm1(dt)).astype(np.float32),
               p + "mixer.A_log": np.log(np.arange(1, N + 1, dtype=np.float32))[None, :] + f(D, N, sc=0.3),
               p + "mixer.D": 1 + f(D, sc=0.3), p + "mixer.out_proj.weight": f(C, D, sc=D ** -0.5)}
    return sd


def save_safetensors(sd: dict[str, np.ndarray], path: Path) -> Path:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(path))
    return path


def tiny_rwkv7_gguf(tmp: Path, seed: int = 0, V: int = 300) -> Path:
    """A small converted RWKV-7 model (C=128, 2 layers) for API tests."""
    from pyrnn.converters.convert import convert

    src = save_safetensors(rwkv7_state_dict(128, 2, V, (32, 32, 32, 32), seed), tmp / f"rwkv7-{seed}.safetensors")
    out = tmp / f"rwkv7-{seed}.gguf"
    convert(src, out, out_type="f32")
    return out


PREFILL_LENGTHS = (1, 7, 33, 130)  # odd: inside one 64-token chunk, and across one and two chunk boundaries


def assert_prefill_lengths_equal_steps(m: Any, tokens: list[int], tol: float = 1e-5) -> None:
    """For each T in PREFILL_LENGTHS, one T-token call from a fresh state equals T single-token calls:
    every token's logits and the final state, within `tol` of their largest magnitude (fp32 rounding:
    the sequence path orders some sums differently). Fails if a chunked/threaded recurrence drifts."""
    for T in PREFILL_LENGTHS:
        s_seq = np.zeros(m.state_size, np.float32)
        seq = np.asarray(m.forward(tokens[:T], s_seq, all_logits=True)).reshape(T, -1)
        s_step = np.zeros(m.state_size, np.float32)
        steps = np.stack([np.asarray(m.forward([t], s_step)).reshape(-1) for t in tokens[:T]])
        assert np.abs(seq - steps).max() <= tol * np.abs(steps).max(), f"logits, T={T}"
        assert np.abs(s_seq - s_step).max() <= tol * np.abs(s_step).max(), f"state, T={T}"
    # recurrences split over the pool's threads by head/channel, projections by rows: no sum changes
    # order, so 3 threads give the same bits as 1
    T, threads = PREFILL_LENGTHS[-1], m.threads
    try:
        runs = []
        for n in (1, 3):
            m.threads = n
            s = np.zeros(m.state_size, np.float32)
            runs.append((np.asarray(m.forward(tokens[:T], s, all_logits=True)), s))
    finally:
        m.threads = threads
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
