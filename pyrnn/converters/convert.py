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
from . import retnet, rwkv4, rwkv5, rwkv6, rwkv7
from .bpe_vocab import bundled_neox_tokenizer, write_bpe_tokenizer
from .checkpoint import read_checkpoint
from .mamba_common import converter as mamba_converter
from .output import OUT_TYPES, TensorOutput
from .rwkv_common import detect_version, hf_to_blinkdl_v7, write_general, write_world_tokenizer

# general.file_type values (llama.cpp's LLAMA_FTYPE_*)
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "bf16": 32}

# RWKV versions → converter module; each has ARCH and convert(tensors, out).
RWKV_CONVERTERS: dict[int, Any] = {4: rwkv4, 5: rwkv5, 6: rwkv6, 7: rwkv7}

# Hugging Face `architectures[0]` → (RWKV version, renaming to BlinkDL keys)
HF_RWKV: dict[str, tuple[int, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]]] = {
    "RwkvForCausalLM": (4, rwkv4.hf_to_blinkdl),
    "Rwkv5ForCausalLM": (5, rwkv5.hf_to_blinkdl_v5),
    "Rwkv6ForCausalLM": (6, rwkv6.hf_to_blinkdl_v6),
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
            vocab: str | os.PathLike[str] | None = None, progress: Progress | None = None,
            config: retnet.ConfigSource = None) -> str:
    """Convert `src` to GGUF at `dst`; returns the architecture written. `config`: settings for a
    checkpoint that carries none (torchscale RetNet: a JSON file or dict of RetNetConfig names)."""
    if out_type not in OUT_TYPES:
        raise ValueError(f"--type: expected one of {', '.join(OUT_TYPES)}, found {out_type!r}")
    tensors, hf_config = read_checkpoint(src)
    vocab_path = Path(vocab) if vocab else None
    for name in ("rwkv_vocab_v20230424.txt", "tokenizer.json"):  # a folder's own tokenizer, World first
        if vocab_path is None and hf_config is not None and (Path(src) / name).is_file():
            vocab_path = Path(src) / name
    return convert_tensors(tensors, hf_config, dst, out_type, vocab_path, Path(src).stem, progress, config)


def _embedding_rows(w: GGUFWriter) -> int:
    """V, from the token_embd.weight the converter wrote (row-major shape (V, d_model))."""
    for t in w.tensors:
        if t.name == "token_embd.weight":
            return t.shape[0]
    raise ValueError("converter wrote no token_embd.weight")


def convert_tensors(tensors: dict[str, np.ndarray], config: dict[str, Any] | None, dst: str | os.PathLike[str],
                    out_type: str = "f16", vocab: Path | None = None, name: str = "model",
                    progress: Progress | None = None, settings: retnet.ConfigSource = None) -> str:
    """Convert a checkpoint already in memory: {key: array}, its HF config (or None), and for a
    torchscale RetNet its RetNetConfig `settings`. The family is told by config.json or the keys."""
    w = GGUFWriter(dst)
    ssm = mamba_converter(tensors, config)  # Mamba-1/2 (HF or state-spaces layout), else None
    if retnet.is_retnet(tensors):
        arch = retnet.ARCH
        write_general(w, arch, name, FILE_TYPES[out_type])
        retnet.convert(tensors, TensorOutput(w, out_type), settings)
    elif ssm is not None:
        arch = ssm.ARCH
        write_general(w, arch, name, FILE_TYPES[out_type])
        ssm.convert(tensors, config, TensorOutput(w, out_type))
    else:
        version, tensors = _family(tensors, config)
        if version not in RWKV_CONVERTERS:
            raise ValueError(f"RWKV-{version}: this converter is not implemented yet")
        module = RWKV_CONVERTERS[version]
        arch = module.ARCH
        write_general(w, arch, name, FILE_TYPES[out_type])
        module.convert(tensors, TensorOutput(w, out_type))
        if vocab is None or vocab.suffix != ".json":
            # the module's default (RWKV-4: NeoX for 50,277 ids), else the World vocabulary
            getattr(module, "write_tokenizer", write_world_tokenizer)(w, _embedding_rows(w), vocab)
            w.write(progress)
            return str(arch)
    # byte-level BPE: a tokenizer.json given or found beside the checkpoint, else GPT-NeoX 20B (the
    # vocabulary of Pile-trained Mamba and RWKV-4; RetNet checkpoints name none)
    write_bpe_tokenizer(w, _embedding_rows(w), vocab if vocab is not None else bundled_neox_tokenizer())
    w.write(progress)
    return str(arch)


def progress_bar(stream: Any = None, min_interval: float = 0.1) -> Progress:
    """A one-line progress bar on stderr (bytes written, the tensor being written), redrawn at most
    every `min_interval` seconds and once at the end."""
    import time

    out = stream or sys.stderr
    last = [0.0]

    def show(done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < min_interval:
            return
        last[0] = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        out.write(f"\r[{bar:<30}] {frac:6.1%} {done / 2**20:8.1f}/{total / 2**20:.1f} MiB  {name[:40]:<40}")
        if done >= total:
            out.write("\n")
        out.flush()

    return show
