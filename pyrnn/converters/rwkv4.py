"""RWKV-4 → GGUF "rwkv4", pyrnn's layout in llama.cpp's rwkv6 style (docs/FORMAT.md, "rwkv4").

Input names are BlinkDL's (`blocks.N.att.*`, ARCHITECTURES.md §1.1.1); Hugging Face
RwkvForCausalLM folders (transformers' RWKV-4, §1.1.4) are renamed to them first by `hf_to_blinkdl`.
Nothing is folded, rescaled or exponentiated: ln0 is stored as token_embd_norm and applied at run
time, `time_decay` is stored raw in f32 (the model computes w = −exp(time_decay) in fp32 at load, as
pip does), `time_first` raw in f32, and the token-shift mixes μ as the .pth holds them. So every
tensor of the .pth can be read back from the file exactly.

Tokenizer: RWKV-4 Pile/Raven models use the GPT-NeoX 20B BPE (50,277 ids), RWKV-4 World models the
World vocabulary. `write_tokenizer` picks NeoX for a 50,277-row embedding when no vocabulary is named;
convert.py passes a named `.json` (a tokenizer.json) to the BPE writer and anything else here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..gguf_writer import GGUFWriter
from .bpe_vocab import bundled_neox_tokenizer, write_bpe_tokenizer
from .output import TensorOutput
from .rwkv_common import n_layers, require, write_world_tokenizer

ARCH = "rwkv4"
NEOX_VOCAB_SIZE = 50277  # the 20B tokenizer's ids = the embedding rows of RWKV-4 Pile/Raven

_LAYER_KEYS = (
    "ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias",
    "att.time_decay", "att.time_first", "att.time_mix_k", "att.time_mix_v", "att.time_mix_r",
    "att.key.weight", "att.value.weight", "att.receptance.weight", "att.output.weight",
    "ffn.time_mix_k", "ffn.time_mix_r", "ffn.key.weight", "ffn.value.weight", "ffn.receptance.weight",
)


def _check_keys(t: dict[str, np.ndarray], L: int) -> None:
    """Refuse training-code variants pip cannot run either (ffnPre, tiny_att, pos_emb, ...)."""
    known = {"emb.weight", "blocks.0.ln0.weight", "blocks.0.ln0.bias", "ln_out.weight", "ln_out.bias", "head.weight"}
    known |= {f"blocks.{i}.{k}" for i in range(L) for k in _LAYER_KEYS}
    unknown = sorted(set(t) - known)
    if unknown:
        raise ValueError(f"checkpoint tensors {', '.join(unknown[:5])}: expected only the RWKV-4 keys pip runs, "
                         "found these too (a training-code variant: ffnPre, tiny_att or pos_emb?)")


def convert(t: dict[str, np.ndarray], out: TensorOutput) -> None:
    w = out.writer
    V, C = require(t, "emb.weight").shape
    L = n_layers(t)
    A = require(t, "blocks.0.att.key.weight").shape[0]
    F = require(t, "blocks.0.ffn.key.weight").shape[0]
    _check_keys(t, L)

    w.add_uint32(f"{ARCH}.context_length", 1048576)  # unused by a recurrent model; llama.cpp's dummy
    w.add_uint32(f"{ARCH}.embedding_length", C)
    w.add_uint32(f"{ARCH}.block_count", L)
    w.add_uint32(f"{ARCH}.feed_forward_length", F)
    w.add_float32(f"{ARCH}.attention.layer_norm_epsilon", 1e-5)

    out.matrix("token_embd.weight", require(t, "emb.weight", (V, C)))
    out.f32("token_embd_norm.weight", require(t, "blocks.0.ln0.weight", (C,)))
    out.f32("token_embd_norm.bias", require(t, "blocks.0.ln0.bias", (C,)))
    out.f32("output_norm.weight", require(t, "ln_out.weight", (C,)))
    out.f32("output_norm.bias", require(t, "ln_out.bias", (C,)))
    out.matrix("output.weight", require(t, "head.weight", (V, C)))
    for i in range(L):
        b, p = f"blocks.{i}.", f"blk.{i}."
        for src, dst in [("ln1", "attn_norm"), ("ln2", "attn_norm_2")]:
            out.f32(f"{p}{dst}.weight", require(t, f"{b}{src}.weight", (C,)))
            out.f32(f"{p}{dst}.bias", require(t, f"{b}{src}.bias", (C,)))
        for x in "kvr":
            out.f32(f"{p}time_mix_lerp_{x}.weight", require(t, f"{b}att.time_mix_{x}", (C,)))
        out.f32(f"{p}time_mix_decay.weight", require(t, f"{b}att.time_decay", (A,)))  # raw: w = −exp(·) at load
        out.f32(f"{p}time_mix_first.weight", require(t, f"{b}att.time_first", (A,)))
        for name in ("key", "value", "receptance"):
            out.matrix(f"{p}time_mix_{name}.weight", require(t, f"{b}att.{name}.weight", (A, C)))
        out.matrix(f"{p}time_mix_output.weight", require(t, f"{b}att.output.weight", (C, A)))
        for x in "kr":
            out.f32(f"{p}channel_mix_lerp_{x}.weight", require(t, f"{b}ffn.time_mix_{x}", (C,)))
        out.matrix(f"{p}channel_mix_key.weight", require(t, f"{b}ffn.key.weight", (F, C)))
        out.matrix(f"{p}channel_mix_value.weight", require(t, f"{b}ffn.value.weight", (C, F)))
        out.matrix(f"{p}channel_mix_receptance.weight", require(t, f"{b}ffn.receptance.weight", (C, C)))


def write_tokenizer(w: GGUFWriter, n_vocab: int, vocab_path: Path | None) -> None:
    """NeoX 20B BPE for a Pile/Raven-sized vocabulary when none is named; else the World vocabulary."""
    if vocab_path is None and n_vocab == NEOX_VOCAB_SIZE:
        write_bpe_tokenizer(w, n_vocab, bundled_neox_tokenizer())
    else:
        write_world_tokenizer(w, n_vocab, vocab_path)


_HF_MIX = re.compile(r"\.time_mix_(key|value|receptance)$")


def hf_to_blinkdl(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """RwkvForCausalLM (transformers) names → BlinkDL names; the values are identical (§1.1.4).

    transformers' `rescale_every` divides weights only inside a loaded model in eval mode; the saved
    tensors are unscaled, so nothing is undone here.
    """
    out: dict[str, np.ndarray] = {}
    for k, v in tensors.items():
        n = k.removeprefix("rwkv.")
        n = n.replace("embeddings.weight", "emb.weight").replace(".pre_ln.", ".ln0.")
        n = n.replace(".attention.", ".att.").replace(".feed_forward.", ".ffn.")
        n = _HF_MIX.sub(lambda m: f".time_mix_{m.group(1)[0]}", n)
        out[n] = v
    return out
