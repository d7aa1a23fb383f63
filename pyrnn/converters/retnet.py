"""torchscale RetNet (`RetNetDecoder` state dicts) → GGUF "retnet" (docs/FORMAT.md, ARCHITECTURES.md §3).

    pyrnn convert retnet.pt -o retnet.gguf --config retnet.json  # {"no_scale_embedding": true, ...}

torchscale checkpoints carry no config. Everything the tensor shapes and buffers say is taken from
them: D and V (`embed_tokens.weight`), L, Dv (`v_proj`), F (`ffn.fc1`), H (`retnet_rel_pos.decay`),
`layernorm_embedding`, a tied output projection. Two settings change the math without leaving a
trace in the tensors and torchscale's two entry points default them differently (RetNetConfig vs
fairseq's `retnet_base_architecture`), so they must be given: `no_scale_embedding` (True: the
embedding is used as is; False: scaled by √D) and `activation_fn` of the GLU ("gelu", "swish",
"relu"). `layernorm_eps` defaults to 1e-6 (both entry points). The config uses RetNetConfig's own
names; a JSON file (`pyrnn convert --config retnet.json`) or a dict.

Supported: torchscale ≥ 5c89ffb (Sept 2023; pip torchscale 0.3.0): RMSNorm, no biases, GLU FFN,
pre-norm (`decoder_normalize_before`, forced by the default `subln=True`). Refused with a clear
error: the pre-Sept-2023 variant (LayerNorm, biases, subln FFN), post-norm/deepnorm, multiway,
MoE layers, and the fla RetNet layout (a different model: rotate-half RoPE, unnormalised state).
Keys may carry a prefix (fairseq's RetNetLanguageModel stores `decoder.layers.N…`).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from .output import TensorOutput
from .rwkv_common import require

ARCH = "retnet"

ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any], None]

# RetNetConfig's fields (torchscale 0.3.0 architecture/config.py); any other name is a typo.
CONFIG_FIELDS = frozenset("""
decoder_embed_dim decoder_value_embed_dim decoder_retention_heads decoder_ffn_embed_dim decoder_layers
decoder_normalize_before activation_fn dropout drop_path_rate activation_dropout no_scale_embedding
layernorm_embedding moe_freq moe_top1_expert moe_expert_count moe_gating_use_fp32
moe_eval_capacity_token_fraction moe_second_expert_policy moe_normalize_gate_prob_before_dropping use_xmoe
rel_pos_buckets max_rel_pos deepnorm subln multiway share_decoder_input_output_embed max_target_positions
no_output_layer layernorm_eps chunkwise_recurrent recurrent_chunk_size vocab_size checkpoint_activations fsdp
ddp_rank xpos_rel_pos xpos_scale_base
""".split())

ACTIVATIONS = {"gelu": "gelu", "swish": "silu", "silu": "silu", "relu": "relu"}

_Q_PROJ = re.compile(r"^(.*?)layers\.0\.retention\.q_proj\.")
_LAYER = re.compile(r"^layers\.(\d+)\.")


def is_retnet(tensors: Mapping[str, Any]) -> bool:
    """A torchscale RetNet state dict (any prefix): it has layers.0.retention.q_proj.*."""
    return any(_Q_PROJ.match(k) for k in tensors)


def read_config(config: ConfigSource) -> dict[str, Any]:
    """The RetNetConfig settings given: a JSON file, a mapping, or None (nothing given)."""
    if config is None:
        return {}
    if isinstance(config, Mapping):
        cfg = dict(config)
    else:
        path = Path(config)
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: expected a JSON object of RetNetConfig settings, found {e}") from None
        if not isinstance(cfg, dict):
            raise ValueError(f"{path}: expected a JSON object of RetNetConfig settings, found {type(cfg).__name__}")
    unknown = sorted(set(cfg) - CONFIG_FIELDS)
    if unknown:
        raise ValueError(f"RetNet config: expected RetNetConfig settings (e.g. no_scale_embedding, activation_fn), "
                         f"found unknown {', '.join(map(repr, unknown))}")
    return cfg


def _strip_prefix(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    prefixes = {m.group(1) for k in tensors if (m := _Q_PROJ.match(k))}
    if len(prefixes) != 1:
        raise ValueError(f"RetNet checkpoint: expected one model in the file, found key prefixes {sorted(prefixes)}")
    p = prefixes.pop()
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def _check_variant(t: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> None:
    keys = list(t)
    if any(k.startswith("layers.") and k.endswith(".bias") for k in keys) or any(".ffn_layernorm." in k for k in keys):
        raise ValueError("RetNet checkpoint: biases / ffn_layernorm found: the pre-Sept-2023 torchscale variant "
                         "(LayerNorm, biased projections, subln FFN) is not supported")
    if any(".retention.q_proj.A." in k for k in keys):
        raise ValueError("RetNet checkpoint: multiway projections (q_proj.A/B) found: multiway is not supported")
    if any(".moe_layer." in k for k in keys) or cfg.get("moe_freq", 0):
        raise ValueError("RetNet checkpoint: MoE layers are not supported")
    if "layer_norm.weight" not in t or cfg.get("deepnorm") or cfg.get("decoder_normalize_before") is False:
        raise ValueError("RetNet checkpoint: expected a pre-norm model (decoder_normalize_before, the final "
                         "layer_norm.weight), found post-norm/deepnorm, which is not supported")
    if cfg.get("no_output_layer"):
        raise ValueError("RetNet config no_output_layer: a model without an output projection makes no logits")


def _setting(cfg: Mapping[str, Any], key: str, inferred: int | None, what: str) -> int:
    """A dimension from the tensors, checked against the config when both say it; or the config's."""
    given = cfg.get(key)
    if inferred is None:
        if given is None:
            raise ValueError(f"RetNet config {key}: expected it ({what} is not in the checkpoint), found nothing")
        return int(given)
    if given is not None and int(given) != inferred:
        raise ValueError(f"RetNet config {key}: expected {inferred} ({what} in the checkpoint), found {given}")
    return inferred


