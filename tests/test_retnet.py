"""RetNet: pyrnn equals torchscale 0.3.0 (RetNetDecoder: recurrent, parallel and chunkwise forwards) on
random checkpoints saved with torch.save; the state matches torchscale's incremental state; the
chunkwise prefill equals single steps; the converter infers what the tensors say and asks for the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pyrnn
from pyrnn import _core
from pyrnn.cli import main as cli_main
from pyrnn.converters.convert import convert, convert_tensors
from pyrnn.converters.torch_pickle import load_pth

pytest.importorskip("torch", reason="the torchscale reference needs PyTorch (README test command)")
pytest.importorskip("torchscale", reason="the reference implementation is pip torchscale==0.3.0")
from retnet_official import run_torchscale  # noqa: E402
from tiny_models import assert_prefill_lengths_equal_steps  # noqa: E402

N_TOKENS = 80  # more than one 64-token chunk

# (RetNetConfig settings, seed). A: RetNetConfig's defaults (gelu, no embedding scale); B: fairseq's
# (swish, ×√D) with layernorm_embedding and a value head size of 108; C: 4 heads of dk 16, tied output.
CONFIGS: list[dict[str, Any]] = [
    dict(decoder_embed_dim=128, decoder_value_embed_dim=256, decoder_ffn_embed_dim=256, decoder_retention_heads=2,
         decoder_layers=2, vocab_size=1000, no_scale_embedding=True, activation_fn="gelu"),
    dict(decoder_embed_dim=256, decoder_value_embed_dim=432, decoder_ffn_embed_dim=432, decoder_retention_heads=4,
         decoder_layers=3, vocab_size=1531, no_scale_embedding=False, activation_fn="swish", layernorm_embedding=True),
    dict(decoder_embed_dim=64, decoder_value_embed_dim=128, decoder_ffn_embed_dim=192, decoder_retention_heads=4,
         decoder_layers=4, vocab_size=1200, no_scale_embedding=True, activation_fn="gelu",
         share_decoder_input_output_embed=True),
]


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a − ref| over each row, relative to that row's logit span; the worst row."""
    span = ref.max(axis=-1) - ref.min(axis=-1)
    return float(np.max(np.abs(a - ref).max(axis=-1) / span))


def user_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """What a user passes with --config: only what the tensors cannot say."""
    return {k: cfg[k] for k in ("no_scale_embedding", "activation_fn")}


def split_state(s: np.ndarray, cfg: dict[str, Any]) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """pyrnn's state → (position, [(S (H, dv, dk), scale (H)) per layer])."""
    H = cfg["decoder_retention_heads"]
    dk, dv = cfg["decoder_embed_dim"] // H, cfg["decoder_value_embed_dim"] // H
    per = H * dv * dk + H
    assert s.size == 1 + cfg["decoder_layers"] * per
    layers = []
    for i in range(cfg["decoder_layers"]):
        o = 1 + i * per
        layers.append((s[o:o + H * dv * dk].reshape(H, dv, dk), s[o + H * dv * dk:o + per]))
    return int(s[:1].view(np.uint32)[0]), layers


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, Any], Path, dict[str, np.ndarray]]]:
    """Each config: its checkpoint (saved by torchscale's side), f32 GGUF, and torchscale's outputs."""
    out = []
    for i, cfg in enumerate(CONFIGS):
        d = tmp_path_factory.mktemp(f"retnet{i}")
        tokens = np.random.default_rng(i).integers(0, cfg["vocab_size"], N_TOKENS).tolist()
        ref = run_torchscale(d / "retnet.pt", cfg, tokens, seed=i)
        ref["tokens"] = np.array(tokens)
        convert(d / "retnet.pt", d / "retnet.gguf", out_type="f32", config=user_config(cfg))
        out.append((cfg, d, ref))
    return out


