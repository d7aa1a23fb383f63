"""RWKV-4: pyrnn equals the official implementations — pip rwkv (cpu fp32) on random checkpoints in the
BlinkDL layout, and transformers' RwkvForCausalLM on a Hugging Face folder — token by token and as one
sequence; the state matches and continues exactly; the tokenizer chosen for the file is the right one."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from rwkv_official import run_official
from tiny_models import assert_prefill_lengths_equal_steps, rwkv4_state_dict

import pyrnn
from pyrnn import _core
from pyrnn.converters.bpe_vocab import bundled_neox_tokenizer, tokenizer_from_gguf
from pyrnn.converters.convert import convert
from pyrnn.converters.rwkv4 import hf_to_blinkdl

torch = pytest.importorskip("torch", reason="the official reference needs PyTorch (README test command)")

N_TOKENS = 64


def make_state_dict(C: int, L: int, V: int, seed: int, A: int | None = None) -> dict[str, torch.Tensor]:
    """tiny_models.rwkv4_state_dict as torch tensors."""
    return {k: torch.from_numpy(v) for k, v in rwkv4_state_dict(C, L, V, seed, A).items()}


def make_checkpoint(path: Path, C: int, L: int, V: int, seed: int, dtype: torch.dtype = torch.float32) -> None:
    torch.save({k: v.to(dtype) for k, v in make_state_dict(C, L, V, seed).items()}, path)


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a − ref| over each row, relative to that row's logit span; the worst row."""
    span = ref.max(axis=-1) - ref.min(axis=-1)
    return float(np.max(np.abs(a - ref).max(axis=-1) / span))


def split_state(s: np.ndarray, C: int, L: int) -> list[dict[str, np.ndarray]]:
    """pyrnn's state → per layer {att_x, ffn_x, aa, bb, pp} (A = C here)."""
    layers = s.reshape(L, 5, C).astype(np.float64)
    return [dict(zip(("att_x", "ffn_x", "aa", "bb", "pp"), layer)) for layer in layers]


def assert_states_match(ours: list[dict[str, np.ndarray]], ref: list[dict[str, np.ndarray]], tol: float) -> None:
    """att_x, ffn_x equal; the wkv sums aa·e^pp and bb·e^pp equal (pp alone is only a scale)."""
    for a, b in zip(ours, ref):
        for k in ("att_x", "ffn_x"):
            np.testing.assert_allclose(a[k], b[k], atol=tol * np.abs(b[k]).max(), rtol=0)
        den_a, den_b = a["bb"] * np.exp(a["pp"]), b["bb"] * np.exp(b["pp"])
        np.testing.assert_allclose(den_a, den_b, rtol=tol, atol=0)  # sums of positive terms
        # the numerator sums signed values: judge it on the scale of its terms, den · max|v̄|
        scale = den_b * np.abs(b["aa"] / b["bb"]).max()
        assert np.all(np.abs(a["aa"] * np.exp(a["pp"]) - b["aa"] * np.exp(b["pp"])) <= tol * scale)


def pip_state(ref: dict[str, np.ndarray], L: int) -> list[dict[str, np.ndarray]]:
    """pip's state list: per layer [att_x, aa, bb, pp, ffn_x]."""
    names = ("att_x", "aa", "bb", "pp", "ffn_x")
    return [{n: ref[f"state_{5 * i + j}"].astype(np.float64) for j, n in enumerate(names)} for i in range(L)]


def load(gguf: Path) -> _core.Model:
    return _core.Model(str(gguf))