def _required(cfg: Mapping[str, Any], key: str, why: str) -> Any:
    if key not in cfg:
        raise ValueError(f"RetNet config {key}: expected it to be given ({why}; pass --config with a JSON file "
                         f"such as {{\"no_scale_embedding\": true, \"activation_fn\": \"gelu\"}}), found nothing")
    return cfg[key]


def convert(tensors: Mapping[str, np.ndarray], out: TensorOutput, config: ConfigSource) -> None:
    """Write the retnet metadata and tensors of a torchscale state dict to `out`."""
    cfg = read_config(config)
    t = _strip_prefix(tensors)
    _check_variant(t, cfg)
    w = out.writer
    V, D = require(t, "embed_tokens.weight").shape
    L = 1 + max(int(m.group(1)) for k in t if (m := _LAYER.match(k)))
    Dv = require(t, "layers.0.retention.v_proj.weight").shape[0]
    F = require(t, "layers.0.ffn.fc1.weight").shape[0]
    decay = t.get("retnet_rel_pos.decay")
    H = _setting(cfg, "decoder_retention_heads", None if decay is None else int(decay.size), "retnet_rel_pos.decay")
    _setting(cfg, "decoder_embed_dim", int(D), "embed_tokens.weight")
    _setting(cfg, "vocab_size", int(V), "embed_tokens.weight")
    _setting(cfg, "decoder_layers", L, "layers.N")
    _setting(cfg, "decoder_value_embed_dim", int(Dv), "retention.v_proj.weight")
    _setting(cfg, "decoder_ffn_embed_dim", int(F), "ffn.fc1.weight")
    if H <= 0 or D % H or (D // H) % 2 or Dv % H:
        raise ValueError(f"RetNet heads: expected a count dividing embed dim {D} (to an even head size) and "
                         f"value dim {Dv}, found {H}")
    dk, dv = D // H, Dv // H
    no_scale = _required(cfg, "no_scale_embedding", "RetNetConfig defaults it to True, fairseq's RetNet to False")
    if not isinstance(no_scale, bool):
        raise ValueError(f"RetNet config no_scale_embedding: expected true or false, found {no_scale!r}")
    act = _required(cfg, "activation_fn", "RetNetConfig defaults it to gelu, fairseq's RetNet to swish")
    if act not in ACTIVATIONS:
        raise ValueError(f"RetNet config activation_fn: expected one of {', '.join(ACTIVATIONS)}, found {act!r}")
    eps = float(cfg.get("layernorm_eps", 1e-6))

    if decay is None:  # RetNetRelPos's buffers, as torchscale computes them (float32)
        decay = np.log(1 - 2 ** (-5 - np.arange(H, dtype=np.float32))).astype(np.float32)
    angle = t.get("retnet_rel_pos.angle")
    if angle is None:
        angle = (1.0 / (10000 ** np.linspace(0, 1, dk // 2, dtype=np.float32))).astype(np.float32).repeat(2)

    w.add_uint32(f"{ARCH}.embedding_length", D)
    w.add_uint32(f"{ARCH}.block_count", L)
    w.add_uint32(f"{ARCH}.feed_forward_length", F)
    w.add_uint32(f"{ARCH}.attention.head_count", H)
    w.add_uint32(f"{ARCH}.attention.key_length", dk)
    w.add_uint32(f"{ARCH}.attention.value_length", dv)
    w.add_float32(f"{ARCH}.attention.layer_norm_rms_epsilon", eps)
    w.add_float32(f"{ARCH}.embedding_scale", 1.0 if no_scale else math.sqrt(D))
    w.add_string(f"{ARCH}.feed_forward_activation", ACTIVATIONS[act])

    emb = require(t, "embed_tokens.weight", (V, D))
    out.matrix("token_embd.weight", emb)
    if "layernorm_embedding.weight" in t:
        out.f32("token_embd_norm.weight", require(t, "layernorm_embedding.weight", (D,)))
    out.f32("rope_angle.weight", require({"a": angle}, "a", (dk,)))
    out.f32("retention_decay.weight", require({"d": decay}, "d", (H,)))
    out.f32("output_norm.weight", require(t, "layer_norm.weight", (D,)))
    head = t.get("output_projection.weight")
    if head is not None and not np.array_equal(head, emb):  # tied (share_decoder_input_output_embed): omitted
        out.matrix("output.weight", require(t, "output_projection.weight", (V, D)))
    for i in range(L):
        b, p = f"layers.{i}.", f"blk.{i}."
        out.f32(f"{p}attn_norm.weight", require(t, f"{b}retention_layer_norm.weight", (D,)))
        for src, dst, shape in [("q_proj", "attn_q", (D, D)), ("k_proj", "attn_k", (D, D)),
                                ("v_proj", "attn_v", (Dv, D)), ("g_proj", "attn_gate", (Dv, D)),
                                ("out_proj", "attn_output", (D, Dv))]:
            out.matrix(f"{p}{dst}.weight", require(t, f"{b}retention.{src}.weight", shape))
        out.f32(f"{p}ffn_norm.weight", require(t, f"{b}final_layer_norm.weight", (D,)))
        # torchscale's GLU is fc2(act(fc1 x) ⊙ gate x): fc1 is the activated branch, llama.cpp's ffn_gate
        for src, dst, shape in [("fc1", "ffn_gate", (F, D)), ("gate", "ffn_up", (F, D)), ("fc2", "ffn_down", (D, F))]:
            out.matrix(f"{p}{dst}.weight", require(t, f"{b}ffn.{src}.weight", shape))
