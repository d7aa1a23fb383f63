"""RWKV-6: pyrnn equals the official implementation (pip rwkv, cpu fp32) on random checkpoints
in the BlinkDL layout, token by token and as one sequence; the state matches and continues exactly;
llama.cpp's GGUF runs unchanged and our converter writes the same file from the .pth or HF folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rwkv_official import run_official
from shared_paths import interop
from tiny_models import assert_prefill_lengths_equal_steps, rwkv6_state_dict, save_safetensors

import pyrnn
from pyrnn import _core
from pyrnn.converters import rwkv6
from pyrnn.converters.checkpoint import read_checkpoint
from pyrnn.converters.convert import convert
from pyrnn.converters.output import TensorOutput
from pyrnn.converters.rwkv_common import write_general, write_world_tokenizer
from pyrnn.gguf_writer import GGUFWriter, ValueType
from pyrnn.quantize import quantize_file

torch = pytest.importorskip("torch", reason="the official reference needs PyTorch (README test command)")

FIXTURES = interop("rwkv6")
N_TOKENS = 64
DM, DD = 32, 64  # LoRA sizes of every released model with C != 4096 (what llama.cpp's converter assumes)


def make_checkpoint(path: Path, C: int, L: int, V: int, seed: int, dtype: torch.dtype = torch.float32,
                    decay: tuple[float, float] = (-6.0, -1.0)) -> dict[str, np.ndarray]:
    """A random RWKV-6 .pth in BlinkDL's key layout (torch.save of a state dict, as released), saved in
    `dtype`; returns the saved values in fp32."""
    sd = {k: torch.from_numpy(v).to(dtype) for k, v in rwkv6_state_dict(C, L, V, seed, decay, (DM, DD)).items()}
    torch.save(sd, path)
    return {k: v.float().numpy() for k, v in sd.items()}


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a − ref| over each row, relative to that row's logit span; the worst row."""
    span = ref.max(axis=-1) - ref.min(axis=-1)
    return float(np.max(np.abs(a - ref).max(axis=-1) / span))


def pyrnn_state(ref: dict[str, np.ndarray], L: int) -> np.ndarray:
    """pip's state list → pyrnn's layout: per layer [att_x | ffn_x | S[h][k][v]] (pip's v6 orientation)."""
    parts = []
    for i in range(L):
        parts += [ref[f"state_{3 * i}"].ravel(), ref[f"state_{3 * i + 2}"].ravel(), ref[f"state_{3 * i + 1}"].ravel()]
    return np.concatenate(parts).astype(np.float32)


def run_steps(m: _core.Model, tokens: list[int]) -> tuple[np.ndarray, np.ndarray]:
    s = np.zeros(m.state_size, np.float32)
    return np.stack([m.forward([t], s) for t in tokens]), s


def reference_f64(sd: dict[str, np.ndarray], tokens: list[int]) -> np.ndarray:
    """RWKV-6 in float64, straight from ARCHITECTURES.md §1.3.2: the exact math that fp32 approximates."""
    f = {k: v.astype(np.float64) for k, v in sd.items()}
    V, C = f["emb.weight"].shape
    H, N = f["blocks.0.att.time_faaaa"].shape
    L = 1 + max(int(k.split(".")[1]) for k in f if k.startswith("blocks."))

    def ln(x: np.ndarray, p: str, eps: float = 1e-5) -> np.ndarray:
        return (x - x.mean()) / np.sqrt(x.var() + eps) * f[p + ".weight"] + f[p + ".bias"]

    att, ffn, S = np.zeros((L, C)), np.zeros((L, C)), np.zeros((L, H, N, N))
    out = []
    for tok in tokens:
        x = ln(f["emb.weight"][tok], "blocks.0.ln0")
        for i in range(L):
            a = {k[len(f"blocks.{i}.att."):]: v.squeeze() for k, v in f.items() if k.startswith(f"blocks.{i}.att.")}
            xx = ln(x, f"blocks.{i}.ln1")
            sx, att[i] = att[i] - xx, xx
            m = np.tanh((xx + sx * a["time_maa_x"]) @ a["time_maa_w1"]).reshape(5, -1)
            mw, mk, mv, mr, mg = (m[j] @ a["time_maa_w2"][j] for j in range(5))
            r = a["receptance.weight"] @ (xx + sx * (a["time_maa_r"] + mr))
            k = a["key.weight"] @ (xx + sx * (a["time_maa_k"] + mk))
            v = a["value.weight"] @ (xx + sx * (a["time_maa_v"] + mv))
            gg = a["gate.weight"] @ (xx + sx * (a["time_maa_g"] + mg))
            wx = xx + sx * (a["time_maa_w"] + mw)
            w = np.exp(-np.exp(a["time_decay"] + np.tanh(wx @ a["time_decay_w1"]) @ a["time_decay_w2"]))
            r, k, v, w = (z.reshape(H, N) for z in (r, k, v, w))
            kv = k[:, :, None] * v[:, None, :]
            y = np.einsum("hi,hij->hj", r, a["time_faaaa"][:, :, None] * kv + S[i])
            S[i] = kv + w[:, :, None] * S[i]
            y = (y - y.mean(1, keepdims=True)) / np.sqrt(y.var(1, keepdims=True) + 64e-5)
            y = y.ravel() * a["ln_x.weight"] + a["ln_x.bias"]
            x = x + a["output.weight"] @ (y * gg / (1 + np.exp(-gg)))
            xx = ln(x, f"blocks.{i}.ln2")
            sx, ffn[i] = ffn[i] - xx, xx
            kx = xx + sx * f[f"blocks.{i}.ffn.time_maa_k"].ravel()
            rx = xx + sx * f[f"blocks.{i}.ffn.time_maa_r"].ravel()
            hidden = np.maximum(f[f"blocks.{i}.ffn.key.weight"] @ kx, 0) ** 2
            rr = 1 / (1 + np.exp(-(f[f"blocks.{i}.ffn.receptance.weight"] @ rx)))
            x = x + rr * (f[f"blocks.{i}.ffn.value.weight"] @ hidden)
        out.append(f["head.weight"] @ ln(x, "ln_out"))
    return np.stack(out)


