"""Real-shape models with random weights for the speed tables (speed does not depend on the values).

    python benchmarks/make_models.py OUT_DIR          # writes rwkv7-0.1b-*.gguf, mamba-130m-*.gguf, rwkv4-169m-*.gguf

Shapes: RWKV-7 0.1B (C=768, 12 layers, vocab 65536, LoRA 64/64/32/128), Mamba 130M (d 768, 24
layers, vocab 50280, d_state 16), RWKV-4 169M (C=768, 12 layers, vocab 50277). Each in F16, Q8_0
and Q4_0, converted by pyrnn's own converter. Needs torch + transformers (benchmark-time only).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TYPES = ("f16", "q8_0", "q4_0")


def main(out: Path) -> None:
    import torch
    from tiny_models import rwkv7_state_dict
    from transformers import MambaConfig, MambaForCausalLM

    from pyrnn.converters.convert import convert, convert_tensors
    from pyrnn.quantize import quantize_file

    out.mkdir(parents=True, exist_ok=True)

    def variants(base: Path, name: str) -> None:
        for t in TYPES[1:]:
            quantize_file(base, out / f"{name}-{t}.gguf", t)
            print("wrote", out / f"{name}-{t}.gguf", flush=True)

    f16 = out / "rwkv7-0.1b-f16.gguf"
    convert_tensors(rwkv7_state_dict(768, 12, 65536, (64, 64, 32, 128), seed=1), None, f16, "f16")
    variants(f16, "rwkv7-0.1b")

    torch.manual_seed(0)
    cfg = MambaConfig(hidden_size=768, num_hidden_layers=24, vocab_size=50280, state_size=16,
                      tie_word_embeddings=True)
    MambaForCausalLM(cfg).save_pretrained(out / "mamba-130m-hf")
    f16 = out / "mamba-130m-f16.gguf"
    convert(out / "mamba-130m-hf", f16, "f16")
    variants(f16, "mamba-130m")

    from test_rwkv4 import make_state_dict

    sd = {k: v.float().numpy() for k, v in make_state_dict(768, 12, 50277, seed=1).items()}
    f16 = out / "rwkv4-169m-f16.gguf"
    convert_tensors(sd, None, f16, "f16")
    variants(f16, "rwkv4-169m")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pyrnn-bench"))
