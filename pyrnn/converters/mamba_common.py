"""What the Mamba-1 and Mamba-2 converters share: which family a checkpoint is, its key names, its config.

Two layouts reach the converters (ARCHITECTURES.md §2.1.1, §2.1.6, §2.2.5):

- Hugging Face `MambaForCausalLM` / `Mamba2ForCausalLM` folders: `backbone.embeddings.weight`,
  `backbone.layers.N.{norm,mixer.*}`, `backbone.norm_f.weight`, `lm_head.weight` (often omitted: tied);
  config.json with `hidden_size`, `state_size`, `n_groups`, `layer_norm_epsilon`, ...
- state-spaces `MambaLMHeadModel` (`pytorch_model.bin` + config.json with `d_model`, `n_layer`,
  `ssm_cfg`): the same names except `backbone.embedding.weight`; `ssm_cfg.layer == "Mamba2"` marks
  Mamba-2. Mamba-Codestral's `model.backbone.*` prefix is stripped, as llama.cpp does.

Everything is renamed to the Hugging Face names first; dimensions come from tensor shapes, the
config only supplies what shapes cannot say (eps, Mamba-2's state size and group count).
"""

from __future__ import annotations

import math
import re
from types import ModuleType
from typing import Any

import numpy as np

_LAYER = re.compile(r"^backbone\.layers\.(\d+)\.")

# Hugging Face architectures[0] → Mamba version
HF_MAMBA = {"MambaForCausalLM": 1, "Mamba2ForCausalLM": 2}


