"""RWKV-6 "Finch" (x060) → GGUF "rwkv6", llama.cpp's layout exactly (ARCHITECTURES.md §1.6).

Input names are BlinkDL's (`blocks.N.att.time_maa_*`, ...); Hugging Face Rwkv6ForCausalLM folders
are renamed to them first (`hf_to_blinkdl_v6`, same values). Nothing is folded or exponentiated:
ln0 is stored as token_embd_norm and applied at run time, time_decay stays the raw log-log decay,
time_faaaa is the bonus u as is. The LoRA matrices are stored transposed (their ne then reads like
the .pth shape), the five token-shift mixes w, k, v, r, g are stacked into time_mix_lerp_fused.

Two metadata choices, both equal to llama.cpp's on every released checkpoint:
* time_mix_extra_dim / time_decay_extra_dim are read from the LoRA shapes. llama.cpp's converter
  hard-codes 64/128 if C = 4096 else 32/64, the sizes of every released model; where a checkpoint
  differs, its rule would write a file llama.cpp itself cannot load.
* rescale_every_n_layers is 0 (exact fp32 math, as pip "cpu fp32"). llama.cpp copies a Hugging Face
  config's `rescale_every` (an fp16 overflow guard) and pre-divides the weights; `rescale_every=n`
  here does the same, for byte-identical files.
"""

from __future__ import annotations

import numpy as np

from .output import TensorOutput
from .rwkv_common import n_layers, require

ARCH = "rwkv6"

_HF_NAMES = [("rwkv.embeddings.weight", "emb.weight"), ("rwkv.ln_out.", "ln_out."), ("rwkv.blocks.", "blocks."),
             (".attention.", ".att."), (".feed_forward.", ".ffn."), (".pre_ln.", ".ln0.")]


def hf_to_blinkdl_v6(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rwkv6ForCausalLM names → BlinkDL names; the values and shapes are identical (§1.3.4)."""
    out: dict[str, np.ndarray] = {}
    for k, v in tensors.items():
        n = k
        for a, b in _HF_NAMES:
            n = n.replace(a, b)
        out[n] = v
    return out


def convert(t: dict[str, np.ndarray], out: TensorOutput, rescale_every: int = 0) -> None:
    w = out.writer
    V, C = require(t, "emb.weight").shape
    L = n_layers(t)
    H, N = require(t, "blocks.0.att.time_faaaa").shape
    F = require(t, "blocks.0.ffn.key.weight").shape[0]
    five_dm = require(t, "blocks.0.att.time_maa_w1").shape[1]
    Dd = require(t, "blocks.0.att.time_decay_w1").shape[1]
    if five_dm % 5 or H * N != C:
        raise ValueError(f"checkpoint tensors att.time_maa_w1 {(C, five_dm)}, att.time_faaaa {(H, N)}: expected "
                         f"(C, 5·Dm) and (H, N) with H·N = C = {C}")
    Dm = five_dm // 5
    for k in t:
        if k.endswith(".att.time_state"):
            raise ValueError(f"checkpoint tensor {k!r}: state-tuned RWKV-6 checkpoints are not supported")

    w.add_uint32(f"{ARCH}.context_length", 1048576)
    w.add_uint32(f"{ARCH}.embedding_length", C)
    w.add_uint32(f"{ARCH}.block_count", L)
    w.add_float32(f"{ARCH}.attention.layer_norm_epsilon", 1e-5)
    w.add_uint32(f"{ARCH}.rescale_every_n_layers", rescale_every)
    w.add_uint32(f"{ARCH}.wkv.head_size", N)
    w.add_uint32(f"{ARCH}.time_mix_extra_dim", Dm)
    w.add_uint32(f"{ARCH}.time_decay_extra_dim", Dd)
    w.add_uint32(f"{ARCH}.feed_forward_length", F)
    w.add_uint32(f"{ARCH}.attention.head_count", 0)

    out.matrix("token_embd.weight", require(t, "emb.weight", (V, C)))
    out.f32("token_embd_norm.weight", require(t, "blocks.0.ln0.weight", (C,)))
    out.f32("token_embd_norm.bias", require(t, "blocks.0.ln0.bias", (C,)))
    out.f32("output_norm.weight", require(t, "ln_out.weight", (C,)))
    out.f32("output_norm.bias", require(t, "ln_out.bias", (C,)))
    out.matrix("output.weight", require(t, "head.weight", (V, C)))
    for i in range(L):
        b, p = f"blocks.{i}.", f"blk.{i}."
        # llama.cpp's rescaling: x is halved after every n-th block, so these weights are pre-divided
        scale = np.float32(2 ** (i // rescale_every)) if rescale_every > 0 else np.float32(1)
        for src, dst in [("ln1", "attn_norm"), ("ln2", "attn_norm_2"), ("att.ln_x", "time_mix_ln")]:
            out.f32(f"{p}{dst}.weight", require(t, f"{b}{src}.weight", (C,)))
            out.f32(f"{p}{dst}.bias", require(t, f"{b}{src}.bias", (C,)))
        out.f32(f"{p}time_mix_lerp_x.weight", require(t, f"{b}att.time_maa_x", (C,)))
        lerp = np.stack([require(t, f"{b}att.time_maa_{x}", (C,)) for x in "wkvrg"])
        out.f32(f"{p}time_mix_lerp_fused.weight", lerp.reshape(5, 1, 1, C))
        out.f32(f"{p}time_mix_w1.weight", require(t, f"{b}att.time_maa_w1", (C, 5 * Dm)).T.copy())  # → (5Dm, C)
        w2 = require(t, f"{b}att.time_maa_w2", (5, Dm, C))
        out.f32(f"{p}time_mix_w2.weight", w2.transpose(0, 2, 1).copy())  # → (5, C, Dm)
        out.f32(f"{p}time_mix_decay.weight", require(t, f"{b}att.time_decay", (C,)))
        out.f32(f"{p}time_mix_decay_w1.weight", require(t, f"{b}att.time_decay_w1", (C, Dd)).T.copy())  # → (Dd, C)
        out.f32(f"{p}time_mix_decay_w2.weight", require(t, f"{b}att.time_decay_w2", (Dd, C)).T.copy())  # → (C, Dd)
        out.f32(f"{p}time_mix_first.weight", require(t, f"{b}att.time_faaaa", (H, N)))
        for name in ("receptance", "key", "value", "gate"):
            out.matrix(f"{p}time_mix_{name}.weight", require(t, f"{b}att.{name}.weight", (C, C)))
        out.matrix(f"{p}time_mix_output.weight", require(t, f"{b}att.output.weight", (C, C)) / scale)
        out.f32(f"{p}channel_mix_lerp_k.weight", require(t, f"{b}ffn.time_maa_k", (C,)))
        out.f32(f"{p}channel_mix_lerp_r.weight", require(t, f"{b}ffn.time_maa_r", (C,)))
        out.matrix(f"{p}channel_mix_key.weight", require(t, f"{b}ffn.key.weight", (F, C)))
        out.matrix(f"{p}channel_mix_value.weight", require(t, f"{b}ffn.value.weight", (C, F)) / scale)
        out.matrix(f"{p}channel_mix_receptance.weight", require(t, f"{b}ffn.receptance.weight", (C, C)))