@pytest.mark.parametrize("C,L,V", [(128, 2, 1000), (256, 3, 1531)])
def test_matches_official(tmp_path: Path, C: int, L: int, V: int) -> None:
    """Logits for 64 tokens, stepped and as one sequence, within 1e-4 of the logit span; states match."""
    pth = tmp_path / "rwkv6.pth"
    make_checkpoint(pth, C, L, V, seed=C + L)
    tokens = np.random.default_rng(0).integers(0, V, N_TOKENS).tolist()
    ref = run_official(pth, 6, tokens)
    gguf = tmp_path / "rwkv6.gguf"
    convert(pth, gguf, out_type="f32")
    m = _core.Model(str(gguf))
    assert (m.arch, m.n_vocab, m.n_embd, m.n_layer) == ("rwkv6", V, C, L)
    assert m.state_size == L * (2 * C + C * 64)

    steps, s = run_steps(m, tokens)
    assert rel_err(steps, ref["logits_step"]) < 1e-4
    assert rel_err(steps, ref["logits_seq"]) < 1e-4
    np.testing.assert_allclose(s, pyrnn_state(ref, L), atol=1e-4 * np.abs(s).max())

    s2 = np.zeros(m.state_size, np.float32)
    seq = m.forward(tokens, s2, all_logits=True)
    assert rel_err(seq, ref["logits_step"]) < 1e-4
    np.testing.assert_allclose(s2, s, atol=1e-5 * np.abs(s).max())


def test_prefill_equals_steps_and_state_continues(tmp_path: Path) -> None:
    """A sequence call equals N single steps; a state copied mid-sequence continues bit-exactly."""
    pth = tmp_path / "rwkv6.pth"
    make_checkpoint(pth, 128, 2, 300, seed=5)
    gguf = tmp_path / "m.gguf"
    convert(pth, gguf, out_type="f32")
    m = _core.Model(str(gguf))
    tokens = np.random.default_rng(1).integers(0, 300, 150).tolist()  # > one 64-token chunk
    assert_prefill_lengths_equal_steps(m, tokens)
    s_seq = np.zeros(m.state_size, np.float32)
    all_seq = m.forward(tokens, s_seq, all_logits=True)
    all_step, s_step = run_steps(m, tokens)
    assert np.abs(all_seq - all_step).max() <= 1e-5 * np.abs(all_step).max()
    assert np.abs(s_seq - s_step).max() <= 1e-5 * np.abs(s_step).max()

    s = np.zeros(m.state_size, np.float32)
    m.forward(tokens[:70], s)
    saved = s.copy()
    a = m.forward(tokens[70:], s, all_logits=True)
    b = m.forward(tokens[70:], saved, all_logits=True)
    assert np.array_equal(a, b) and np.array_equal(s, saved)