def hf_names(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """state-spaces / Codestral key names → Hugging Face names (values untouched)."""
    out: dict[str, np.ndarray] = {}
    for k, v in tensors.items():
        n = k.removeprefix("model.") if k.startswith(("model.backbone.", "model.lm_head.")) else k
        if n == "backbone.embedding.weight":
            n = "backbone.embeddings.weight"
        out[n] = v
    return out


def is_state_spaces_config(config: dict[str, Any]) -> bool:
    """A state-spaces `MambaConfig` (config_mamba.py) rather than a Hugging Face one."""
    return "d_model" in config and "n_layer" in config and "hidden_size" not in config


def mamba_version(tensors: dict[str, np.ndarray], config: dict[str, Any] | None) -> int | None:
    """1 or 2 for a Mamba checkpoint (HF or state-spaces, with or without config.json), else None."""
    if config is not None:
        archs = config.get("architectures") or []
        if archs and archs[0] in HF_MAMBA:
            return HF_MAMBA[archs[0]]
        if not archs and config.get("model_type") in ("mamba", "mamba2"):
            return 2 if config["model_type"] == "mamba2" else 1
        if is_state_spaces_config(config) or (archs and archs[0] == "MambaLMHeadModel"):
            ssm_cfg = config.get("ssm_cfg") or {}
            return 2 if ssm_cfg.get("layer") == "Mamba2" else 1
        return None
    if any(k.endswith(".mixer.A_log") for k in tensors):  # a bare state-spaces pytorch_model.bin
        return 2 if any(k.endswith(".mixer.dt_bias") for k in tensors) else 1
    return None


def converter(tensors: dict[str, np.ndarray], config: dict[str, Any] | None) -> ModuleType | None:
    """The converter module (mamba or mamba2) for this checkpoint, or None when it is no Mamba."""
    version = mamba_version(tensors, config)
    if version is None:
        return None
    from . import mamba, mamba2

    return mamba if version == 1 else mamba2


def n_layers(tensors: dict[str, np.ndarray]) -> int:
    ids = [int(m.group(1)) for k in tensors if (m := _LAYER.match(k))]
    if not ids:
        raise ValueError("Mamba checkpoint: expected backbone.layers.N.* tensors, found none")
    return 1 + max(ids)


def shape(tensors: dict[str, np.ndarray], key: str, ndim: int) -> tuple[int, ...]:
    """The shape of tensor `key`, which must exist and have `ndim` dimensions."""
    if key not in tensors:
        raise ValueError(f"checkpoint tensor {key!r}: expected, found nothing")
    s = tuple(int(d) for d in np.shape(tensors[key]))
    if len(s) != ndim:
        raise ValueError(f"checkpoint tensor {key!r}: expected {ndim} dimensions, found shape {s}")
    return s


def require(tensors: dict[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The tensor `key` as float32 of exactly `shape` (size-1 dimensions may differ: conv1d (D,1,K) → (D,K))."""
    if key not in tensors:
        raise ValueError(f"checkpoint tensor {key!r}: expected, found nothing")
    a = np.asarray(tensors[key], dtype=np.float32)
    if a.size != math.prod(shape) or tuple(d for d in a.shape if d != 1) != tuple(d for d in shape if d != 1):
        raise ValueError(f"checkpoint tensor {key!r}: expected shape {shape}, found {a.shape}")
    return a.reshape(shape)


def reject_biases(tensors: dict[str, np.ndarray], L: int) -> None:
    """in_proj/out_proj biases (use_bias=True) have no place in llama.cpp's layout; no release uses them."""
    for i in range(L):
        for proj in ("in_proj", "out_proj"):
            key = f"backbone.layers.{i}.mixer.{proj}.bias"
            if key in tensors:
                raise ValueError(f"checkpoint tensor {key!r}: expected none (use_bias=False, as every release), "
                                 "found one; llama.cpp's layout has no projection biases")


def conv_bias(tensors: dict[str, np.ndarray], key: str, n: int) -> np.ndarray:
    """conv1d.bias, or zeros when the model has none (use_conv_bias=False): llama.cpp requires the tensor."""
    return require(tensors, key, (n,)) if key in tensors else np.zeros(n, np.float32)


def neg_exp(a_log: np.ndarray) -> np.ndarray:
    """A = −exp(A_log), correctly rounded to float32 (exp in float64), the same on every machine.

    llama.cpp's converter computes torch.exp in float32, whose last bit depends on torch's math
    library (MKL VML on x86); the two agree except for ~1% of elements, by one unit in the last place.
    """
    return (-np.exp(a_log.astype(np.float64))).astype(np.float32)


def cfg(config: dict[str, Any] | None, keys: tuple[str, ...], default: Any) -> Any:
    """The first of `keys` present (not None) in config or its state-spaces `ssm_cfg`, else `default`."""
    if config is None:
        return default
    ssm_cfg = config.get("ssm_cfg") or {}
    for k in keys:
        for src in (config, ssm_cfg):
            if src.get(k) is not None:
                return src[k]
    return default


def check_state_spaces_blocks(config: dict[str, Any] | None) -> None:
    """Reject state-spaces configs whose blocks are not plain RMSNorm + mixer (hybrids, MLPs, LayerNorm)."""
    if config is None:
        return
    if config.get("attn_layer_idx"):
        raise ValueError(f"config.json attn_layer_idx: expected none (pure Mamba), found {config['attn_layer_idx']}")
    if int(config.get("d_intermediate") or 0) > 0:
        raise ValueError(f"config.json d_intermediate: expected 0 (no MLP blocks), found {config['d_intermediate']}")
    if config.get("rms_norm") is False:
        raise ValueError("config.json rms_norm: expected true (RMSNorm), found false (LayerNorm is not supported)")


def rms_eps(config: dict[str, Any] | None) -> float:
    return float(cfg(config, ("layer_norm_epsilon", "rms_norm_eps", "norm_epsilon"), 1e-5))


def head_or_none(tensors: dict[str, np.ndarray], emb: np.ndarray) -> np.ndarray | None:
    """lm_head.weight when it differs from the embedding; None when tied (absent or equal), as llama.cpp."""
    if "lm_head.weight" not in tensors:
        return None
    head = require(tensors, "lm_head.weight", emb.shape)
    return None if np.array_equal(head, emb) else head
