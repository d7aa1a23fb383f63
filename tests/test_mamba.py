"""Mamba-1: pyrnn runs llama.cpp's GGUF files unchanged, writes the same layout, and equals the official
implementation (transformers MambaForCausalLM) on random models, token by token and as one sequence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pyrnn
from pyrnn import _core
from pyrnn.bench import bytes_per_token
from pyrnn.converters.checkpoint import read_checkpoint
from pyrnn.converters.convert import convert
from pyrnn.gguf_writer import GGUFWriter

torch = pytest.importorskip("torch", reason="the official reference (transformers) needs PyTorch")
pytest.importorskip("transformers", reason="the official reference is transformers' MambaForCausalLM")

from mamba_hf import (  # noqa: E402
    interop_fixture,
    pyrnn_state,
    random_mamba,
    rel_err,
    run_hf,
    save_state_spaces,
)
from tiny_models import assert_prefill_lengths_equal_steps, tiny_rwkv7_gguf  # noqa: E402

FIXTURES = interop_fixture("mamba")
needs_fixtures = pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared")
N_TOKENS = 70  # more than one 64-token chunk


def state_size(C: int, L: int, d_state: int = 16, K: int = 4) -> int:
    D = 2 * C
    return L * (D * (K - 1) + D * d_state)


def tensors_of(path: Path) -> dict[str, tuple[tuple[int, ...], int, bytes]]:
    f = pyrnn.GGUFFile(str(path))
    return {t["name"]: (t["ne"], t["type"], bytes(f.tensor_bytes(t["name"]))) for t in f.tensors}


def arch_keys(path: Path) -> dict[str, object]:
    f = pyrnn.GGUFFile(str(path))
    return {k: f.value(k) for k in f.keys if not k.startswith(("general.", "tokenizer."))}


@needs_fixtures
def test_llama_cpp_file_runs_unchanged() -> None:
    """llama.cpp's mamba GGUF gives the official logits at every position within 1e-6 of the span, in any call form."""
    ref = np.load(FIXTURES / "logits.npy")
    tokens = np.load(FIXTURES / "tokens.npy").tolist()
    m = _core.Model(str(FIXTURES / "mamba-tiny-f32.gguf"))
    assert (m.arch, m.n_vocab, m.n_embd, m.n_layer) == ("mamba", 264, 128, 2)
    assert m.state_size == state_size(128, 2)
    s = np.zeros(m.state_size, np.float32)
    steps = np.stack([m.forward([t], s) for t in tokens])
    assert rel_err(steps, ref) < 1e-6
    s2 = np.zeros(m.state_size, np.float32)
    assert rel_err(m.forward(tokens, s2, all_logits=True), ref) < 1e-6
    assert rel_err(m.forward(tokens, np.zeros(m.state_size, np.float32)), ref[-1:]) < 1e-6


@needs_fixtures
def test_converter_writes_llama_cpp_layout(tmp_path: Path) -> None:
    """Our conversion of the fixture's hf/ folder equals llama.cpp's file tensor for tensor (order, ne, type,
    bytes) and key for key; ssm_a = −exp(A_log) differs only in exp's last bit, which is torch's."""
    out = tmp_path / "ours.gguf"
    assert convert(FIXTURES / "hf", out, out_type="f32") == "mamba"
    ours, theirs = tensors_of(out), tensors_of(FIXTURES / "mamba-tiny-f32.gguf")
    assert list(ours) == list(theirs)
    assert "output.weight" not in ours  # tied: omitted, as llama.cpp
    for name, (ne, type_id, data) in theirs.items():
        assert (ours[name][0], ours[name][1]) == (ne, type_id), name
        if not name.endswith(".ssm_a"):
            assert ours[name][2] == data, name
    assert arch_keys(out) == arch_keys(FIXTURES / "mamba-tiny-f32.gguf")

    # ssm_a: we round −exp(A_log) correctly (float64 exp); llama.cpp's converter used torch.exp in
    # float32, which is ≤ 1 ulp away. torch here lands within that ulp too, so the transform is the
    # same and the last bit is the math library's (torch's float32 exp differs by CPU: on the AMD
    # machines of earlier runs it gave llama.cpp's bytes exactly, on an Intel Xeon not).
    hf, _ = read_checkpoint(FIXTURES / "hf")
    for i in range(2):
        a_log = np.asarray(hf[f"backbone.layers.{i}.mixer.A_log"], np.float32)
        mine = np.frombuffer(ours[f"blk.{i}.ssm_a"][2], np.float32).reshape(a_log.shape)
        lcpp = np.frombuffer(theirs[f"blk.{i}.ssm_a"][2], np.float32).reshape(a_log.shape)
        assert np.array_equal(mine, (-np.exp(a_log.astype(np.float64))).astype(np.float32))
        assert np.abs(mine.view(np.int32) - lcpp.view(np.int32)).max() <= 1
        theirs_torch = -torch.exp(torch.from_numpy(a_log.copy())).numpy()
        assert np.abs(theirs_torch.view(np.int32) - lcpp.view(np.int32)).max() <= 1


@pytest.mark.parametrize("C,L,V,seed", [(64, 2, 1000, 1), (128, 3, 1531, 2), (256, 4, 2048, 3)])
def test_matches_transformers(tmp_path: Path, C: int, L: int, V: int, seed: int) -> None:
    """Logits for 70 tokens, stepped and as one sequence, within 1e-4 of the span of transformers'; states match."""
    model = random_mamba(C, L, V, seed)
    model.save_pretrained(tmp_path / "hf")
    tokens = np.random.default_rng(seed).integers(0, V, N_TOKENS).tolist()
    ref = run_hf(model, tokens)
    convert(tmp_path / "hf", tmp_path / "m.gguf", out_type="f32")
    m = _core.Model(str(tmp_path / "m.gguf"))
    assert (m.arch, m.n_vocab, m.n_embd, m.n_layer, m.state_size) == ("mamba", V, C, L, state_size(C, L))

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