@pytest.mark.parametrize("C,L,V", [(128, 2, 1000), (256, 3, 1531)])
def test_matches_official(tmp_path: Path, C: int, L: int, V: int) -> None:
    """Logits for 64 tokens, stepped and as one sequence, within 1e-4 of the logit span; states match."""
    pth = tmp_path / "rwkv4.pth"
    make_checkpoint(pth, C, L, V, seed=C + L)
    tokens = np.random.default_rng(0).integers(0, V, N_TOKENS).tolist()
    ref = run_official(pth, 4, tokens)
    gguf = tmp_path / "rwkv4.gguf"
    convert(pth, gguf, out_type="f32")
    m = load(gguf)
    assert (m.arch, m.n_vocab, m.n_embd, m.n_layer) == ("rwkv4", V, C, L)
    assert m.state_size == L * 5 * C

    s = np.zeros(m.state_size, np.float32)
    m.init_state(s)
    assert np.all(s.reshape(L, 5, C)[:, 4] == np.float32(-1e30)) and not s.reshape(L, 5, C)[:, :4].any()
    steps = np.stack([m.forward([t], s) for t in tokens])
    assert rel_err(steps, ref["logits_step"]) < 1e-4
    assert rel_err(steps, ref["logits_seq"]) < 1e-4
    assert_states_match(split_state(s, C, L), pip_state(ref, L), 1e-4)

    s2 = np.zeros(m.state_size, np.float32)
    m.init_state(s2)
    seq = m.forward(tokens, s2, all_logits=True)
    assert rel_err(seq, ref["logits_step"]) < 1e-4
    assert_states_match(split_state(s2, C, L), split_state(s, C, L), 1e-5)


def test_prefill_equals_steps_and_state_continues(tmp_path: Path) -> None:
    """A sequence call equals N single steps; a state copied mid-sequence continues bit-exactly."""
    pth = tmp_path / "rwkv4.pth"
    make_checkpoint(pth, 128, 2, 300, seed=5)
    gguf = tmp_path / "m.gguf"
    convert(pth, gguf, out_type="f32")
    m = load(gguf)
    tokens = np.random.default_rng(1).integers(0, 300, 150).tolist()  # > two 64-token chunks
    assert_prefill_lengths_equal_steps(m, tokens)

    def fresh() -> np.ndarray:
        s = np.zeros(m.state_size, np.float32)
        m.init_state(s)
        return s

    s_seq = fresh()
    all_seq = m.forward(tokens, s_seq, all_logits=True)
    s_step = fresh()
    all_step = np.stack([m.forward([t], s_step) for t in tokens])
    assert np.abs(all_seq - all_step).max() <= 1e-5 * np.abs(all_step).max()
    last = m.forward(tokens, fresh())  # last-token-only output of a multi-chunk call
    assert np.array_equal(last, all_seq[-1])

    s = fresh()
    m.forward(tokens[:70], s)
    saved = s.copy()
    a = m.forward(tokens[70:], s, all_logits=True)
    b = m.forward(tokens[70:], saved, all_logits=True)
    assert np.array_equal(a, b) and np.array_equal(s, saved)


def test_bf16_checkpoint_and_f16_output(tmp_path: Path) -> None:
    """A bf16 .pth (as released) converts exactly; f16 output stays within f16 rounding of the f32 model."""
    pth = tmp_path / "rwkv4.pth"
    make_checkpoint(pth, 128, 2, 500, seed=9, dtype=torch.bfloat16)
    # pip folds ln0 into the embedding in the storage dtype (bf16), so its reference comes from an fp32
    # copy of the same values (ARCHITECTURES.md §1.0.2); pyrnn applies ln0 at run time in fp32.
    copy = tmp_path / "rwkv4_fp32.pth"
    torch.save({k: v.float() for k, v in torch.load(pth).items()}, copy)
    tokens = np.random.default_rng(2).integers(0, 500, 32).tolist()
    logits = {}
    for t in ("f32", "f16"):
        convert(pth, tmp_path / f"{t}.gguf", out_type=t)
        m = load(tmp_path / f"{t}.gguf")
        s = np.zeros(m.state_size, np.float32)
        m.init_state(s)
        logits[t] = m.forward(tokens, s, all_logits=True)
    ref = run_official(copy, 4, tokens)
    assert rel_err(logits["f32"], ref["logits_step"]) < 1e-4
    assert rel_err(logits["f16"], logits["f32"]) < 1e-2
    assert (tmp_path / "f16.gguf").stat().st_size < 0.7 * (tmp_path / "f32.gguf").stat().st_size