@pytest.mark.parametrize("which", range(len(CONFIGS)))
def test_matches_torchscale(models: list[Any], which: int) -> None:
    """Logits for 80 tokens, stepped and as one sequence, within 1e-4 of the logit span of torchscale's
    recurrent, parallel and chunkwise forwards; the state equals torchscale's incremental state."""
    cfg, d, ref = models[which]
    tokens = ref["tokens"].tolist()
    m = _core.Model(str(d / "retnet.gguf"))
    assert (m.arch, m.n_vocab, m.n_embd, m.n_layer) == ("retnet", cfg["vocab_size"], cfg["decoder_embed_dim"],
                                                        cfg["decoder_layers"])
    s = np.zeros(m.state_size, np.float32)
    m.init_state(s)
    assert not s.any()
    steps = np.stack([m.forward([t], s) for t in tokens])
    for name in ("logits_step", "logits_par", "logits_chunk"):
        assert rel_err(steps, ref[name]) < 1e-4, name
    pos, layers = split_state(s, cfg)
    assert pos == N_TOKENS
    for i, (S, scale) in enumerate(layers):
        np.testing.assert_allclose(S, ref[f"kv_{i}"], rtol=0, atol=1e-5 * np.abs(ref[f"kv_{i}"]).max())
        np.testing.assert_allclose(scale, ref[f"scale_{i}"], rtol=1e-6)

    s2 = np.zeros(m.state_size, np.float32)
    seq = m.forward(tokens, s2, all_logits=True)
    for name in ("logits_step", "logits_par", "logits_chunk"):
        assert rel_err(seq, ref[name]) < 1e-4, name
    assert split_state(s2, cfg)[0] == N_TOKENS
    np.testing.assert_allclose(s2, s, rtol=0, atol=1e-5 * np.abs(s).max())


def test_prefill_equals_steps_and_state_continues(models: list[Any]) -> None:
    """Chunkwise prefill over 150 tokens (3 chunks) equals 150 single steps; a state saved mid-sequence
    (also through State bytes) continues bit-exactly."""
    cfg, d, _ = models[1]
    m = _core.Model(str(d / "retnet.gguf"))
    tokens = np.random.default_rng(7).integers(0, cfg["vocab_size"], 150).tolist()
    assert_prefill_lengths_equal_steps(m, tokens)
    s_seq = np.zeros(m.state_size, np.float32)
    all_seq = m.forward(tokens, s_seq, all_logits=True)
    s_step = np.zeros(m.state_size, np.float32)
    all_step = np.stack([m.forward([t], s_step) for t in tokens])
    assert rel_err(all_seq, all_step) < 1e-5
    assert split_state(s_seq, cfg)[0] == split_state(s_step, cfg)[0] == 150
    np.testing.assert_allclose(s_seq, s_step, rtol=0, atol=1e-5 * np.abs(s_step).max())

    # prefill in uneven pieces (a chunk boundary inside a call, calls starting mid-chunk) = one call
    s_parts = np.zeros(m.state_size, np.float32)
    parts = [m.forward(tokens[a:b], s_parts, all_logits=True) for a, b in [(0, 3), (3, 70), (70, 149), (149, 150)]]
    assert rel_err(np.concatenate(parts), all_step) < 1e-5

    model = pyrnn.load(d / "retnet.gguf")
    st = model.new_state()
    model.forward(tokens[:70], st)
    saved = pyrnn.State.from_bytes(model, bytes(st))
    a = model.forward(tokens[70:], st, all_logits=True)
    b = model.forward(tokens[70:], saved, all_logits=True)
    assert np.array_equal(a, b) and np.array_equal(st.data, saved.data)


def test_f16_output(models: list[Any], tmp_path: Path) -> None:
    """An f16 conversion stays within f16 rounding of the f32 model and is smaller."""
    cfg, d, ref = models[0]
    convert(d / "retnet.pt", tmp_path / "f16.gguf", out_type="f16", config=user_config(cfg))
    m = _core.Model(str(tmp_path / "f16.gguf"))
    logits = m.forward(ref["tokens"].tolist(), np.zeros(m.state_size, np.float32), all_logits=True)
    assert rel_err(logits, ref["logits_step"]) < 1e-2
    def weight_bytes(path: Path) -> int:  # tensor data only: the tokenizer is the same in both files
        return sum(t["n_bytes"] for t in pyrnn.GGUFFile(str(path)).tensors)

    assert weight_bytes(tmp_path / "f16.gguf") < 0.6 * weight_bytes(d / "retnet.gguf")


