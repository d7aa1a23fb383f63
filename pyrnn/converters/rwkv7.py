"""RWKV-7 (x070) → GGUF "rwkv7", llama.cpp's layout exactly (ARCHITECTURES.md §1.6).

Input names are BlinkDL's (`blocks.N.att.*`); Hugging Face RWKV7ForCausalLM folders are renamed to
them first. Nothing is folded or exponentiated: ln0 is stored as token_embd_norm and applied at run
time, LoRA matrices are stored transposed (ne mimics the .pth shape), r_k is flattened.
"""

from __future__ import annotations

import numpy as np

from .output import TensorOutput
from .rwkv_common import n_layers, require

ARCH = "rwkv7"


def convert(t: dict[str, np.ndarray], out: TensorOutput) -> None:
    w = out.writer
    V, C = require(t, "emb.weight").shape
    L = n_layers(t)
    H, N = require(t, "blocks.0.att.r_k").shape
    F = require(t, "blocks.0.ffn.key.weight").shape[0]
    ranks = {name: require(t, f"blocks.{L - 1}.att.{x}1").shape[1] for name, x in
             [("decay", "w"), ("iclr", "a"), ("value_residual_mix", "v"), ("gate", "g")]}
    for k in t:
        if ".ffn.s_emb" in k or k.endswith((".ffn.s0", ".ffn.s1", ".ffn.s2")):
            raise ValueError(f"checkpoint tensor {k!r}: the RWKV-7 DeepEmbed variant is not supported")

    w.add_uint32(f"{ARCH}.context_length", 1048576)
    w.add_uint32(f"{ARCH}.embedding_length", C)
    w.add_uint32(f"{ARCH}.block_count", L)
    w.add_float32(f"{ARCH}.attention.layer_norm_epsilon", 1e-5)
    w.add_uint32(f"{ARCH}.wkv.head_size", N)
    for name, r in ranks.items():
        w.add_uint32(f"{ARCH}.attention.{name}_lora_rank", r)
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
        for src, dst in [("ln1", "attn_norm"), ("ln2", "attn_norm_2"), ("att.ln_x", "time_mix_ln")]:
            out.f32(f"{p}{dst}.weight", require(t, f"{b}{src}.weight", (C,)))
            out.f32(f"{p}{dst}.bias", require(t, f"{b}{src}.bias", (C,)))
        lerp = np.stack([require(t, f"{b}att.x_{x}", (C,)) for x in "rwkvag"])
        out.f32(f"{p}time_mix_lerp_fused.weight", lerp.reshape(6, 1, 1, C))
        for x in ("w0", "a0", "k_k", "k_a"):
            out.f32(f"{p}time_mix_{x}.weight", require(t, f"{b}att.{x}", (C,)))
        out.f32(f"{p}time_mix_r_k.weight", require(t, f"{b}att.r_k", (H, N)).reshape(C))
        # Layer 0 never uses v0/v1/v2; llama.cpp writes copies of a0/a1/a2 there, and so do we.
        v = "a" if i == 0 else "v"
        out.f32(f"{p}time_mix_v0.weight", require(t, f"{b}att.{v}0", (C,)))
        for x, src in [("w", "w"), ("a", "a"), ("v", v), ("g", "g")]:
            out.f32(f"{p}time_mix_{x}1.weight", require(t, f"{b}att.{src}1").T.copy())  # (C,D) → (D,C)
            out.f32(f"{p}time_mix_{x}2.weight", require(t, f"{b}att.{src}2").T.copy())  # (D,C) → (C,D)
        for src, dst in [("receptance", "receptance"), ("key", "key"), ("value", "value"), ("output", "output")]:
            out.matrix(f"{p}time_mix_{dst}.weight", require(t, f"{b}att.{src}.weight", (C, C)))
        out.f32(f"{p}channel_mix_lerp_k.weight", require(t, f"{b}ffn.x_k", (C,)))
        out.matrix(f"{p}channel_mix_key.weight", require(t, f"{b}ffn.key.weight", (F, C)))
        out.matrix(f"{p}channel_mix_value.weight", require(t, f"{b}ffn.value.weight", (C, F)))
