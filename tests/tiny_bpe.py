"""A tiny random RWKV-7 with the GPT-NeoX BPE vocabulary (first 300 ids: every byte, so any text round-trips)."""

from __future__ import annotations

from pathlib import Path

from tiny_models import rwkv7_state_dict, save_safetensors


def tiny_rwkv7_bpe_gguf(tmp: Path, seed: int = 0) -> Path:
    """C=128, 2 layers, V=300, f32; the tokenizer is pyrnn/data/20B_tokenizer.json cut to 300 ids."""
    from pyrnn.converters.bpe_vocab import bundled_neox_tokenizer
    from pyrnn.converters.convert import convert

    src = save_safetensors(rwkv7_state_dict(128, 2, 300, (32, 32, 32, 32), seed), tmp / f"bpe-{seed}.safetensors")
    out = tmp / f"rwkv7-bpe-{seed}.gguf"
    convert(src, out, out_type="f32", vocab=bundled_neox_tokenizer())
    return out