def test_file_layout(models: list[Any]) -> None:
    """The metadata and tensor names of docs/FORMAT.md; a tied output projection is not stored twice."""
    for cfg, d, _ in models:
        f = pyrnn.GGUFFile(str(d / "retnet.gguf"))
        D, H, L = cfg["decoder_embed_dim"], cfg["decoder_retention_heads"], cfg["decoder_layers"]
        assert f.value("general.architecture") == "retnet"
        assert f.value("retnet.attention.head_count") == H
        assert f.value("retnet.attention.key_length") == D // H
        assert f.value("retnet.attention.value_length") == cfg["decoder_value_embed_dim"] // H
        assert f.value("retnet.feed_forward_activation") == {"gelu": "gelu", "swish": "silu"}[cfg["activation_fn"]]
        scale = 1.0 if cfg["no_scale_embedding"] else D**0.5
        assert f.value("retnet.embedding_scale") == pytest.approx(scale, rel=1e-7)
        names = {t["name"] for t in f.tensors}
        assert ("output.weight" in names) != cfg.get("share_decoder_input_output_embed", False)
        assert ("token_embd_norm.weight" in names) == cfg.get("layernorm_embedding", False)
        per_layer = {f"blk.{L - 1}.{n}.weight" for n in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_gate",
                                                        "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
        assert per_layer | {"token_embd.weight", "output_norm.weight", "rope_angle.weight",
                            "retention_decay.weight"} <= names


def test_prefixed_keys_and_missing_buffers(models: list[Any], tmp_path: Path) -> None:
    """fairseq's `decoder.` prefix converts to the same model; without the rel-pos buffers the converter
    computes them (given the head count) and the logits are unchanged."""
    cfg, d, ref = models[0]
    sd = load_pth(d / "retnet.pt")
    tokens = ref["tokens"].tolist()[:20]
    prefixed = {f"decoder.{k}": v for k, v in sd.items()}
    convert_tensors(prefixed, None, tmp_path / "p.gguf", out_type="f32", settings=user_config(cfg))
    bare = {k: v for k, v in sd.items() if not k.startswith("retnet_rel_pos.")}
    with pytest.raises(ValueError, match="decoder_retention_heads"):
        convert_tensors(bare, None, tmp_path / "b.gguf", out_type="f32", settings=user_config(cfg))
    convert_tensors(bare, None, tmp_path / "b.gguf", out_type="f32",
                    settings=user_config(cfg) | {"decoder_retention_heads": 2})
    for name in ("p.gguf", "b.gguf"):
        m = _core.Model(str(tmp_path / name))
        logits = m.forward(tokens, np.zeros(m.state_size, np.float32), all_logits=True)
        assert rel_err(logits, ref["logits_step"][:20]) < 1e-4, name


def test_config_errors(models: list[Any], tmp_path: Path) -> None:
    """Settings the tensors cannot say are required, typos and contradictions are refused, unsupported
    variants are named; nothing is written."""
    cfg, d, _ = models[0]
    sd = load_pth(d / "retnet.pt")
    out = tmp_path / "x.gguf"
    cases: list[tuple[dict[str, np.ndarray], Any, str]] = [
        (sd, None, "no_scale_embedding"),
        (sd, {"no_scale_embedding": True}, "activation_fn"),
        (sd, user_config(cfg) | {"no_scale_embeding": False}, "unknown 'no_scale_embeding'"),
        (sd, user_config(cfg) | {"decoder_retention_heads": 4}, "expected 2"),
        (sd, user_config(cfg) | {"activation_fn": "tanh"}, "activation_fn"),
        (sd, {"no_scale_embedding": "yes", "activation_fn": "gelu"}, "true or false"),
        (sd | {"layers.0.retention.q_proj.bias": np.zeros(128, np.float32)}, user_config(cfg), "pre-Sept-2023"),
        ({k: v for k, v in sd.items() if k != "layer_norm.weight"}, user_config(cfg), "post-norm"),
    ]
    for tensors, config, message in cases:
        with pytest.raises(ValueError, match=message):
            convert_tensors(tensors, None, out, out_type="f32", settings=config)
        assert not out.exists()


def test_cli_config_file(models: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`pyrnn convert retnet.pt --config settings.json` writes the model; without --config it says what is missing."""
    cfg, d, ref = models[0]
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(user_config(cfg)))
    out = tmp_path / "cli.gguf"
    assert cli_main(["convert", str(d / "retnet.pt"), "-o", str(out), "--type", "f32", "-q"]) == 1
    assert "no_scale_embedding" in capsys.readouterr().err
    assert cli_main(["convert", str(d / "retnet.pt"), "-o", str(out), "--type", "f32", "-q",
                     "--config", str(settings)]) == 0
    m = _core.Model(str(out))
    logits = m.forward(ref["tokens"].tolist(), np.zeros(m.state_size, np.float32), all_logits=True)
    assert rel_err(logits, ref["logits_step"]) < 1e-4
