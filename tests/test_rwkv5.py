"""RWKV-5 (5.0, 5.1, 5.2): pyrnn equals the official implementation (pip rwkv, cpu fp32) on random
checkpoints in the BlinkDL layouts, token by token and as one sequence; the state matches and
continues exactly; bf16 and Hugging Face checkpoints convert to the same model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rwkv_official import run_official
from tiny_models import assert_prefill_lengths_equal_steps, rwkv5_state_dict

import pyrnn
from pyrnn import _core
from pyrnn.converters.convert import convert

torch = pytest.importorskip("torch", reason="the official reference needs PyTorch (README test command)")

N_TOKENS = 64


def make_checkpoint(path: Path, C: int, L: int, V: int, version: int, seed: int,
                    dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    sd = {k: torch.from_numpy(v).to(dtype) for k, v in rwkv5_state_dict(C, L, V, version, seed).items()}
    torch.save(sd, path)
    return sd


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a − ref| over each row, relative to that row's logit span; the worst row."""
    span = ref.max(axis=-1) - ref.min(axis=-1)
    return float(np.max(np.abs(a - ref).max(axis=-1) / span))


def pyrnn_state(ref: dict[str, np.ndarray], L: int) -> np.ndarray:
    """pip's state list → pyrnn's layout: per layer [att_x | ffn_x | S[h][k][v]] (pip's orientation)."""
    parts = []
    for i in range(L):
        parts += [ref[f"state_{3 * i}"].ravel(), ref[f"state_{3 * i + 2}"].ravel(), ref[f"state_{3 * i + 1}"].ravel()]
    return np.concatenate(parts).astype(np.float32)


def convert_and_load(src: Path, gguf: Path, out_type: str = "f32") -> _core.Model:
    assert convert(src, gguf, out_type=out_type) == "rwkv5"
    return _core.Model(str(gguf))


@pytest.mark.parametrize("version,C,L,V", [
    (52, 128, 2, 1000), (52, 256, 3, 1531), (51, 128, 2, 1200), (50, 128, 3, 1100),
])
def test_matches_official(tmp_path: Path, version: int, C: int, L: int, V: int) -> None:
    """Logits for 64 tokens, stepped and as one sequence, within 1e-4 of the logit span; states match."""
    pth = tmp_path / "rwkv5.pth"
    make_checkpoint(pth, C, L, V, version, seed=C + L + version)
    tokens = np.random.default_rng(0).integers(0, V, N_TOKENS).tolist()
    ref = run_official(pth, 5, tokens)
    assert float(ref["version"]) == pytest.approx(version / 10)  # pip read the sub-version we meant
    gguf = tmp_path / "rwkv5.gguf"
    m = convert_and_load(pth, gguf)
    f = pyrnn.GGUFFile(str(gguf))
    assert f.value("general.architecture") == "rwkv5" and f.value("rwkv5.version") == version
    assert ("blk.0.time_mix_gate.weight" in {t["name"] for t in f.tensors}) == (version >= 51)
    assert (m.arch, m.n_vocab, m.n_embd, m.n_layer) == ("rwkv5", V, C, L)
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
    pth = tmp_path / "rwkv5.pth"
    make_checkpoint(pth, 128, 2, 300, 52, seed=5)
    m = convert_and_load(pth, tmp_path / "m.gguf")
    tokens = np.random.default_rng(1).integers(0, 300, 150).tolist()  # > one 64-token chunk
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


def test_bf16_checkpoint_and_f16_output(tmp_path: Path) -> None:
    """A bf16 .pth (as released) converts exactly; f16 output stays within f16 rounding of the f32 model."""
    pth = tmp_path / "rwkv5.pth"
    sd = make_checkpoint(pth, 128, 2, 500, 52, seed=9, dtype=torch.bfloat16)
    # pip folds ln0 into the embedding in the storage dtype (bf16), so its "cpu fp32" on the bf16 file
    # is not an fp32 reference; run it on an fp32 copy holding exactly the same values.
    ref_pth = tmp_path / "rwkv5_fp32.pth"
    torch.save({k: v.float() for k, v in sd.items()}, ref_pth)
    tokens = np.random.default_rng(2).integers(0, 500, 32).tolist()
    logits = {}
    for t in ("f32", "f16"):
        m = convert_and_load(pth, tmp_path / f"{t}.gguf", out_type=t)
        logits[t] = m.forward(tokens, np.zeros(m.state_size, np.float32), all_logits=True)
    ref = run_official(ref_pth, 5, tokens)
    assert rel_err(logits["f32"], ref["logits_step"]) < 1e-4
    assert rel_err(logits["f16"], logits["f32"]) < 1e-2
    assert (tmp_path / "f16.gguf").stat().st_size < 0.7 * (tmp_path / "f32.gguf").stat().st_size


