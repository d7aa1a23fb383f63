"""RWKV-5 "Eagle" (5.0, 5.1, 5.2) → GGUF "rwkv5", pyrnn's layout (docs/FORMAT.md, section rwkv5).

llama.cpp has no RWKV-5, so names follow its rwkv6 layout (ARCHITECTURES.md §1.6) wherever the
tensor means the same thing. Input names are BlinkDL's (`blocks.N.att.*`); Hugging Face
Rwkv5ForCausalLM folders are renamed to them first (`hf_to_blinkdl_v5`).

What is transformed at conversion, so that one runtime serves all three sub-versions:
* token-shift mixes: v5 stores μ and mixes `x·μ + x_prev·(1−μ)`; we store `lerp = 1 − μ` (fp32),
  the rwkv6 meaning of `*_lerp_*`, applied as `x + (x_prev − x)·lerp`;
* 5.0/5.1 per-head decay and bonus (H,) are repeated over the head's N channels → (H, N);
* bonus: `time_faaaa` is u as is; a log-space `time_first` (5.0/5.1) becomes u = exp(time_first),
  computed in fp32 as pip does;
* the decay stays raw (`time_decay`, fp32); the runtime computes exp(−exp(·)) at load.
ln0 is stored as token_embd_norm and applied at run time; nothing is rescaled.
"""

from __future__ import annotations

import numpy as np

from .output import TensorOutput
from .rwkv_common import n_layers, require

ARCH = "rwkv5"

# GroupNorm eps of ln_x in pip (all 5.x): training's GroupNorm(x / head_size_divisor, 1e-5) with
# head_size_divisor 8 is exactly GroupNorm(x, 1e-5·8²); pip writes 64e-5 on the undivided x.
GROUP_NORM_EPS = 64e-5


def sub_version(t: dict[str, np.ndarray]) -> int:
    """50, 51 or 52, by pip's rule (ARCHITECTURES.md §1.0.1): per-channel decay → 5.2, gate → 5.1."""
    decay = require(t, "blocks.0.att.time_decay")
    gated = "blocks.0.att.gate.weight" in t
    if decay.ndim > 1 and decay.shape[1] > 1:
        if not gated:
            raise ValueError("checkpoint tensor 'blocks.0.att.gate.weight': expected in an RWKV-5.2 checkpoint "
                             f"(time_decay {decay.shape} is per channel), found nothing")
        return 52
    return 51 if gated else 50


def _per_channel(a: np.ndarray, key: str, H: int, N: int) -> np.ndarray:
    """(H, N) from a per-channel (H, N) or per-head (H,) / (H, 1) tensor."""
    if a.size == H * N:
        return a.reshape(H, N)
    if a.size == H:
        return np.repeat(a.reshape(H, 1), N, axis=1)
    raise ValueError(f"checkpoint tensor {key!r}: expected ({H}, {N}) or ({H},) elements, found shape {a.shape}")


