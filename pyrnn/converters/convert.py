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
from . import retnet, rwkv7
from .checkpoint import read_checkpoint
from .output import OUT_TYPES, TensorOutput
from .rwkv_common import detect_version, hf_to_blinkdl_v7, write_general, write_world_tokenizer

# general.file_type values (llama.cpp's LLAMA_FTYPE_*)
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "bf16": 32}

# RWKV versions → converter module; each has ARCH and convert(tensors, out).
RWKV_CONVERTERS: dict[int, Any] = {7: rwkv7}

# Hugging Face `architectures[0]` → (RWKV version, renaming to BlinkDL keys)
HF_RWKV: dict[str, tuple[int, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]]] = {
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
    if retnet.is_retnet(tensors):  # torchscale RetNet: its own family, configured by `config`
        return retnet.convert_checkpoint(tensors, config, dst, out_type, FILE_TYPES[out_type], Path(src).stem, progress)
    vocab_path = Path(vocab) if vocab else None
    if vocab_path is None and hf_config is not None and (Path(src) / "rwkv_vocab_v20230424.txt").is_file():
        vocab_path = Path(src) / "rwkv_vocab_v20230424.txt"
    return convert_tensors(tensors, hf_config, dst, out_type, vocab_path, Path(src).stem, progress)


def convert_tensors(tensors: dict[str, np.ndarray], config: dict[str, Any] | None, dst: str | os.PathLike[str],
                    out_type: str = "f16", vocab: Path | None = None, name: str = "model",
                    progress: Progress | None = None) -> str:
    """Convert a checkpoint already in memory ({key: array} and its HF config or None; for a
    torchscale RetNet, its RetNetConfig settings)."""
    if retnet.is_retnet(tensors):
        return retnet.convert_checkpoint(tensors, config, dst, out_type, FILE_TYPES[out_type], name, progress)
    version, tensors = _family(tensors, config)
    if version not in RWKV_CONVERTERS:
        raise ValueError(f"RWKV-{version}: this converter is not implemented yet")
    module = RWKV_CONVERTERS[version]
    w = GGUFWriter(dst)
    write_general(w, module.ARCH, name, FILE_TYPES[out_type])
    module.convert(tensors, TensorOutput(w, out_type))
    write_world_tokenizer(w, int(tensors["emb.weight"].shape[0]), vocab)
    w.write(progress)
    return str(module.ARCH)


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
