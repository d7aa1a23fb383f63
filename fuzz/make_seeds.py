"""Writes the fuzz seed corpus: one tiny valid GGUF per architecture, tokenizer stripped.

    python fuzz/make_seeds.py fuzz/corpus/gguf       # needs torch, transformers, torchscale (like the tests)

Random checkpoints at the smallest shapes each converter accepts (V=16, one or two layers),
converted by pyrnn's own converters, then rewritten without the tokenizer keys (the fuzz target
loads models, not vocabularies) so that each seed stays a few KiB to a few tens of KiB: libFuzzer
mutates small inputs far more effectively. Types vary across seeds (f32, f16, q8_0, q4_0, bf16)
so every dequantization path is in the corpus."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pyrnn import _core  # noqa: E402
from pyrnn.converters.convert import convert  # noqa: E402
from pyrnn.gguf_writer import GGUFWriter, ValueType  # noqa: E402

V = 16


def strip_tokenizer(src: Path, dst: Path) -> None:
    """A copy of `src` without tokenizer.* keys (model loading does not read them)."""
    f = _core.GGUFFile(str(src))
    w = GGUFWriter(dst)
    for key in f.keys:
        if key.startswith("tokenizer."):
            continue
        vt, value = f.value_type(key), f.value(key)
        if vt.startswith("array["):
            w.add_array(key, value, ValueType[vt[6:-1].upper()])
        else:
            w.add_scalar(key, value, ValueType[vt.upper()]) if vt != "string" else w.add_string(key, value)
    for t in f.tensors:
        w.add_tensor(t["name"], t["shape"], t["type"], bytes(f.tensor_bytes(t["name"])))
    w.write()


def main(out: Path) -> None:
    import numpy as np
    import tiny_models as tm
    import torch
    from mamba_hf import random_mamba, random_mamba2
    from retnet_official import run_torchscale
    from test_rwkv4 import make_state_dict as rwkv4_sd
    from test_rwkv5 import make_state_dict as rwkv5_sd

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        jobs: list[tuple[str, Path, str, dict[str, Any]]] = []
        tm.save_safetensors(tm.rwkv7_state_dict(64, 1, V, (8, 8, 8, 8), 0), tmp / "rwkv7.safetensors")
        jobs.append(("rwkv7-q4_1", tmp / "rwkv7.safetensors", "q4_1", {}))
        tm.save_safetensors(tm.rwkv6_state_dict(64, 1, V, 0, lora=(8, 8)), tmp / "rwkv6.safetensors")
        jobs.append(("rwkv6-q8_0", tmp / "rwkv6.safetensors", "q8_0", {}))
        torch.save(rwkv4_sd(32, 1, V, 0), tmp / "rwkv4.pth")
        jobs.append(("rwkv4-q4_0", tmp / "rwkv4.pth", "q4_0", {}))
        torch.save(rwkv5_sd(64, 1, V, 2, 0), tmp / "rwkv5.pth")
        jobs.append(("rwkv5-bf16", tmp / "rwkv5.pth", "bf16", {}))
        random_mamba(32, 1, V, 0).save_pretrained(tmp / "mamba")
        jobs.append(("mamba-f32", tmp / "mamba", "f32", {}))
        random_mamba2(32, 1, V, 0, head_dim=16, n_groups=1, d_state=16).save_pretrained(tmp / "mamba2")
        jobs.append(("mamba2-q8_0", tmp / "mamba2", "q8_0", {}))
        cfg = dict(decoder_embed_dim=32, decoder_value_embed_dim=64, decoder_ffn_embed_dim=64,
                   decoder_retention_heads=2, decoder_layers=1, vocab_size=V, no_scale_embedding=True,
                   activation_fn="gelu")
        run_torchscale(tmp / "retnet.pt", cfg, [1, 2, 3], seed=0)
        jobs.append(("retnet-f16", tmp / "retnet.pt", "f16",
                     {"config": {"no_scale_embedding": True, "activation_fn": "gelu"}}))
        for name, src, out_type, extra in jobs:
            full = tmp / f"{name}.full.gguf"
            convert(src, full, out_type=out_type, **extra)
            strip_tokenizer(full, out / f"{name}.gguf")
            m = _core.Model(str(out / f"{name}.gguf"))
            state = np.empty(m.state_size, np.float32)
            m.init_state(state)
            m.forward([0], state)
            print(f"{name}: {(out / f'{name}.gguf').stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus" / "gguf"))