def convert(t: dict[str, np.ndarray], out: TensorOutput) -> None:
    w = out.writer
    V, C = require(t, "emb.weight").shape
    L = n_layers(t)
    version = sub_version(t)
    H = int(require(t, "blocks.0.att.time_decay").shape[0])
    if H == 0 or C % H != 0:
        raise ValueError(f"checkpoint tensor 'blocks.0.att.time_decay': expected a head count dividing {C}, found {H}")
    N = C // H
    F = require(t, "blocks.0.ffn.key.weight").shape[0]
    real_u = any(k.endswith(".att.time_faaaa") for k in t)  # else log-space time_first
    for k in t:
        if k.endswith(".att.time_state"):
            raise ValueError(f"checkpoint tensor {k!r}: state-tuned initial states are not supported")

    w.add_uint32(f"{ARCH}.version", version)
    w.add_uint32(f"{ARCH}.context_length", 1048576)
    w.add_uint32(f"{ARCH}.embedding_length", C)
    w.add_uint32(f"{ARCH}.block_count", L)
    w.add_float32(f"{ARCH}.attention.layer_norm_epsilon", 1e-5)
    w.add_float32(f"{ARCH}.attention.group_norm_epsilon", GROUP_NORM_EPS)
    w.add_uint32(f"{ARCH}.wkv.head_size", N)
    w.add_uint32(f"{ARCH}.feed_forward_length", F)
    w.add_uint32(f"{ARCH}.attention.head_count", 0)  # as llama.cpp's rwkv6/7: unused, H = C / head_size

    one = np.float32(1.0)
    out.matrix("token_embd.weight", require(t, "emb.weight", (V, C)))
    out.f32("token_embd_norm.weight", require(t, "blocks.0.ln0.weight", (C,)))
    out.f32("token_embd_norm.bias", require(t, "blocks.0.ln0.bias", (C,)))
    out.f32("output_norm.weight", require(t, "ln_out.weight", (C,)))
    out.f32("output_norm.bias", require(t, "ln_out.bias", (C,)))
    out.matrix("output.weight", require(t, "head.weight", (V, C)))
    for i in range(L):
        b, p = f"blocks.{i}.", f"blk.{i}."
        for src, dst in [("ln1", "attn_norm"), ("ln2", "attn_norm_2"), ("att.ln_x", "time_mix_ln")]:
            out.f32(f"{p}{dst}.weight", require(t, f"{b}{src}.weight", (C,)))
            out.f32(f"{p}{dst}.bias", require(t, f"{b}{src}.bias", (C,)))
        for x in "kvrg" if version >= 51 else "kvr":
            out.f32(f"{p}time_mix_lerp_{x}.weight", one - require(t, f"{b}att.time_mix_{x}", (C,)))
        decay_key = f"{b}att.time_decay"
        out.f32(f"{p}time_mix_decay.weight", _per_channel(require(t, decay_key), decay_key, H, N))
        if real_u:
            u_key = f"{b}att.time_faaaa"
            u = require(t, u_key)
        else:
            u_key = f"{b}att.time_first"
            u = np.exp(require(t, u_key)).astype(np.float32)
        out.f32(f"{p}time_mix_first.weight", _per_channel(u, u_key, H, N))
        names = ["receptance", "key", "value", "output"] + (["gate"] if version >= 51 else [])
        for name in names:
            out.matrix(f"{p}time_mix_{name}.weight", require(t, f"{b}att.{name}.weight", (C, C)))
        for x in "kr":
            out.f32(f"{p}channel_mix_lerp_{x}.weight", one - require(t, f"{b}ffn.time_mix_{x}", (C,)))
        out.matrix(f"{p}channel_mix_key.weight", require(t, f"{b}ffn.key.weight", (F, C)))
        out.matrix(f"{p}channel_mix_value.weight", require(t, f"{b}ffn.value.weight", (C, F)))
        out.matrix(f"{p}channel_mix_receptance.weight", require(t, f"{b}ffn.receptance.weight", (C, C)))


# Hugging Face remote-code names (RWKV/rwkv-5-world-*, §1.2.4) → BlinkDL names; values identical.
_HF_RENAMES = [
    ("rwkv.embeddings.weight", "emb.weight"), ("rwkv.ln_out.", "ln_out."), ("rwkv.blocks.", "blocks."),
    (".pre_ln.", ".ln0."), (".attention.", ".att."), (".feed_forward.", ".ffn."),
    (".time_mix_key", ".time_mix_k"), (".time_mix_value", ".time_mix_v"),
    (".time_mix_receptance", ".time_mix_r"), (".time_mix_gate", ".time_mix_g"),
]


def hf_to_blinkdl_v5(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rwkv5ForCausalLM names → BlinkDL names (`rwkv.blocks.N.attention.time_mix_key` → `blocks.N.att.time_mix_k`)."""
    out: dict[str, np.ndarray] = {}
    for k, v in tensors.items():
        n = k
        for old, new in _HF_RENAMES:
            n = n.replace(old, new)
        out[n] = v
    return out