def test_large_log_decays_stay_accurate_in_fp32(tmp_path: Path) -> None:
    """Decays from w ≈ 1 − 2e-5 to w = 0 (exp(−exp(·)) underflowing in fp32) match pip and float64 math."""
    pth = tmp_path / "rwkv6.pth"
    sd = make_checkpoint(pth, 128, 2, 700, seed=11, decay=(-11.0, 5.0))
    tokens = np.random.default_rng(3).integers(0, 700, N_TOKENS).tolist()
    convert(pth, tmp_path / "m.gguf", out_type="f32")
    ours, s = run_steps(_core.Model(str(tmp_path / "m.gguf")), tokens)
    exact = reference_f64(sd, tokens)
    ref = run_official(pth, 6, tokens)
    assert np.isfinite(s).all()
    assert rel_err(ours, exact) < 1e-5
    assert rel_err(ref["logits_step"], exact) < 1e-5
    assert rel_err(ours, ref["logits_step"]) < 1e-4


def test_bf16_checkpoint_and_f16_output(tmp_path: Path) -> None:
    """A bf16 .pth (as released) converts exactly; f16 output stays within f16 rounding of the f32 model."""
    pth = tmp_path / "rwkv6.pth"
    sd = make_checkpoint(pth, 128, 2, 500, seed=9, dtype=torch.bfloat16)
    tokens = np.random.default_rng(2).integers(0, 500, 32).tolist()
    logits = {}
    for t in ("f32", "f16"):
        convert(pth, tmp_path / f"{t}.gguf", out_type=t)
        m = _core.Model(str(tmp_path / f"{t}.gguf"))
        logits[t] = m.forward(tokens, np.zeros(m.state_size, np.float32), all_logits=True)
    # pip folds ln0 into the embedding in the checkpoint's dtype for v4-v6, so its fp32 reference
    # is made from an fp32 copy of the same (bf16-representable) values.
    copy = tmp_path / "rwkv6_fp32.pth"
    torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, copy)
    ref = run_official(copy, 6, tokens)
    assert rel_err(logits["f32"], ref["logits_step"]) < 1e-4
    assert rel_err(logits["f16"], logits["f32"]) < 1e-2
    assert (tmp_path / "f16.gguf").stat().st_size < 0.7 * (tmp_path / "f32.gguf").stat().st_size


def _to_hf(sd: dict[str, np.ndarray], folder: Path, C: int, L: int, V: int) -> None:
    """The same weights as a Hugging Face Rwkv6ForCausalLM folder (model.safetensors + config.json)."""
    names = [("emb.weight", "rwkv.embeddings.weight"), ("ln_out.", "rwkv.ln_out."), ("blocks.", "rwkv.blocks."),
             (".att.", ".attention."), (".ffn.", ".feed_forward."), (".ln0.", ".pre_ln.")]
    hf = {}
    for k, v in sd.items():
        for a, b in names:
            k = k.replace(a, b)
        hf[k] = v
    folder.mkdir()
    save_safetensors(hf, folder / "model.safetensors")
    config = {"architectures": ["Rwkv6ForCausalLM"], "model_type": "rwkv6", "hidden_size": C, "head_size": 64,
              "num_hidden_layers": L, "vocab_size": V, "intermediate_size": int(3.5 * C) // 32 * 32,
              "attention_hidden_size": C, "head_size_divisor": 8, "rescale_every": 0, "layer_norm_epsilon": 1e-5}
    (folder / "config.json").write_text(json.dumps(config))


def _tensors_equal(a_path: Path, b_path: Path) -> None:
    a, b = pyrnn.GGUFFile(str(a_path)), pyrnn.GGUFFile(str(b_path))
    ta = {t["name"]: t for t in a.tensors}
    tb = {t["name"]: t for t in b.tensors}
    assert ta.keys() == tb.keys()
    for name in tb:
        assert (ta[name]["ne"], ta[name]["type"]) == (tb[name]["ne"], tb[name]["type"]), name
        assert bytes(a.tensor_bytes(name)) == bytes(b.tensor_bytes(name)), name


def test_hf_folder_converts_like_pth(tmp_path: Path) -> None:
    """An Rwkv6ForCausalLM folder of the same weights gives the same tensors and logits as the .pth."""
    C, L, V = 256, 2, 1100
    sd = make_checkpoint(tmp_path / "rwkv6.pth", C, L, V, seed=21)
    _to_hf(sd, tmp_path / "hf", C, L, V)
    convert(tmp_path / "rwkv6.pth", tmp_path / "pth.gguf", out_type="f32")
    convert(tmp_path / "hf", tmp_path / "hf.gguf", out_type="f32")
    _tensors_equal(tmp_path / "hf.gguf", tmp_path / "pth.gguf")
    tokens = np.random.default_rng(4).integers(0, V, 20).tolist()
    a, _ = run_steps(_core.Model(str(tmp_path / "pth.gguf")), tokens)
    b, _ = run_steps(_core.Model(str(tmp_path / "hf.gguf")), tokens)
    assert np.array_equal(a, b)