def test_file_layout_is_lossless(tmp_path: Path) -> None:
    """Every .pth tensor is in the file unchanged (raw time_decay, time_first, mixes, ln0); vectors are f32."""
    sd = make_state_dict(64, 2, 200, seed=3)
    pth = tmp_path / "m.pth"
    torch.save(sd, pth)
    out = tmp_path / "m.gguf"
    convert(pth, out, out_type="f16")
    f = pyrnn.GGUFFile(str(out))
    info = {t["name"]: t for t in f.tensors}
    assert len(info) == 6 + 18 * 2
    for name, key in [("blk.1.time_mix_decay.weight", "blocks.1.att.time_decay"),
                      ("blk.1.time_mix_first.weight", "blocks.1.att.time_first"),
                      ("blk.0.time_mix_lerp_v.weight", "blocks.0.att.time_mix_v"),
                      ("blk.1.channel_mix_lerp_r.weight", "blocks.1.ffn.time_mix_r"),
                      ("token_embd_norm.weight", "blocks.0.ln0.weight")]:
        assert info[name]["type_name"] == "f32", name
        got = np.frombuffer(bytes(f.tensor_bytes(name)), np.float32)
        assert np.array_equal(got, sd[key].numpy().ravel()), name
    assert info["blk.0.time_mix_output.weight"]["ne"] == (64, 64)
    assert info["blk.0.channel_mix_value.weight"]["ne"] == (256, 64)  # (F, C) ne: C rows of F
    assert f.value("rwkv4.feed_forward_length") == 256 and f.value("rwkv4.block_count") == 2


def test_rejects_training_variants(tmp_path: Path) -> None:
    """A checkpoint with keys pip cannot run (e.g. ffnPre) is refused with the key named."""
    sd = make_state_dict(64, 1, 100, seed=4)
    sd["blocks.0.ffnPre.key.weight"] = torch.zeros(256, 64)
    torch.save(sd, tmp_path / "m.pth")
    with pytest.raises(ValueError, match="ffnPre"):
        convert(tmp_path / "m.pth", tmp_path / "m.gguf", out_type="f32")


TEXTS = [
    "Hello world", "a  b", "x\n\n  y", "       indented", "\nIn a shocking finding", "<|endoftext|>hi",
    "café", "cafe\u0301 (NFC: the same word)", "你好，世界 😀 emoji",
    "def f(x):\n\treturn x**2  # code\n", "Numbers 1234567 3.14159 1e-5", "Bob: hi\n\nAlice:",
]


def test_tokenizer_follows_vocabulary_size(tmp_path: Path) -> None:
    """50,277 ids get the NeoX 20B BPE (same ids as the original), other sizes the World vocabulary."""
    from tokenizers import Tokenizer

    torch.save(make_state_dict(32, 1, 50277, seed=6), tmp_path / "pile.pth")
    convert(tmp_path / "pile.pth", tmp_path / "pile.gguf", out_type="f16")
    f = pyrnn.GGUFFile(str(tmp_path / "pile.gguf"))
    assert (f.value("tokenizer.ggml.model"), f.value("tokenizer.ggml.pre")) == ("gpt2", "mpt")
    assert len(f.value("tokenizer.ggml.tokens")) == 50277
    original = Tokenizer.from_file(str(bundled_neox_tokenizer()))
    rebuilt = tokenizer_from_gguf(f)
    for text in TEXTS:
        assert rebuilt.encode(text).ids == original.encode(text).ids, text
    assert load(tmp_path / "pile.gguf").n_vocab == 50277

    torch.save(make_state_dict(32, 1, 1000, seed=7), tmp_path / "world.pth")
    convert(tmp_path / "world.pth", tmp_path / "world.gguf", out_type="f32")
    w = pyrnn.GGUFFile(str(tmp_path / "world.gguf"))
    assert w.value("tokenizer.ggml.model") == "rwkv" and len(w.value("tokenizer.ggml.tokens")) == 1000

    convert(tmp_path / "world.pth", tmp_path / "neox.gguf", out_type="f32", vocab=bundled_neox_tokenizer())
    n = pyrnn.GGUFFile(str(tmp_path / "neox.gguf"))
    assert n.value("tokenizer.ggml.model") == "gpt2" and len(n.value("tokenizer.ggml.tokens")) == 1000


