"""`pyrnn convert`: a checkpoint (BlinkDL .pth, Hugging Face folder, .safetensors) → one GGUF file.

    convert("RWKV-x070-World-0.1B.pth", "rwkv7-0.1b-f16.gguf", out_type="f16")

The family and version come from the checkpoint (config.json's architectures, or the key names of a
.pth); the GGUF metadata then names the architecture explicitly. The file is written to a
temporary name and renamed only when complete.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..gguf_writer import GGUFWriter
from . import rwkv4, rwkv7
from .bpe_vocab import write_bpe_tokenizer
from .checkpoint import read_checkpoint
from .output import OUT_TYPES, TensorOutput
from .rwkv_common import detect_version, hf_to_blinkdl_v7, write_general, write_world_tokenizer

# general.file_type values (llama.cpp's LLAMA_FTYPE_*)
FILE_TYPES = {"f32": 0, "f16": 1, "bf16": 32}

# RWKV versions → converter module; each has ARCH and convert(tensors, out).
RWKV_CONVERTERS: dict[int, Any] = {4: rwkv4, 7: rwkv7}

# Hugging Face `architectures[0]` → (RWKV version, renaming to BlinkDL keys)
HF_RWKV: dict[str, tuple[int, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]]] = {
    "RwkvForCausalLM": (4, rwkv4.hf_to_blinkdl),
    "RWKV7ForCausalLM": (7, hf_to_blinkdl_v7),
}

Progress = Callable[[int, int, str], None]


def _family(tensors: dict[str, np.ndarray], config: dict[str, Any] | None) -> tuple[int, dict[str, np.ndarray]]:
    if config is not None:
        archs = config.get("architectures") or []
        name = archs[0] if archs else config.get("model_type", "?")
        if name not in HF_RWKV:
            raise ValueError(f"config.json architectures: expected one of {', '.join(HF_RWKV)}, found {name!r}")
        version, rename = HF_RWKV[name]
        return version, rename(tensors)
    return detect_version(tensors), tensors


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], out_type: str = "f16",
            vocab: str | os.PathLike[str] | None = None, progress: Progress | None = None) -> str:
    """Convert `src` to GGUF at `dst`; returns the architecture written."""
    if out_type not in OUT_TYPES:
        raise ValueError(f"--type: expected one of {', '.join(OUT_TYPES)}, found {out_type!r}")
    tensors, config = read_checkpoint(src)
    version, tensors = _family(tensors, config)
    if version not in RWKV_CONVERTERS:
        raise ValueError(f"RWKV-{version}: this converter is not implemented yet")
    module = RWKV_CONVERTERS[version]
    w = GGUFWriter(dst)
    write_general(w, module.ARCH, Path(src).stem, FILE_TYPES[out_type])
    module.convert(tensors, TensorOutput(w, out_type))
    n_vocab = int(tensors["emb.weight"].shape[0])
    vocab_path = Path(vocab) if vocab else None
    if vocab_path is None and config is not None and (Path(src) / "rwkv_vocab_v20230424.txt").is_file():
        vocab_path = Path(src) / "rwkv_vocab_v20230424.txt"
    if vocab_path is None and config is not None and (Path(src) / "tokenizer.json").is_file():
        vocab_path = Path(src) / "tokenizer.json"
    if vocab_path is not None and vocab_path.suffix == ".json":  # a Hugging Face BPE tokenizer.json
        write_bpe_tokenizer(w, n_vocab, vocab_path)
    else:  # the module's default (RWKV-4: NeoX for 50,277 ids), else the World vocabulary
        getattr(module, "write_tokenizer", write_world_tokenizer)(w, n_vocab, vocab_path)
    w.write(progress)
    return str(module.ARCH)


def progress_bar(stream: Any = None) -> Progress:
    """A one-line progress bar on stderr: bytes written and the tensor being written."""
    out = stream or sys.stderr

    def show(done: int, total: int, name: str) -> None:
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        out.write(f"\r[{bar:<30}] {frac:6.1%} {done / 2**20:8.1f}/{total / 2**20:.1f} MiB  {name[:40]:<40}")
        if done >= total:
            out.write("\n")
        out.flush()

    return show
