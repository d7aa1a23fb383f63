"""RWKV-7: pyrnn equals the official implementation (pip rwkv, cpu fp32) on random checkpoints
in the BlinkDL layout, token by token and as one sequence; the state matches and continues exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rwkv_official import run_official
from shared_paths import interop
from tiny_models import assert_prefill_lengths_equal_steps, rwkv7_state_dict

import pyrnn
from pyrnn import _core
from pyrnn.converters.convert import convert

torch = pytest.importorskip("torch", reason="the official reference needs PyTorch (README test command)")

FIXTURES = interop("rwkv7")
N_TOKENS = 64


def make_checkpoint(path: Path, C: int, L: int, V: int, ranks: tuple[int, int, int, int], seed: int,
                    dtype: torch.dtype = torch.float32) -> None:
    """A random RWKV-7 .pth in BlinkDL's key layout (torch.save of a state dict, as released)."""
    sd = rwkv7_state_dict(C, L, V, ranks, seed)
    torch.save({k: torch.from_numpy(v).to(dtype) for k, v in sd.items()}, path)


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
    assert_prefill_lengths_equal_steps(m, tokens)
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


def test_real_size_shape_loads_and_runs(tmp_path: Path) -> None:
    """RWKV-7 0.1B's shape (C=768, 12 layers, vocab 65536) converts, loads and runs; the state and
    file sizes are what the formulas say."""
    from pyrnn.converters.convert import convert_tensors

    C, L, V = 768, 12, 65536
    sd = rwkv7_state_dict(C, L, V, (64, 64, 32, 128), seed=1)
    out = tmp_path / "rwkv7-0.1b-f16.gguf"
    convert_tensors(sd, None, out, out_type="f16")
    m = pyrnn.load(out)
    assert m.state_size == L * (2 * C + (C // 64) * 64 * 64)  # 12 × 50,688 floats
    stored_f16 = ("emb.weight", "head.weight", "att.receptance.weight", "att.key.weight", "att.value.weight",
                  "att.output.weight", "ffn.key.weight", "ffn.value.weight")
    big = sum(v.size for k, v in sd.items() if k.endswith(stored_f16))
    small = sum(v.size for k, v in sd.items() if not k.endswith(stored_f16))  # stored f32
    # layer 0 stores copies of a1/a2 (rank 64) in place of its unused v1/v2 (rank 32), as llama.cpp
    small += (64 - 32) * C * 2
    expect_data = 2 * big + 4 * small
    size = out.stat().st_size
    assert expect_data <= size <= expect_data + 64 * 1024 + 2 * 1024 * 1024  # + header, tokenizer (~1.1 MB), padding
    s = m.new_state()
    logits = m.forward(m.tokenizer.encode("Once upon a time"), s)
    assert logits.shape == (V,) and np.isfinite(logits).all()