# BlinkDL → Hugging Face remote-code names (Rwkv5ForCausalLM, ARCHITECTURES.md §1.2.4)
_HF_TOP = {"emb.weight": "rwkv.embeddings.weight", "ln_out.weight": "rwkv.ln_out.weight",
           "ln_out.bias": "rwkv.ln_out.bias", "head.weight": "head.weight"}
_HF_PARTS = [(".ln0.", ".pre_ln."), (".att.", ".attention."), (".ffn.", ".feed_forward.")]
_HF_MIX = {"k": "key", "v": "value", "r": "receptance", "g": "gate"}


def to_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        n = _HF_TOP.get(k, "rwkv." + k)
        for old, new in _HF_PARTS:
            n = n.replace(old, new)
        if ".time_mix_" in n:
            head, x = n.rsplit("_", 1)
            n = f"{head}_{_HF_MIX[x]}"
        out[n] = v.contiguous()
    return out


def test_hf_folder_equals_pth(tmp_path: Path) -> None:
    """A Hugging Face Rwkv5ForCausalLM folder (safetensors) converts to the same model as the .pth."""
    safetensors_torch = pytest.importorskip("safetensors.torch", reason="writing the HF folder needs safetensors")
    pth = tmp_path / "rwkv5.pth"
    sd = make_checkpoint(pth, 128, 2, 700, 52, seed=13, dtype=torch.bfloat16)
    hf = tmp_path / "hf"
    hf.mkdir()
    hf_sd = to_hf(sd)
    assert "rwkv.blocks.1.attention.time_mix_gate" in hf_sd and "rwkv.blocks.0.pre_ln.weight" in hf_sd
    assert "rwkv.blocks.0.feed_forward.time_mix_receptance" in hf_sd and "head.weight" in hf_sd
    safetensors_torch.save_file(hf_sd, str(hf / "model.safetensors"))
    config = {"architectures": ["Rwkv5ForCausalLM"], "model_type": "rwkv5", "hidden_size": 128,
              "num_hidden_layers": 2, "vocab_size": 700, "head_size": 64, "head_size_divisor": 8,
              "layer_norm_epsilon": 1e-5, "rescale_every": 6, "tie_word_embeddings": False}
    (hf / "config.json").write_text(json.dumps(config), encoding="utf-8")

    tokens = np.random.default_rng(3).integers(0, 700, 40).tolist()
    a = convert_and_load(pth, tmp_path / "pth.gguf")
    b = convert_and_load(hf, tmp_path / "hf.gguf")
    la = a.forward(tokens, np.zeros(a.state_size, np.float32), all_logits=True)
    lb = b.forward(tokens, np.zeros(b.state_size, np.float32), all_logits=True)
    assert np.array_equal(la, lb)
    fa, fb = pyrnn.GGUFFile(str(tmp_path / "pth.gguf")), pyrnn.GGUFFile(str(tmp_path / "hf.gguf"))
    assert [t["name"] for t in fa.tensors] == [t["name"] for t in fb.tensors]
    for t in fa.tensors:
        assert bytes(fa.tensor_bytes(t["name"])) == bytes(fb.tensor_bytes(t["name"])), t["name"]


def _patch_version(path: Path, value: int) -> None:
    """Rewrites the uint32 value of rwkv5.version in place (key string, type id 4, then the value)."""
    data = bytearray(path.read_bytes())
    key = b"rwkv5.version"
    at = data.index(len(key).to_bytes(8, "little") + key) + 8 + len(key)
    assert int.from_bytes(data[at:at + 4], "little") == 4  # GGUF type uint32
    data[at + 4:at + 8] = value.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_bad_version_metadata_is_refused(tmp_path: Path) -> None:
    """An unknown rwkv5.version, or one that claims a gate the file lacks, fails naming the field."""
    pth = tmp_path / "rwkv5.pth"
    make_checkpoint(pth, 128, 2, 300, 50, seed=21)
    gguf = tmp_path / "m.gguf"
    convert(pth, gguf, out_type="f32")
    _patch_version(gguf, 53)
    with pytest.raises(ValueError, match=r"rwkv5\.version: expected 50, 51 or 52.*found 53"):
        _core.Model(str(gguf))
    _patch_version(gguf, 51)
    with pytest.raises(ValueError, match=r"blk\.0\.time_mix_lerp_g\.weight.*found nothing"):
        _core.Model(str(gguf))