def test_rescaled_file_matches_rescaled_official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rescale_every_n_layers = 2 (llama.cpp's files from HF configs): weights pre-divided, x halved after
    blocks 2, 4, ...; equals pip run with the same rescaling (RWKV_RESCALE_LAYER=2)."""
    C, L, V = 128, 3, 600
    pth = tmp_path / "rwkv6.pth"
    make_checkpoint(pth, C, L, V, seed=13)
    tensors, _ = read_checkpoint(pth)
    for n, name in [(0, "plain.gguf"), (2, "rescaled.gguf")]:
        w = GGUFWriter(tmp_path / name)
        write_general(w, rwkv6.ARCH, "rescaled", 0)
        rwkv6.convert(tensors, TensorOutput(w, "f32"), rescale_every=n)
        write_world_tokenizer(w, V)
        w.write()
    plain, scaled = pyrnn.GGUFFile(str(tmp_path / "plain.gguf")), pyrnn.GGUFFile(str(tmp_path / "rescaled.gguf"))
    assert scaled.value("rwkv6.rescale_every_n_layers") == 2
    for name, div in [("blk.1.time_mix_output.weight", 1), ("blk.2.time_mix_output.weight", 2),
                      ("blk.2.channel_mix_value.weight", 2)]:
        a = np.frombuffer(bytes(scaled.tensor_bytes(name)), np.float32)
        b = np.frombuffer(bytes(plain.tensor_bytes(name)), np.float32)
        assert np.array_equal(a * div, b), name

    tokens = np.random.default_rng(5).integers(0, V, 32).tolist()
    monkeypatch.setenv("RWKV_RESCALE_LAYER", "2")
    ref = run_official(pth, 6, tokens)
    m = _core.Model(str(tmp_path / "rescaled.gguf"))
    steps, _ = run_steps(m, tokens)
    assert rel_err(steps, ref["logits_step"]) < 1e-4
    seq = m.forward(tokens, np.zeros(m.state_size, np.float32), all_logits=True)
    assert rel_err(seq, ref["logits_step"]) < 1e-4


def _rewrite(src: Path, dst: Path, edit: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    """Copies a GGUF's architecture keys and tensors (f32), replacing tensor X by the list edit[X]."""
    f = pyrnn.GGUFFile(str(src))
    w = GGUFWriter(dst)
    types = {"uint32": ValueType.UINT32, "float32": ValueType.FLOAT32, "string": ValueType.STRING}
    for key in f.keys:
        vt = f.value_type(key)
        if vt in types and not key.startswith("tokenizer."):
            if vt == "string":
                w.add_string(key, f.value(key))
            else:
                w.add_scalar(key, f.value(key), types[vt])
    for t in f.tensors:
        assert t["type"] == 0
        data = np.frombuffer(bytes(f.tensor_bytes(t["name"])), np.float32).reshape(tuple(reversed(t["ne"])))
        for name, array in edit.get(t["name"], [(t["name"], data)]):
            w.add_tensor(name, array.shape, 0, np.ascontiguousarray(array, np.float32))
    w.write()


@pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
def test_llama_cpp_file_runs_unchanged() -> None:
    """llama.cpp's GGUF runs unchanged within 1e-6 of the official logits, stepped and as one sequence."""
    ref = np.load(FIXTURES / "logits.npy")
    tokens = np.load(FIXTURES / "tokens.npy").tolist()
    assert pyrnn.GGUFFile(str(FIXTURES / "rwkv6-tiny-f32.gguf")).value("general.architecture") == "rwkv6"
    model = _core.Model(str(FIXTURES / "rwkv6-tiny-f32.gguf"))
    steps, _ = run_steps(model, tokens)
    assert rel_err(steps, ref) < 1e-6
    assert (steps.argmax(-1) == ref.argmax(-1)).all()
    seq = model.forward(tokens, np.zeros(model.state_size, np.float32), all_logits=True)
    assert rel_err(seq, ref) < 1e-6


@pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
def test_older_llama_cpp_layout_loads(tmp_path: Path) -> None:
    """Older files (separate time_mix_lerp_{w,k,v,r,g}, vectors as (C,1,1)) give the same logits."""
    src = FIXTURES / "rwkv6-tiny-f32.gguf"
    edit: dict[str, list[tuple[str, np.ndarray]]] = {}
    for i in range(2):
        p = f"blk.{i}."
        fused = np.frombuffer(bytes(pyrnn.GGUFFile(str(src)).tensor_bytes(p + "time_mix_lerp_fused.weight")),
                              np.float32).reshape(5, 1, 1, 128)
        edit[p + "time_mix_lerp_fused.weight"] = [(f"{p}time_mix_lerp_{x}.weight", fused[j]) for j, x in
                                                  enumerate("wkvrg")]
        for name in ("time_mix_lerp_x", "time_mix_decay", "channel_mix_lerp_k", "channel_mix_lerp_r"):
            data = np.frombuffer(bytes(pyrnn.GGUFFile(str(src)).tensor_bytes(f"{p}{name}.weight")), np.float32)
            edit[f"{p}{name}.weight"] = [(f"{p}{name}.weight", data.reshape(1, 1, 128))]
    _rewrite(src, tmp_path / "old.gguf", edit)
    old = {t["name"] for t in pyrnn.GGUFFile(str(tmp_path / "old.gguf")).tensors}
    assert "blk.0.time_mix_lerp_fused.weight" not in old and "blk.0.time_mix_lerp_g.weight" in old
    tokens = np.load(FIXTURES / "tokens.npy").tolist()
    a, _ = run_steps(_core.Model(str(src)), tokens)
    b, _ = run_steps(_core.Model(str(tmp_path / "old.gguf")), tokens)
    assert np.array_equal(a, b)


@pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
def test_misshapen_lora_is_named(tmp_path: Path) -> None:
    """A time_mix_w1 whose rows are not 5 blocks fails with an error naming the tensor and the expectation."""
    src = FIXTURES / "rwkv6-tiny-f32.gguf"
    w1 = np.frombuffer(bytes(pyrnn.GGUFFile(str(src)).tensor_bytes("blk.1.time_mix_w1.weight")), np.float32)
    _rewrite(src, tmp_path / "bad.gguf", {"blk.1.time_mix_w1.weight":
                                          [("blk.1.time_mix_w1.weight", w1.reshape(160, 128)[:159])]})
    with pytest.raises(pyrnn.FormatError, match=r"blk\.1\.time_mix_w1\.weight.*5 × time_mix_extra_dim, found 159"):
        _core.Model(str(tmp_path / "bad.gguf"))


@pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
@pytest.mark.parametrize("source", ["source/rwkv6-tiny.pth", "hf"])
def test_converter_writes_llama_cpp_layout(tmp_path: Path, source: str) -> None:
    """Our conversion of the fixture's .pth or HF folder equals llama.cpp's file: every tensor's shape,
    type and bytes, and every non-general metadata key."""
    out = tmp_path / "ours.gguf"
    convert(FIXTURES / source, out, out_type="f32", vocab=FIXTURES / "hf" / "rwkv_vocab_v20230424.txt")
    _tensors_equal(out, FIXTURES / "rwkv6-tiny-f32.gguf")
    ours, theirs = pyrnn.GGUFFile(str(out)), pyrnn.GGUFFile(str(FIXTURES / "rwkv6-tiny-f32.gguf"))
    for key in theirs.keys:
        if not key.startswith("general."):
            assert ours.value(key) == theirs.value(key), key
    ref = np.load(FIXTURES / "logits.npy")
    steps, _ = run_steps(_core.Model(str(out)), np.load(FIXTURES / "tokens.npy").tolist())
    assert rel_err(steps, ref) < 1e-6


@pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
def test_llama_cpp_q8_0_file_matches_llama_cpp(tmp_path: Path) -> None:
    """llama.cpp's q8_0 file runs with llama.cpp's own numbers, and `pyrnn quantize` of its f32 file
    reproduces llama-quantize's bytes (the LoRA, decay and mix tensors stay f32)."""
    m = pyrnn.load(FIXTURES / "rwkv6-tiny-q8_0.gguf")
    ref = np.load(FIXTURES / "llamacpp_logits_q8_0.npy")
    s = m.new_state()
    ours = np.stack([m.forward([t], s) for t in np.load(FIXTURES / "tokens.npy")])
    # a q8 activation rounding may flip under another summation order: see test_quant_models
    err = np.abs(ours - ref).max(axis=1) / np.ptp(ref, axis=1)
    assert err.max() <= 2e-3 and np.median(err) <= 1e-5, (err.max(), np.median(err))
    quantize_file(FIXTURES / "rwkv6-tiny-f32.gguf", tmp_path / "q8.gguf", "q8_0")
    _tensors_equal(tmp_path / "q8.gguf", FIXTURES / "rwkv6-tiny-q8_0.gguf")
