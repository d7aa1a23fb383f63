"""Builds a random torchscale RetNetDecoder, saves its state dict, and runs torchscale on it, in a subprocess.

    ref = run_torchscale(pth_path, config={"decoder_embed_dim": 128, ...}, tokens=[1, 2, 3], seed=0)
    ref["logits_step"]    # (n, V): recurrent_forward, one token per call with incremental_state carried
    ref["logits_par"]     # (n, V): parallel_forward over the whole sequence
    ref["logits_chunk"]   # (n, V): chunk_recurrent_forward (config "recurrent_chunk_size", padded)
    ref["kv_0"], ref["scale_0"] ...   # layer i's incremental state after the n steps:
                                      # prev_key_value (H, dv, dk) and scale (H)

The model is torchscale's own `RetNetDecoder(RetNetConfig(**config), embed_tokens=nn.Embedding(V, D))`,
randomly initialised by torchscale, then made more like a trained model: RMSNorm weights away from 1,
q/k/v/g projections at xavier gain 1 (torchscale initialises them at 2^-2.5, which leaves the
retention nearly uniform). `torch.save(model.state_dict(), pth)` writes the checkpoint.

A subprocess keeps torchscale's imports out of the test process: torchscale imports timm (for
DropPath, unused at drop_path_rate 0), and timm imports torchvision, which this machine's CPU-only
torch cannot load; a stand-in `timm.models.layers.drop_path` is registered in the child only when
timm is not importable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np


def run_torchscale(pth: Path, config: dict[str, Any], tokens: list[int], seed: int) -> dict[str, np.ndarray]:
    out = pth.with_suffix(".official.npz")
    subprocess.run(
        [sys.executable, __file__, str(pth), json.dumps(config), json.dumps(tokens), str(seed), str(out)],
        check=True, capture_output=True, text=True,
    )
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def _timm_stand_in() -> None:
    try:
        import timm.models.layers  # noqa: F401
    except Exception:  # absent, or present but unable to import torchvision
        import types

        def drop_path(x: Any, drop_prob: float = 0.0, training: bool = False) -> Any:
            if drop_prob:
                raise NotImplementedError("drop_path stand-in: only drop_path_rate 0 is supported")
            return x

        for name in ("timm", "timm.models", "timm.models.layers"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["timm.models.layers"].drop_path = drop_path  # type: ignore[attr-defined]


def _main(pth: str, config_json: str, tokens_json: str, seed: str, out: str) -> None:
    import torch

    _timm_stand_in()
    from torchscale.architecture.config import RetNetConfig
    from torchscale.architecture.retnet import RetNetDecoder

    torch.set_num_threads(1)
    torch.manual_seed(int(seed))
    cfg = json.loads(config_json)
    chunk = cfg.pop("recurrent_chunk_size", 16)
    D, V = cfg["decoder_embed_dim"], cfg["vocab_size"]

    def build(**extra: Any) -> RetNetDecoder:
        emb = torch.nn.Embedding(V, D)
        return RetNetDecoder(RetNetConfig(**cfg, **extra), embed_tokens=emb).eval()

    model = build()
    with torch.no_grad():
        emb_std = 1.0 if cfg.get("no_scale_embedding", True) else D**-0.5  # fairseq's init when scaled
        model.embed_tokens.weight.normal_(0.0, emb_std)
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("layer_norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif any(f"retention.{x}_proj" in name for x in "qkvg"):
                torch.nn.init.xavier_uniform_(p, gain=1.0)
    sd = model.state_dict()
    torch.save(sd, pth)

    tokens = json.loads(tokens_json)
    ids = torch.tensor([tokens])
    result: dict[str, np.ndarray] = {}
    with torch.no_grad():
        state: dict[Any, Any] = {}
        steps = []
        for i in range(len(tokens)):
            logits, _ = model(ids[:, : i + 1], incremental_state=state)
            steps.append(logits[0, -1].numpy().copy())
        result["logits_step"] = np.stack(steps)
        result["logits_par"] = model(ids)[0][0].numpy()
        chunked = build(chunkwise_recurrent=True, recurrent_chunk_size=chunk)
        chunked.load_state_dict(sd)
        result["logits_chunk"] = chunked(ids)[0][0].numpy()
    for i in range(cfg["decoder_layers"]):
        result[f"kv_{i}"] = state[i]["prev_key_value"][0].numpy()
        result[f"scale_{i}"] = state[i]["scale"].numpy()
    np.savez(out, **result)


if __name__ == "__main__":
    _main(*sys.argv[1:6])