def hf_model(C: int, L: int, V: int, seed: int) -> tuple[object, dict[str, torch.Tensor]]:
    """A transformers RwkvForCausalLM holding make_state_dict's values under HF names."""
    transformers = pytest.importorskip("transformers", reason="the HF reference needs transformers")
    cfg = transformers.RwkvConfig(vocab_size=V, hidden_size=C, num_hidden_layers=L, attention_hidden_size=C,
                                  intermediate_size=4 * C, rescale_every=0, context_length=1024)
    model = transformers.RwkvForCausalLM(cfg).eval()
    sd = make_state_dict(C, L, V, seed)
    target = model.state_dict()
    hf_sd = {blinkdl_to_hf(k): v for k, v in sd.items()}
    assert set(hf_sd) == set(target)
    model.load_state_dict({k: v.reshape(target[k].shape) for k, v in hf_sd.items()})
    return model, sd


def blinkdl_to_hf(key: str) -> str:
    """transformers' convert_rwkv_checkpoint_to_hf.py renaming (ARCHITECTURES.md §1.1.4)."""
    if key == "head.weight":
        return key
    key = key.replace("emb.", "embeddings.").replace(".ln0.", ".pre_ln.")
    key = key.replace(".att.", ".attention.").replace(".ffn.", ".feed_forward.")
    key = re.sub(r"\.time_mix_([kvr])$", lambda m: ".time_mix_" + {"k": "key", "v": "value", "r": "receptance"}[m[1]],
                 key)
    return "rwkv." + key


def test_hf_names_map_back() -> None:
    """hf_to_blinkdl inverts transformers' renaming for every RWKV-4 key."""
    sd = make_state_dict(32, 2, 50, seed=1)
    assert hf_to_blinkdl({blinkdl_to_hf(k): v for k, v in sd.items()}).keys() == sd.keys()


def test_hugging_face_folder_matches_transformers(tmp_path: Path) -> None:
    """An HF RwkvForCausalLM folder converts; logits per token (with state) and as one sequence match."""
    C, L, V = 128, 2, 1000
    model, _ = hf_model(C, L, V, seed=11)
    folder = tmp_path / "hf"
    model.save_pretrained(folder)
    gguf = tmp_path / "hf.gguf"
    assert convert(folder, gguf, out_type="f32") == "rwkv4"
    m = load(gguf)
    tokens = np.random.default_rng(3).integers(0, V, N_TOKENS).tolist()
    with torch.no_grad():
        seq_ref = model(torch.tensor([tokens])).logits[0].numpy()
        state = None
        steps_ref = []
        for t in tokens:
            out = model(torch.tensor([[t]]), state=state, use_cache=True)
            state = out.state
            steps_ref.append(out.logits[0, -1].numpy())
    s = np.zeros(m.state_size, np.float32)
    m.init_state(s)
    steps = np.stack([m.forward([t], s) for t in tokens])
    assert rel_err(steps, np.stack(steps_ref)) < 1e-4
    assert rel_err(steps, seq_ref) < 1e-4
    # HF state: five (1, C, L) tensors [ffn_x, att_x, aa, bb, pp]
    hf = [{n: state[j][0, :, i].double().numpy() for j, n in enumerate(("ffn_x", "att_x", "aa", "bb", "pp"))}
          for i in range(L)]
    assert_states_match(split_state(s, C, L), hf, 1e-4)
