"""Mamba-1 → GGUF "mamba", llama.cpp's layout exactly (ARCHITECTURES.md §2.3, docs/FORMAT.md).

Input: a Hugging Face `MambaForCausalLM` folder or a state-spaces `MambaLMHeadModel` checkpoint
(renamed to the HF names by mamba_common.hf_names). Load-time transforms, as llama.cpp's
converter: `ssm_a` = −exp(A_log); conv1d (D, 1, K) squeezed to (D, K); `output.weight` omitted
when it equals the embedding (tied). No tokenizer keys are written yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .mamba_common import (
    check_state_spaces_blocks,
    conv_bias,
    head_or_none,
    hf_names,
    n_layers,
    neg_exp,
    reject_biases,
    require,
    rms_eps,
    shape,
)
from .output import TensorOutput

ARCH = "mamba"


def convert(tensors: dict[str, np.ndarray], config: dict[str, Any] | None, out: TensorOutput) -> None:
    t = hf_names(tensors)
    check_state_spaces_blocks(config)
    if config is not None and config.get("model_type") == "falcon_mamba":
        raise ValueError("config.json model_type: expected mamba, found falcon_mamba (FalconMamba is not supported)")
    V, C = shape(t, "backbone.embeddings.weight", 2)
    L = n_layers(t)
    m0 = "backbone.layers.0.mixer."
    D, N = shape(t, m0 + "A_log", 2)
    K = shape(t, m0 + "conv1d.weight", 3)[-1]  # (D, 1, K)
    R = shape(t, m0 + "dt_proj.weight", 2)[-1]
    reject_biases(t, L)

    w = out.writer
    w.add_uint32(f"{ARCH}.context_length", 2**20)  # unused: a recurrent model has no context limit
    w.add_uint32(f"{ARCH}.embedding_length", C)
    w.add_uint32(f"{ARCH}.feed_forward_length", 0)
    w.add_uint32(f"{ARCH}.attention.head_count", 0)
    w.add_uint32(f"{ARCH}.block_count", L)
    w.add_uint32(f"{ARCH}.ssm.conv_kernel", K)
    w.add_uint32(f"{ARCH}.ssm.inner_size", D)
    w.add_uint32(f"{ARCH}.ssm.state_size", N)
    w.add_uint32(f"{ARCH}.ssm.time_step_rank", R)
    w.add_float32(f"{ARCH}.attention.layer_norm_rms_epsilon", rms_eps(config))
    w.add_bool(f"{ARCH}.ssm.dt_b_c_rms", False)

    emb = require(t, "backbone.embeddings.weight", (V, C))
    out.matrix("token_embd.weight", emb)
    for i in range(L):
        m, p = f"backbone.layers.{i}.mixer.", f"blk.{i}."
        out.f32(f"{p}ssm_a", neg_exp(require(t, m + "A_log", (D, N))))
        out.f32(f"{p}ssm_d", require(t, m + "D", (D,)))
        out.f32(f"{p}ssm_conv1d.bias", conv_bias(t, m + "conv1d.bias", D))
        out.f32(f"{p}ssm_conv1d.weight", require(t, m + "conv1d.weight", (D, K)))
        out.f32(f"{p}ssm_dt.bias", require(t, m + "dt_proj.bias", (D,)))
        out.matrix(f"{p}ssm_dt.weight", require(t, m + "dt_proj.weight", (D, R)))
        out.matrix(f"{p}ssm_in.weight", require(t, m + "in_proj.weight", (2 * D, C)))
        out.matrix(f"{p}ssm_out.weight", require(t, m + "out_proj.weight", (C, D)))
        out.matrix(f"{p}ssm_x.weight", require(t, m + "x_proj.weight", (R + 2 * N, D)))
        out.f32(f"{p}attn_norm.weight", require(t, f"backbone.layers.{i}.norm.weight", (C,)))
    out.f32("output_norm.weight", require(t, "backbone.norm_f.weight", (C,)))
    head = head_or_none(t, emb)
    if head is not None:
        out.matrix("output.weight", head)
