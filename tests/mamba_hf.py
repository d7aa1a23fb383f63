"""The official references for Mamba-1/2 tests: random transformers models with realistic parameters.

    model = random_mamba(64, 2, 1000, seed=0)            # MambaForCausalLM, eval mode, fp32
    model.save_pretrained(folder)                         # safetensors, as the hub's -hf folders
    ref = run_hf(model, tokens)                           # logits stepped with the cache, and as one call

Parameters are set explicitly after construction, in the ranges trained models use (ARCHITECTURES.md
§2): A_log = log(1..d_state) + noise, D ~ N(1, 0.3²), dt bias = softplus⁻¹ of a log-uniform step in
[1e-3, 1e-1], norm weights N(1, 0.1²) (never exactly 1, so a skipped norm shows).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from shared_paths import interop
from transformers import Mamba2Config, Mamba2ForCausalLM, MambaConfig, MambaForCausalLM


def interop_fixture(name: str) -> Path:
    return interop(name)


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a − ref| over each row, relative to that row's logit span; the worst row."""
    span = ref.max(axis=-1) - ref.min(axis=-1)
    return float(np.max(np.abs(a - ref).max(axis=-1) / span))


def _inv_softplus_dt(g: torch.Generator, n: int) -> torch.Tensor:
    dt = torch.exp(torch.rand(n, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    return dt + torch.log(-torch.expm1(-dt))


def _realistic_common(model: torch.nn.Module, g: torch.Generator) -> None:
    for name, p in model.named_parameters():
        if name.endswith("norm.weight") or name.endswith("norm_f.weight"):
            p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
        elif name.endswith("conv1d.bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        elif name.endswith("embeddings.weight"):
            p.copy_(torch.randn(p.shape, generator=g))


@torch.no_grad()
def random_mamba(C: int, L: int, V: int, seed: int, d_state: int = 16) -> MambaForCausalLM:
    """A MambaForCausalLM (tied embeddings) with realistic SSM parameters."""
    cfg = MambaConfig(vocab_size=V, hidden_size=C, num_hidden_layers=L, state_size=d_state, expand=2,
                      conv_kernel=4, time_step_rank=math.ceil(C / 16), tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = MambaForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    _realistic_common(model, g)
    D = 2 * C
    for layer in model.backbone.layers:
        mx = layer.mixer
        mx.A_log.copy_(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).expand(D, -1)
                       + 0.3 * torch.randn(D, d_state, generator=g))
        mx.D.copy_(1 + 0.3 * torch.randn(D, generator=g))
        mx.dt_proj.bias.copy_(_inv_softplus_dt(g, D))
    return model


@torch.no_grad()
def random_mamba2(C: int, L: int, V: int, seed: int, head_dim: int, n_groups: int, d_state: int = 16,
                  chunk_size: int = 256) -> Mamba2ForCausalLM:
    """A Mamba2ForCausalLM (tied embeddings, gated RMSNorm after the gate) with realistic parameters."""
    D = 2 * C
    H = D // head_dim
    cfg = Mamba2Config(vocab_size=V, hidden_size=C, num_hidden_layers=L, state_size=d_state, expand=2,
                       conv_kernel=4, head_dim=head_dim, num_heads=H, n_groups=n_groups, chunk_size=chunk_size,
                       tie_word_embeddings=True, layer_norm_epsilon=1e-5)
    torch.manual_seed(seed)
    model = Mamba2ForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    _realistic_common(model, g)
    for layer in model.backbone.layers:
        mx = layer.mixer
        mx.A_log.copy_(torch.log(1 + 15 * torch.rand(H, generator=g)))  # A_init_range (1, 16)
        mx.D.copy_(1 + 0.3 * torch.randn(H, generator=g))
        mx.dt_bias.copy_(_inv_softplus_dt(g, H))
    return model


@torch.no_grad()
def run_hf(model: torch.nn.Module, tokens: list[int]) -> dict[str, Any]:
    """Logits stepped one token per call with the returned cache, logits of one call with all
    tokens, and the cache's (conv, ssm) states per layer after the stepped run."""
    cache = None
    steps = []
    for t in tokens:
        out = model(input_ids=torch.tensor([[t]]), cache=cache, use_cache=True)
        cache = out.cache
        steps.append(out.logits[0, -1].numpy().copy())
    seq = model(input_ids=torch.tensor([tokens]), use_cache=False).logits[0].numpy()
    states = [(layer.conv_states[0][0].numpy().copy(), layer.recurrent_states[0][0].numpy().copy())
              for layer in cache.layers]
    return {"logits_step": np.stack(steps), "logits_seq": seq, "states": states}


def pyrnn_state(states: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """HF cache states → pyrnn's layout: per layer [conv (ch, K−1): the newest K−1 columns | ssm]."""
    return np.concatenate([np.concatenate([conv[:, 1:].ravel(), ssm.ravel()]) for conv, ssm in states])


def save_state_spaces(model: torch.nn.Module, folder: Path) -> None:
    """The same weights as a state-spaces MambaLMHeadModel checkpoint: backbone.embedding.*, a
    materialised lm_head.weight, config.json with d_model/n_layer/ssm_cfg, torch.save'd pytorch_model.bin."""
    c = model.config
    sd = {k.replace("backbone.embeddings.", "backbone.embedding."): v.clone() for k, v in model.state_dict().items()}
    sd["lm_head.weight"] = sd["backbone.embedding.weight"].clone()
    if isinstance(model, Mamba2ForCausalLM):
        ssm_cfg = {"layer": "Mamba2", "d_state": c.state_size, "d_conv": c.conv_kernel, "expand": c.expand,
                   "headdim": c.head_dim, "ngroups": c.n_groups}
        pad = 16
    else:
        ssm_cfg = {"d_state": c.state_size, "d_conv": c.conv_kernel, "expand": c.expand}
        pad = 8
    config = {"d_model": c.hidden_size, "d_intermediate": 0, "n_layer": c.num_hidden_layers,
              "vocab_size": c.vocab_size, "ssm_cfg": ssm_cfg, "attn_layer_idx": [], "attn_cfg": {},
              "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
              "pad_vocab_size_multiple": pad, "tie_embeddings": True}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    torch.save(sd, folder / "pytorch_model.bin")
