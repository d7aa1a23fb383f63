"""Real-shape F16 models with random weights, one per architecture, for the prefill profile and table.

    PYTHONPATH=. python benchmarks/make_prefill_models.py OUT_DIR [ARCH ...]   # default /tmp/pyrnn-bench-prefill

Writes OUT_DIR/<arch>.gguf for rwkv4, rwkv5, rwkv6, rwkv7, mamba, mamba2, retnet (or the ones named):
  rwkv7  RWKV-7 0.1B    C 768, 12 layers, vocab 65536, LoRA 64/64/32/128
  rwkv6  RWKV-6 (x060)  C 768, 12 layers, vocab 65536 (the 0.1B's shapes)
  rwkv5  RWKV-5.2       C 768, 12 layers, vocab 65536
  rwkv4  RWKV-4 169M    C 768, 12 layers, vocab 50277
  mamba  Mamba 130M     d 768, 24 layers, vocab 50280, d_state 16
  mamba2 Mamba-2 130M   d 768, 24 layers, vocab 50280, d_state 128, head dim 64, 1 group
  retnet RetNet "small" d 768, 12 layers, 3 heads (dk 256, as the paper's heads), value and FFN 1536, vocab 50280
     (torchscale has no official small size; this is the base shape scaled to the others' width).
Speed does not depend on the values. Needs torch, transformers and torchscale (benchmark-time only).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

ARCHS = ("rwkv4", "rwkv5", "rwkv6", "rwkv7", "mamba", "mamba2", "retnet")


def make(arch: str, out: Path) -> Path:
    from pyrnn.converters.convert import convert, convert_tensors

    dst = out / f"{arch}.gguf"
    if arch == "rwkv7":
        from tiny_models import rwkv7_state_dict
        convert_tensors(rwkv7_state_dict(768, 12, 65536, (64, 64, 32, 128), seed=1), None, dst, "f16")
    elif arch == "rwkv6":
        from tiny_models import rwkv6_state_dict
        convert_tensors(rwkv6_state_dict(768, 12, 65536, seed=1), None, dst, "f16")
    elif arch == "rwkv5":
        from test_rwkv5 import make_state_dict as rwkv5_sd
        sd = {k: v.float().numpy() for k, v in rwkv5_sd(768, 12, 65536, 52, seed=1).items()}
        convert_tensors(sd, None, dst, "f16")
    elif arch == "rwkv4":
        from test_rwkv4 import make_state_dict as rwkv4_sd
        sd = {k: v.float().numpy() for k, v in rwkv4_sd(768, 12, 50277, seed=1).items()}
        convert_tensors(sd, None, dst, "f16")
    elif arch in ("mamba", "mamba2"):
        from mamba_hf import random_mamba, random_mamba2
        model = (random_mamba(768, 24, 50280, seed=0) if arch == "mamba"
                 else random_mamba2(768, 24, 50280, seed=0, head_dim=64, n_groups=1, d_state=128))
        model.save_pretrained(out / f"{arch}-hf")
        convert(out / f"{arch}-hf", dst, "f16")
    elif arch == "retnet":
        from retnet_official import run_torchscale
        cfg = dict(decoder_embed_dim=768, decoder_value_embed_dim=1536, decoder_ffn_embed_dim=1536,
                   decoder_retention_heads=3, decoder_layers=12, vocab_size=50280, no_scale_embedding=True,
                   activation_fn="gelu")
        run_torchscale(out / "retnet.pt", cfg, [1, 2], seed=0)  # builds and saves the checkpoint
        convert(out / "retnet.pt", dst, "f16", config={"no_scale_embedding": True, "activation_fn": "gelu"})
    else:
        raise SystemExit(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHS)}")
    return dst


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else Path("/tmp/pyrnn-bench-prefill")
    out.mkdir(parents=True, exist_ok=True)
    for arch in argv[1:] or ARCHS:
        print("wrote", make(arch, out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
