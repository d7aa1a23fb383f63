"""Mamba-2 → GGUF "mamba2", llama.cpp's layout exactly (ARCHITECTURES.md §2.3, docs/FORMAT.md).

Input: a Hugging Face `Mamba2ForCausalLM` folder or a state-spaces `MambaLMHeadModel` checkpoint
with `ssm_cfg.layer == "Mamba2"` (renamed to the HF names by mamba_common.hf_names). Load-time
transforms, as llama.cpp's converter: `ssm_a` = −exp(A_log) as (H, 1); `ssm_d` as (H, 1); conv1d
squeezed to (Q, K); `ssm_norm.weight` reshaped to (G, D/G); `dt_bias` → `ssm_dt.bias`;
`output.weight` omitted when tied. `ssm.time_step_rank` holds the head count. No tokenizer keys yet.

The state size N and group count G are not recoverable from shapes alone (the conv width is
D + 2·G·N): N comes from the config (HF `state_size`, state-spaces `ssm_cfg.d_state`, default 128
as both libraries), and G = (conv width − D) / 2N, checked against the config's `n_groups` /
`ssm_cfg.ngroups` when present.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .mamba_common import (
    cfg,
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

ARCH = "mamba2"


def _check_options(config: dict[str, Any] | None) -> None:
    """Variants that llama.cpp's layout (and pyrnn) cannot express; no released checkpoint uses them."""
    if cfg(config, ("rmsnorm", "rms_norm"), True) is False:
        raise ValueError("config.json rmsnorm: expected true (gated RMSNorm), found false")
    if cfg(config, ("norm_before_gate",), False) is True:
        raise ValueError("config.json norm_before_gate: expected false (norm after the gate), found true")
    # time_step_limit / dt_limit clamps dt only in the reference's prefill path, never in step();
    # llama.cpp ignores it too. pyrnn follows step(): every release uses the no-op (0, inf).


def convert(tensors: dict[str, np.ndarray], config: dict[str, Any] | None, out: TensorOutput) -> None:
    t = hf_names(tensors)
    check_state_spaces_blocks(config)
    _check_options(config)
    V, C = shape(t, "backbone.embeddings.weight", 2)
    L = n_layers(t)
    m0 = "backbone.layers.0.mixer."
    (H,) = shape(t, m0 + "A_log", 1)
    Cm, D = shape(t, m0 + "out_proj.weight", 2)
    Q, _, K = shape(t, m0 + "conv1d.weight", 3)  # (Q, 1, K)
    W = shape(t, m0 + "in_proj.weight", 2)[0]
    N = int(cfg(config, ("state_size", "d_state"), 128))
    GN2 = Q - D
    if Cm != C or D % H != 0 or GN2 <= 0 or GN2 % (2 * N) != 0:
        raise ValueError(f"Mamba-2 shapes: expected out_proj (C={C}, D), D divisible by {H} heads and a conv width "
                         f"D + 2·G·N with N={N}; found out_proj ({Cm}, {D}), conv width {Q}")
    G = GN2 // (2 * N)
    G_cfg = cfg(config, ("n_groups", "ngroups"), None)
    if G_cfg is not None and int(G_cfg) != G:
        raise ValueError(f"config.json n_groups: expected {G} (from the conv1d width {Q}, d_inner {D}, "
                         f"state size {N}), found {G_cfg}")
    if H % G != 0:
        raise ValueError(f"Mamba-2 groups: expected a divisor of the {H} heads, found {G}")
    if W != 2 * D + GN2 + H:
        raise ValueError(f"checkpoint tensor {m0 + 'in_proj.weight'!r}: expected {2 * D + GN2 + H} rows "
                         f"[z, x, B, C, dt], found {W} (d_ssm < d_inner with an extra MLP is not supported)")
    if m0 + "D" in t and np.size(t[m0 + "D"]) != H:
        raise ValueError(f"checkpoint tensor {m0 + 'D'!r}: expected one value per head ({H}); "
                         "D_has_hdim=True is not supported")
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
    w.add_uint32(f"{ARCH}.ssm.time_step_rank", H)  # llama.cpp stores the head count here
    w.add_uint32(f"{ARCH}.ssm.group_count", G)
    w.add_float32(f"{ARCH}.attention.layer_norm_rms_epsilon", rms_eps(config))

    emb = require(t, "backbone.embeddings.weight", (V, C))
    out.matrix("token_embd.weight", emb)
    for i in range(L):
        m, p = f"backbone.layers.{i}.mixer.", f"blk.{i}."
        out.f32(f"{p}ssm_a", neg_exp(require(t, m + "A_log", (H, 1))))
        out.f32(f"{p}ssm_d", require(t, m + "D", (H, 1)))
        out.f32(f"{p}ssm_conv1d.bias", conv_bias(t, m + "conv1d.bias", Q))
        out.f32(f"{p}ssm_conv1d.weight", require(t, m + "conv1d.weight", (Q, K)))
        out.f32(f"{p}ssm_dt.bias", require(t, m + "dt_bias", (H,)))
        out.matrix(f"{p}ssm_in.weight", require(t, m + "in_proj.weight", (W, C)))
        out.f32(f"{p}ssm_norm.weight", require(t, m + "norm.weight", (D,)).reshape(G, D // G))
        out.matrix(f"{p}ssm_out.weight", require(t, m + "out_proj.weight", (C, D)))
        out.f32(f"{p}attn_norm.weight", require(t, f"backbone.layers.{i}.norm.weight", (C,)))
    out.f32("output_norm.weight", require(t, "backbone.norm_f.weight", (C,)))
    head = head_or_none(t, emb)
    if head is not None:
        out.matrix("output.weight", head)
