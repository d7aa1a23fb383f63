"""RWKV-7: pyrnn equals the official implementation (pip rwkv, cpu fp32) on random checkpoints
in the BlinkDL layout, token by token and as one sequence; the state matches and continues exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rwkv_official import run_official

import pyrnn
from pyrnn import _core
from pyrnn.converters.convert import convert

torch = pytest.importorskip("torch", reason="the official reference needs PyTorch (README test command)")

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "interop" / "rwkv7"
N_TOKENS = 64


def make_checkpoint(path: Path, C: int, L: int, V: int, ranks: tuple[int, int, int, int], seed: int,
                    dtype: torch.dtype = torch.float32) -> None:
    """A random RWKV-7 state dict in BlinkDL's key layout with trained-model parameter ranges."""
    g = torch.Generator().manual_seed(seed)
    H, N = C // 64, 64
    Dw, Da, Dv, Dg = ranks

    def mat(out_f: int, in_f: int) -> torch.Tensor:
        return torch.randn(out_f, in_f, generator=g) / in_f**0.5

    def uni(*shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    sd: dict[str, torch.Tensor] = {"emb.weight": torch.randn(V, C, generator=g)}
    for i in range(L):
        b = f"blocks.{i}."
        if i == 0:
            sd[b + "ln0.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
            sd[b + "ln0.bias"] = 0.1 * torch.randn(C, generator=g)
        for ln in ("ln1", "ln2"):
            sd[b + ln + ".weight"] = 1 + 0.1 * torch.randn(C, generator=g)
            sd[b + ln + ".bias"] = 0.1 * torch.randn(C, generator=g)
        for x in "rwkvag":
            sd[b + f"att.x_{x}"] = uni(1, 1, C)
        sd[b + "att.w0"] = uni(1, 1, C, lo=-6.0, hi=-0.5)
        sd[b + "att.w1"], sd[b + "att.w2"] = mat(Dw, C).T.contiguous() * 0.5, mat(C, Dw).T.contiguous() * 0.5
        sd[b + "att.a0"] = torch.randn(1, 1, C, generator=g) * 0.5
        sd[b + "att.a1"], sd[b + "att.a2"] = mat(Da, C).T.contiguous(), mat(C, Da).T.contiguous()
        sd[b + "att.v0"] = torch.randn(1, 1, C, generator=g) * 0.5 + 1.0
        sd[b + "att.v1"], sd[b + "att.v2"] = mat(Dv, C).T.contiguous(), mat(C, Dv).T.contiguous()
        sd[b + "att.g1"], sd[b + "att.g2"] = mat(Dg, C).T.contiguous(), mat(C, Dg).T.contiguous()
        sd[b + "att.k_k"] = uni(1, 1, C, lo=0.5, hi=1.5)
        sd[b + "att.k_a"] = uni(1, 1, C)
        sd[b + "att.r_k"] = torch.randn(H, N, generator=g) * 0.3
        for name in ("receptance", "key", "value", "output"):
            sd[b + f"att.{name}.weight"] = mat(C, C)
        sd[b + "att.ln_x.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
        sd[b + "att.ln_x.bias"] = 0.1 * torch.randn(C, generator=g)
        sd[b + "ffn.x_k"] = uni(1, 1, C)
        sd[b + "ffn.key.weight"] = mat(4 * C, C)
        sd[b + "ffn.value.weight"] = mat(C, 4 * C)
    sd["ln_out.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
    sd["ln_out.bias"] = 0.1 * torch.randn(C, generator=g)
    sd["head.weight"] = mat(V, C)
    torch.save({k: v.to(dtype) for k, v in sd.items()}, path)


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a − ref| over each row, relative to that row's logit span; the worst row."""
    span = ref.max(axis=-1) - ref.min(axis=-1)
    return float(np.max(np.abs(a - ref).max(axis=-1) / span))


def pyrnn_state(ref: dict[str, np.ndarray], L: int) -> np.ndarray:
    """pip's state list → pyrnn's layout: per layer [att_x | ffn_x | S[h][v][k]] (same orientation)."""
    parts = []
    for i in range(L):
        parts += [ref[f"state_{3 * i}"].ravel(), ref[f"state_{3 * i + 2}"].ravel(), ref[f"state_{3 * i + 1}"].ravel()]
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("C,L,V,ranks", [(128, 2, 1000, (32, 64, 32, 64)), (256, 3, 1531, (64, 32, 32, 96))])
def test_matches_official(tmp_path: Path, C: int, L: int, V: int, ranks: tuple[int, int, int, int]) -> None:
    """Logits for 64 tokens, stepped and as one sequence, within 1e-4 of the logit span; states match."""
    pth = tmp_path / "rwkv7.pth"
    make_checkpoint(pth, C, L, V, ranks, seed=C + L)
    tokens = np.random.default_rng(0).integers(0, V, N_TOKENS).tolist()
    ref = run_official(pth, 7, tokens)
    gguf = tmp_path / "rwkv7.gguf"
    convert(pth, gguf, out_type="f32")
    m = _core.Model(str(gguf))
    assert (m.arch, m.n_vocab, m.n_embd, m.n_layer) == ("rwkv7", V, C, L)
    assert m.state_size == L * (2 * C + C * 64)

    s = np.zeros(m.state_size, np.float32)
    steps = np.stack([m.forward([t], s) for t in tokens])
    assert rel_err(steps, ref["logits_step"]) < 1e-4
    assert rel_err(steps, ref["logits_seq"]) < 1e-4
    np.testing.assert_allclose(s, pyrnn_state(ref, L), atol=1e-4 * np.abs(s).max())

    s2 = np.zeros(m.state_size, np.float32)
    seq = m.forward(tokens, s2, all_logits=True)
    assert rel_err(seq, ref["logits_step"]) < 1e-4
    np.testing.assert_allclose(s2, s, atol=1e-5 * np.abs(s).max())


def test_prefill_equals_steps_and_state_continues(tmp_path: Path) -> None:
    """A sequence call equals N single steps; a state copied mid-sequence continues bit-exactly."""
    pth = tmp_path / "rwkv7.pth"
    make_checkpoint(pth, 128, 2, 300, (32, 32, 32, 32), seed=5)
    gguf = tmp_path / "m.gguf"
    convert(pth, gguf, out_type="f32")
    m = _core.Model(str(gguf))
    tokens = np.random.default_rng(1).integers(0, 300, 150).tolist()  # > one 64-token chunk
    s_seq = np.zeros(m.state_size, np.float32)
    all_seq = m.forward(tokens, s_seq, all_logits=True)
    s_step = np.zeros(m.state_size, np.float32)
    all_step = np.stack([m.forward([t], s_step) for t in tokens])
    assert np.abs(all_seq - all_step).max() <= 1e-5 * np.abs(all_step).max()

    s = np.zeros(m.state_size, np.float32)
    m.forward(tokens[:70], s)
    saved = s.copy()
    a = m.forward(tokens[70:], s, all_logits=True)
    b = m.forward(tokens[70:], saved, all_logits=True)
    assert np.array_equal(a, b) and np.array_equal(s, saved)


def test_bf16_checkpoint_and_f16_output(tmp_path: Path) -> None:
    """A bf16 .pth (as released) converts; f16 output stays within f16 rounding of the f32 model."""
    pth = tmp_path / "rwkv7.pth"
    make_checkpoint(pth, 128, 2, 500, (32, 64, 32, 64), seed=9, dtype=torch.bfloat16)
    tokens = np.random.default_rng(2).integers(0, 500, 32).tolist()
    logits = {}
    for t in ("f32", "f16"):
        convert(pth, tmp_path / f"{t}.gguf", out_type=t)
        m = _core.Model(str(tmp_path / f"{t}.gguf"))
        logits[t] = m.forward(tokens, np.zeros(m.state_size, np.float32), all_logits=True)
    ref = run_official(pth, 7, tokens)  # bf16 values, computed in fp32 (v7 widens before folding ln0)
    assert rel_err(logits["f32"], ref["logits_step"]) < 1e-4
    assert rel_err(logits["f16"], logits["f32"]) < 1e-2
    assert (tmp_path / "f16.gguf").stat().st_size < 0.7 * (tmp_path / "f32.gguf").stat().st_size


@pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
def test_llama_cpp_file_and_our_conversion_agree() -> None:
    """llama.cpp's GGUF runs unchanged at < 1e-6 of the official logits; ours of the same .pth is identical."""
    ref = np.load(FIXTURES / "logits.npy")
    tokens = np.load(FIXTURES / "tokens.npy")
    m = pyrnn.GGUFFile(str(FIXTURES / "rwkv7-tiny-f32.gguf"))
    assert m.value("general.architecture") == "rwkv7"
    model = _core.Model(str(FIXTURES / "rwkv7-tiny-f32.gguf"))
    s = np.zeros(model.state_size, np.float32)
    steps = np.stack([model.forward([t], s) for t in tokens])
    assert rel_err(steps, ref) < 1e-6


@pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
def test_converter_writes_llama_cpp_layout(tmp_path: Path) -> None:
    """Our conversion of the fixture's .pth equals llama.cpp's file: every tensor's shape, type and bytes."""
    out = tmp_path / "ours.gguf"
    vocab = FIXTURES / "hf" / "rwkv_vocab_v20230424.txt"
    convert(FIXTURES / "source" / "rwkv7-tiny.pth", out, out_type="f32", vocab=vocab)
    ours, theirs = pyrnn.GGUFFile(str(out)), pyrnn.GGUFFile(str(FIXTURES / "rwkv7-tiny-f32.gguf"))
    a = {t["name"]: t for t in ours.tensors}
    b = {t["name"]: t for t in theirs.tensors}
    assert a.keys() == b.keys()
    for name in b:
        assert (a[name]["ne"], a[name]["type"]) == (b[name]["ne"], b[name]["type"]), name
        assert bytes(ours.tensor_bytes(name)) == bytes(theirs.tensor_bytes(name)), name
    for key in theirs.keys:
        if not key.startswith("general."):
            assert ours.value(key) == theirs.value(key), key