def test_prefill_equals_steps_and_state_continues(tmp_path: Path) -> None:
    """A sequence call equals N single steps; a state copied mid-sequence continues bit-exactly, also when
    the continuation is one multi-token call that starts from a carried conv and ssm state."""
    model = random_mamba(96, 2, 500, seed=7)
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


def test_state_spaces_checkpoint_converts_identically(tmp_path: Path) -> None:
    """A state-spaces checkpoint (backbone.embedding.*, lm_head, d_model/n_layer/ssm_cfg config, torch.save
    pytorch_model.bin) converts to exactly the tensors and keys of the Hugging Face folder."""
    model = random_mamba(64, 2, 1000, seed=11)
    model.save_pretrained(tmp_path / "hf")
    save_state_spaces(model, tmp_path / "ss")
    assert convert(tmp_path / "hf", tmp_path / "hf.gguf", out_type="f32") == "mamba"
    assert convert(tmp_path / "ss", tmp_path / "ss.gguf", out_type="f32") == "mamba"
    assert tensors_of(tmp_path / "ss.gguf") == tensors_of(tmp_path / "hf.gguf")
    assert arch_keys(tmp_path / "ss.gguf") == arch_keys(tmp_path / "hf.gguf")
    # the bare .bin (no config.json) is recognised by its keys and converts the same
    assert convert(tmp_path / "ss" / "pytorch_model.bin", tmp_path / "bare.gguf", out_type="f32") == "mamba"
    assert tensors_of(tmp_path / "bare.gguf") == tensors_of(tmp_path / "hf.gguf")


def test_untied_head_and_f16_output(tmp_path: Path) -> None:
    """An untied lm_head is written as output.weight and used; f16 output stays within f16 rounding of f32."""
    model = random_mamba(64, 2, 1000, seed=13)
    model.config.tie_word_embeddings = False
    with torch.no_grad():
        model.lm_head.weight = torch.nn.Parameter(torch.randn(1000, 64, generator=torch.Generator().manual_seed(1)))
    model.save_pretrained(tmp_path / "hf")
    tokens = np.random.default_rng(3).integers(0, 1000, 40).tolist()
    ref = run_hf(model, tokens)
    logits = {}
    for t in ("f32", "f16"):
        convert(tmp_path / "hf", tmp_path / f"{t}.gguf", out_type=t)
        assert "output.weight" in tensors_of(tmp_path / f"{t}.gguf")
        m = _core.Model(str(tmp_path / f"{t}.gguf"))
        logits[t] = m.forward(tokens, np.zeros(m.state_size, np.float32), all_logits=True)
    assert rel_err(logits["f32"], ref["logits_step"]) < 1e-4
    assert rel_err(logits["f16"], logits["f32"]) < 1e-2
    f16 = {name: t for name, (_, t, _) in tensors_of(tmp_path / "f16.gguf").items()}
    assert f16["blk.0.ssm_in.weight"] == 1 and f16["blk.0.ssm_a"] == 0 and f16["blk.0.ssm_conv1d.weight"] == 0


def test_rejects_what_it_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Projection biases are refused by the converter; a FalconMamba file (dt_b_c_rms) by the loader."""
    model = random_mamba(64, 2, 300, seed=5)
    model.save_pretrained(tmp_path / "hf")
    tensors, config = read_checkpoint(tmp_path / "hf")
    from pyrnn.converters.convert import convert_tensors

    biased = dict(tensors) | {"backbone.layers.1.mixer.in_proj.bias": np.zeros(256, np.float32)}
    with pytest.raises(ValueError, match="in_proj.bias"):
        convert_tensors(biased, config, tmp_path / "x.gguf", out_type="f32")

    add_bool = GGUFWriter.add_bool
    monkeypatch.setattr(GGUFWriter, "add_bool",
                        lambda self, key, value: add_bool(self, key, True if key.endswith("dt_b_c_rms") else value))
    convert_tensors(dict(tensors), config, tmp_path / "falcon.gguf", out_type="f32")
    with pytest.raises(pyrnn.FormatError, match="dt_b_c_rms"):
        _core.Model(str(tmp_path / "falcon.gguf"))


@needs_fixtures
def test_bench_reads_a_tied_head_whole(tmp_path: Path) -> None:
    """`pyrnn bench`'s bytes per decode step: Mamba's tied embedding (llama.cpp writes no output.weight)
    is the head, read whole every token; an untied one (RWKV-7) is read one row per token."""
    mamba = pyrnn.load(FIXTURES / "mamba-tiny-f32.gguf")
    ts = mamba.metadata.tensors
    assert not any(t["name"] == "output.weight" for t in ts)
    assert bytes_per_token(mamba) == sum(t["n_bytes"] for t in ts) + 8 * mamba.state_size
    rwkv = pyrnn.load(tiny_rwkv7_gguf(tmp_path))
    ts = rwkv.metadata.tensors
    emb = next(t for t in ts if t["name"] == "token_embd.weight")
    expected = sum(t["n_bytes"] for t in ts) - emb["n_bytes"] + emb["n_bytes"] // emb["shape"][0]
    assert bytes_per_token(rwkv) == expected + 8 * rwkv.state_size
