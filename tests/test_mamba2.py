"""Mamba-2: pyrnn runs llama.cpp's GGUF files unchanged, writes the same layout, and equals the official
implementations — transformers Mamba2ForCausalLM, and for ngroups > 1 also the state-spaces step
formulas (grouped B/C and grouped gated RMSNorm) — token by token and as one sequence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pyrnn
from pyrnn import _core
from pyrnn.converters.checkpoint import read_checkpoint
from pyrnn.converters.convert import convert, convert_tensors

torch = pytest.importorskip("torch", reason="the official reference (transformers) needs PyTorch")
pytest.importorskip("transformers", reason="the official reference is transformers' Mamba2ForCausalLM")

from mamba_hf import (  # noqa: E402
    interop_fixture,
    pyrnn_state,
    random_mamba2,
    rel_err,
    run_hf,
    save_state_spaces,
)
from tiny_models import assert_prefill_lengths_equal_steps  # noqa: E402

FIXTURES = interop_fixture("mamba2")
needs_fixtures = pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared")
N_TOKENS = 70  # more than one 64-token chunk


def state_size(C: int, L: int, G: int, N: int = 16, K: int = 4) -> int:
    D = 2 * C
    return L * ((D + 2 * G * N) * (K - 1) + D * N)


def tensors_of(path: Path) -> dict[str, tuple[tuple[int, ...], int, bytes]]:
    f = pyrnn.GGUFFile(str(path))
    return {t["name"]: (t["ne"], t["type"], bytes(f.tensor_bytes(t["name"]))) for t in f.tensors}


def arch_keys(path: Path) -> dict[str, object]:
    f = pyrnn.GGUFFile(str(path))
    return {k: f.value(k) for k in f.keys if not k.startswith(("general.", "tokenizer."))}


def state_spaces_step_logits(sd: dict[str, np.ndarray], tokens: list[int], H: int, G: int, N: int,
                             eps: float = 1e-5, group_size: int | None = None) -> np.ndarray:
    """The state-spaces Mamba-2 step in float64 numpy, written from mamba_ssm (ARCHITECTURES.md §2.2.2):
    Mamba2.step's conv and dt, selective_state_update_ref's B/C repeat "b g n -> b (g h) n" (contiguous
    heads share a group), rms_norm_ref(y, z, group_size=d_ssm/ngroups, norm_before_gate=False).
    `group_size` overrides the norm's group width (the whole width = the old transformers behaviour)."""
    f = {k: np.asarray(v, np.float64) for k, v in sd.items()}
    emb = f["backbone.embeddings.weight"]
    L = 1 + max(int(k.split(".")[2]) for k in f if k.startswith("backbone.layers."))
    D = f["backbone.layers.0.mixer.out_proj.weight"].shape[1]
    P, gs = D // H, group_size or D // G

    def rms(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x) + eps) * w

    def silu(x: np.ndarray) -> np.ndarray:
        return x / (1 + np.exp(-x))

    conv = [np.zeros((D + 2 * G * N, 4)) for _ in range(L)]
    ssm = [np.zeros((H, P, N)) for _ in range(L)]
    out = []
    for tok in tokens:
        h = emb[tok].copy()
        for i in range(L):
            m = f"backbone.layers.{i}.mixer."
            zxbcdt = f[m + "in_proj.weight"] @ rms(h, f[f"backbone.layers.{i}.norm.weight"])
            z, xbc, dt = np.split(zxbcdt, [D, 2 * D + 2 * G * N])
            conv[i] = np.roll(conv[i], -1, axis=-1)
            conv[i][:, -1] = xbc
            xbc = silu((conv[i] * f[m + "conv1d.weight"][:, 0, :]).sum(-1) + f[m + "conv1d.bias"])
            x, B, C = np.split(xbc, [D, D + G * N])
            B = np.repeat(B.reshape(G, N), H // G, axis=0)  # (H, N)
            C = np.repeat(C.reshape(G, N), H // G, axis=0)
            dt = np.logaddexp(0, dt + f[m + "dt_bias"])  # softplus
            dA = np.exp(dt * -np.exp(f[m + "A_log"]))
            x = x.reshape(H, P)
            ssm[i] = ssm[i] * dA[:, None, None] + (dt[:, None] * B)[:, None, :] * x[:, :, None]
            y = (ssm[i] @ C[:, :, None])[..., 0] + f[m + "D"][:, None] * x
            y = y.reshape(D) * silu(z)
            y = (y.reshape(-1, gs) / np.sqrt(np.mean(y.reshape(-1, gs) ** 2, axis=-1, keepdims=True) + eps))
            y = y.reshape(D) * f[m + "norm.weight"]
            h = h + f[m + "out_proj.weight"] @ y
        out.append(emb @ rms(h, f["backbone.norm_f.weight"]))
    return np.stack(out)


@needs_fixtures
def test_llama_cpp_file_runs_unchanged() -> None:
    """llama.cpp's mamba2 GGUF gives the official logits at every position within 1e-6 of the span, in any call form."""
    ref = np.load(FIXTURES / "logits.npy")
    tokens = np.load(FIXTURES / "tokens.npy").tolist()
    m = _core.Model(str(FIXTURES / "mamba2-tiny-f32.gguf"))
    assert (m.arch, m.n_vocab, m.n_embd, m.n_layer) == ("mamba2", 272, 128, 2)
    assert m.state_size == state_size(128, 2, G=1, N=64)
    s = np.zeros(m.state_size, np.float32)
    steps = np.stack([m.forward([t], s) for t in tokens])
    assert rel_err(steps, ref) < 1e-6
    s2 = np.zeros(m.state_size, np.float32)
    assert rel_err(m.forward(tokens, s2, all_logits=True), ref) < 1e-6
    assert rel_err(m.forward(tokens, np.zeros(m.state_size, np.float32)), ref[-1:]) < 1e-6


@needs_fixtures
def test_converter_writes_llama_cpp_layout(tmp_path: Path) -> None:
    """Our conversion of the fixture's hf/ folder equals llama.cpp's file tensor for tensor (order, ne, type,
    bytes) and key for key: ssm_a/ssm_d (1, H), ssm_norm (D/G, G), dt_bias as ssm_dt.bias, no output.weight."""
    out = tmp_path / "ours.gguf"
    assert convert(FIXTURES / "hf", out, out_type="f32") == "mamba2"
    ours, theirs = tensors_of(out), tensors_of(FIXTURES / "mamba2-tiny-f32.gguf")
    assert list(ours) == list(theirs)
    for name, (ne, type_id, data) in theirs.items():
        assert (ours[name][0], ours[name][1]) == (ne, type_id), name
        if name.endswith(".ssm_a"):  # −exp: ≤ 1 ulp from torch's float32 exp (see test_mamba.py)
            a = np.frombuffer(ours[name][2], np.int32)
            assert np.abs(a - np.frombuffer(data, np.int32)).max() <= 1, name
        else:
            assert ours[name][2] == data, name
    assert arch_keys(out) == arch_keys(FIXTURES / "mamba2-tiny-f32.gguf")


@pytest.mark.parametrize("C,L,V,head_dim,G,chunk,seed", [
    (64, 2, 1000, 16, 1, 256, 1),
    (128, 3, 1531, 32, 2, 16, 2),  # chunk 16: transformers' prefill runs several SSD chunks
    (256, 2, 2048, 64, 4, 256, 3),
])
def test_matches_transformers(tmp_path: Path, C: int, L: int, V: int, head_dim: int, G: int, chunk: int,
                              seed: int) -> None:
    """Logits for 70 tokens, stepped and as one sequence, within 1e-4 of the span of transformers'; states match."""
    model = random_mamba2(C, L, V, seed, head_dim=head_dim, n_groups=G, chunk_size=chunk)
    model.save_pretrained(tmp_path / "hf")
    tokens = np.random.default_rng(seed).integers(0, V, N_TOKENS).tolist()
    ref = run_hf(model, tokens)
    convert(tmp_path / "hf", tmp_path / "m.gguf", out_type="f32")
    m = _core.Model(str(tmp_path / "m.gguf"))
    assert (m.arch, m.n_vocab, m.n_embd, m.n_layer, m.state_size) == ("mamba2", V, C, L, state_size(C, L, G))
    assert arch_keys(tmp_path / "m.gguf")["mamba2.ssm.group_count"] == G

    s = np.zeros(m.state_size, np.float32)
    steps = np.stack([m.forward([t], s) for t in tokens])
    assert rel_err(steps, ref["logits_step"]) < 1e-4
    assert rel_err(steps, ref["logits_seq"]) < 1e-4
    hf_state = pyrnn_state(ref["states"])
    np.testing.assert_allclose(s, hf_state, rtol=0, atol=1e-5 * np.abs(hf_state).max())

    s2 = np.zeros(m.state_size, np.float32)
    seq = m.forward(tokens, s2, all_logits=True)
    assert rel_err(seq, ref["logits_seq"]) < 1e-4
    assert rel_err(seq, ref["logits_step"]) < 1e-4
    np.testing.assert_allclose(s2, hf_state, rtol=0, atol=1e-5 * np.abs(hf_state).max())


@pytest.mark.parametrize("G", [2, 4])
def test_groups_follow_state_spaces(tmp_path: Path, G: int) -> None:
    """With ngroups > 1 pyrnn equals the state-spaces formulas (grouped B/C, gated RMSNorm per group of
    d_ssm/ngroups) within 1e-5, and is far from the whole-width norm of older transformers."""
    model = random_mamba2(128, 2, 1000, seed=20 + G, head_dim=16, n_groups=G)
    model.save_pretrained(tmp_path / "hf")
    tokens = np.random.default_rng(G).integers(0, 1000, 40).tolist()
    convert(tmp_path / "hf", tmp_path / "m.gguf", out_type="f32")
    m = _core.Model(str(tmp_path / "m.gguf"))
    ours = m.forward(tokens, np.zeros(m.state_size, np.float32), all_logits=True)
    sd, _ = read_checkpoint(tmp_path / "hf")
    H = 256 // 16
    official = state_spaces_step_logits(sd, tokens, H=H, G=G, N=16)
    assert rel_err(ours, official) < 1e-5
    ungrouped = state_spaces_step_logits(sd, tokens, H=H, G=G, N=16, group_size=256)
    assert rel_err(ours, ungrouped) > 1e-2


def test_prefill_equals_steps_and_state_continues(tmp_path: Path) -> None:
    """A sequence call equals N single steps; a state copied mid-sequence continues bit-exactly, also when
    the continuation is one multi-token call that starts from a carried conv and ssm state."""
    model = random_mamba2(96, 2, 500, seed=7, head_dim=32, n_groups=3)
    model.save_pretrained(tmp_path / "hf")
    convert(tmp_path / "hf", tmp_path / "m.gguf", out_type="f32")
    m = _core.Model(str(tmp_path / "m.gguf"))
    tokens = np.random.default_rng(1).integers(0, 500, 150).tolist()
    assert_prefill_lengths_equal_steps(m, tokens)
    s_seq = np.zeros(m.state_size, np.float32)
    all_seq = m.forward(tokens, s_seq, all_logits=True)
    s_step = np.zeros(m.state_size, np.float32)
    all_step = np.stack([m.forward([t], s_step) for t in tokens])
    assert np.abs(all_seq - all_step).max() <= 1e-5 * np.abs(all_step).max()
    assert np.abs(s_seq - s_step).max() <= 1e-5 * np.abs(s_step).max()

    s = np.zeros(m.state_size, np.float32)
    m.forward(tokens[:70], s)
    saved = s.copy()
    a = m.forward(tokens[70:], s, all_logits=True)
    b = m.forward(tokens[70:], saved, all_logits=True)
    assert np.array_equal(a, b) and np.array_equal(s, saved)
    assert rel_err(a, all_step[70:]) < 1e-5


@pytest.mark.parametrize("G", [1, 2])
def test_state_spaces_checkpoint_converts_identically(tmp_path: Path, G: int) -> None:
    """A state-spaces checkpoint (backbone.embedding.*, lm_head, ssm_cfg {layer: Mamba2, ngroups, ...} config,
    torch.save pytorch_model.bin) converts to exactly the tensors and keys of the Hugging Face folder."""
    model = random_mamba2(64, 2, 1000, seed=11, head_dim=16, n_groups=G)
    model.save_pretrained(tmp_path / "hf")
    save_state_spaces(model, tmp_path / "ss")
    assert convert(tmp_path / "hf", tmp_path / "hf.gguf", out_type="f32") == "mamba2"
    assert convert(tmp_path / "ss", tmp_path / "ss.gguf", out_type="f32") == "mamba2"
    assert tensors_of(tmp_path / "ss.gguf") == tensors_of(tmp_path / "hf.gguf")
    assert arch_keys(tmp_path / "ss.gguf") == arch_keys(tmp_path / "hf.gguf")


def test_rejects_what_it_cannot_run(tmp_path: Path) -> None:
    """A config whose n_groups contradicts the conv width, norm_before_gate and per-channel D are refused."""
    model = random_mamba2(64, 2, 300, seed=5, head_dim=16, n_groups=2)
    model.save_pretrained(tmp_path / "hf")
    tensors, config = read_checkpoint(tmp_path / "hf")
    with pytest.raises(ValueError, match="n_groups"):
        convert_tensors(dict(tensors), config | {"n_groups": 1}, tmp_path / "x.gguf", out_type="f32")
    with pytest.raises(ValueError, match="norm_before_gate"):
        convert_tensors(dict(tensors), config | {"norm_before_gate": True}, tmp_path / "x.gguf", out_type="f32")
    per_channel = dict(tensors) | {"backbone.layers.0.mixer.D": np.ones(128, np.float32)}
    with pytest.raises(ValueError, match="D_has_hdim"):
        convert_tensors(per_channel, config, tmp_path / "x.gguf", out_type="f32")
