"""GPT-NeoX 20B BPE in a GGUF (pyrnn.converters.bpe_vocab): the keys equal llama.cpp's, and the tokenizer
rebuilt from them with `tokenizers` encodes and decodes exactly as the original 20B_tokenizer.json."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from shared_paths import SHARED

import pyrnn
from pyrnn.converters.bpe_vocab import (
    TOKEN_TYPE_CONTROL,
    TOKEN_TYPE_NORMAL,
    TOKEN_TYPE_UNUSED,
    TOKEN_TYPE_USER_DEFINED,
    bpe_vocab_from_json,
    bundled_neox_tokenizer,
    tokenizer_from_gguf,
    tokenizer_json_from_gguf,
    write_bpe_tokenizer,
)
from pyrnn.gguf_writer import GGUFWriter

tokenizers = pytest.importorskip("tokenizers", reason="rebuilding a tokenizer needs the tokenizers package")


MAMBA_FIXTURE = SHARED / "fixtures" / "interop" / "mamba" / "mamba-tiny-f32.gguf"
SHAKESPEARE = SHARED / "data" / "tinyshakespeare.txt"
NEOX_SIZE = 50277

# ARCHITECTURES.md §1.5.2 vectors (made with tokenizers 0.23.3) and more kinds of text.
GOLDEN = {
    "Hello world": [12092, 1533], "a  b": [66, 50276, 67], "x\n\n  y": [89, 535, 50276, 90],
    "       indented": [50271, 527, 8006], "\nIn a shocking finding": [187, 688, 247, 29103, 4560],
    "<|endoftext|>hi": [0, 5801], "café": [68, 2320, 860],
}
TEXTS = [
    *GOLDEN,
    "cafe\u0301 and caf\u00e9: NFC makes them one", "def f(x):\n\treturn x ** 2  # square\r\n",
    "    indented    with   runs of spaces\t\t\n\n\n" + " " * 30 + "x", "你好，世界。今天天气很好。",
    "日本語のテキスト：東京は晴れです。", "Привет, мир! Ελληνικά العربية עברית हिन्दी",
    "emoji 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️", "\u00a0non-breaking\u3000ideographic space",
    "quotes ' \" ` 's 't 're 've 'm 'll 'd don't", "numbers 3.14159 2718281828 1,000,000 0x7fffffff",
    "<|padding|><|endoftext|> <|endoftext|x", "\x00\x01\x7f control \x1b[31mred\x1b[0m",
    "Bob: Hello Alice!\n\nAlice: Hi Bob.\n\nBob:", "https://example.com/path?query=1&b=%20#frag", "",
]


def random_texts(n: int, seed: int) -> list[str]:
    """Random strings over ASCII, Latin, Greek, CJK, emoji, combining marks and whitespace."""
    rng = random.Random(seed)
    ranges = [(0x20, 0x7E), (0xA0, 0x17F), (0x370, 0x3FF), (0x300, 0x36F), (0x4E00, 0x4FFF), (0x1F600, 0x1F64F)]
    spaces = [" ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", "\u00a0"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 40)):
            if rng.random() < 0.2:
                parts.append(rng.choice(spaces))
            else:
                lo, hi = rng.choice(ranges)
                parts.append(chr(rng.randint(lo, hi)))
        out.append("".join(parts))
    return out


@pytest.fixture(scope="module")
def original() -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_file(str(bundled_neox_tokenizer()))


@pytest.fixture(scope="module")
def neox_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bpe") / "neox.gguf"
    w = GGUFWriter(path)
    w.add_string("general.architecture", "rwkv4")
    write_bpe_tokenizer(w, NEOX_SIZE, bundled_neox_tokenizer())
    w.write()
    return path


def test_bundled_file_is_the_20b_tokenizer(original: tokenizers.Tokenizer) -> None:
    """The bundled tokenizer.json is ChatRWKV's 20B_tokenizer.json: 50,277 ids, §1.5.2's vectors."""
    import hashlib

    assert hashlib.md5(bundled_neox_tokenizer().read_bytes()).hexdigest() == "55634e54c40440d3639fc80ef8e7bdd9"
    assert original.get_vocab_size() == NEOX_SIZE
    for text, ids in GOLDEN.items():
        assert original.encode(text).ids == ids, text


def test_keys(neox_gguf: Path) -> None:
    """The GGUF holds llama.cpp's BPE keys; token types mark the 2 special and 23 whitespace tokens."""
    f = pyrnn.GGUFFile(str(neox_gguf))
    assert f.value("tokenizer.ggml.model") == "gpt2" and f.value("tokenizer.ggml.pre") == "mpt"
    tokens, types = f.value("tokenizer.ggml.tokens"), f.value("tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == NEOX_SIZE
    assert tokens[:3] == ["<|endoftext|>", "<|padding|>", "!"] and tokens[12092] == "Hello"
    assert tokens[1533] == "Ġworld" and tokens[50276] == "  " and tokens[50254] == " " * 24
    assert types[:2] == [TOKEN_TYPE_CONTROL] * 2 and set(types[50254:]) == {TOKEN_TYPE_USER_DEFINED}
    assert set(types[2:50254]) == {TOKEN_TYPE_NORMAL}
    assert len(f.value("tokenizer.ggml.merges")) == 50009 and f.value("tokenizer.ggml.merges")[0] == "Ġ Ġ"
    assert [f.value(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "unknown")] == [0, 0, 0]
    assert f.value("tokenizer.ggml.add_bos_token") is False


def test_llama_cpp_reads_the_keys(neox_gguf: Path) -> None:
    """gguf-py (llama.cpp's reader) reads the same tokens, types and merges."""
    gguf = pytest.importorskip("gguf", reason="llama.cpp's gguf-py is a test extra")
    r = gguf.GGUFReader(str(neox_gguf))
    assert r.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert r.fields["tokenizer.ggml.tokens"].contents()[50276] == "  "
    assert len(r.fields["tokenizer.ggml.merges"].contents()) == 50009


def test_rebuilt_tokenizer_equals_original(neox_gguf: Path, original: tokenizers.Tokenizer) -> None:
    """Encoding (ids and token strings) and decoding through the rebuilt tokenizer equal the original's."""
    rebuilt = tokenizer_from_gguf(neox_gguf)
    assert rebuilt.get_vocab_size() == NEOX_SIZE
    texts = TEXTS + random_texts(300, seed=1)
    for text in texts:
        a, b = rebuilt.encode(text), original.encode(text)
        assert (a.ids, a.tokens) == (b.ids, b.tokens), repr(text)
        assert rebuilt.decode(a.ids, skip_special_tokens=False) == original.decode(b.ids, skip_special_tokens=False)
    rng = np.random.default_rng(2)
    for _ in range(200):  # any id sequence, split UTF-8 included, decodes the same
        ids = rng.integers(0, NEOX_SIZE, rng.integers(1, 20)).tolist()
        for skip in (False, True):
            assert rebuilt.decode(ids, skip_special_tokens=skip) == original.decode(ids, skip_special_tokens=skip)
    for i in range(NEOX_SIZE):
        assert rebuilt.id_to_token(i) == original.id_to_token(i)


@pytest.mark.skipif(not SHAKESPEARE.exists(), reason="Tiny Shakespeare lives in ../shared/data (absent here)")
def test_rebuilt_tokenizer_on_real_text(neox_gguf: Path, original: tokenizers.Tokenizer) -> None:
    """On 1 MB of real text the rebuilt tokenizer gives the original's ids and decodes back exactly."""
    text = SHAKESPEARE.read_text(encoding="utf-8")
    ids = tokenizer_from_gguf(neox_gguf).encode(text).ids
    assert ids == original.encode(text).ids
    assert tokenizer_from_gguf(neox_gguf).decode(ids) == text


@pytest.mark.skipif(not MAMBA_FIXTURE.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
def test_keys_equal_llama_cpp_builtin_neox(tmp_path: Path) -> None:
    """For a 264-token model our keys equal those llama.cpp wrote with its built-in NeoX vocabulary."""
    ours_path = tmp_path / "ours.gguf"
    w = GGUFWriter(ours_path)
    write_bpe_tokenizer(w, 264, bundled_neox_tokenizer())
    w.write()
    ours, theirs = pyrnn.GGUFFile(str(ours_path)), pyrnn.GGUFFile(str(MAMBA_FIXTURE))
    keys = [k for k in theirs.keys if k.startswith("tokenizer.")]
    assert len(keys) == 8
    for key in keys:
        assert ours.value(key) == theirs.value(key), key
    # and llama.cpp's cut-down file rebuilds: its merges that reach beyond the 264 tokens are dropped
    tok = tokenizer_from_gguf(MAMBA_FIXTURE)
    assert tok.get_vocab_size() == 264
    ids = tok.encode("the cat is in it or on the mat").ids
    assert ids and max(ids) < 264


def test_cut_and_padded_vocabularies(tmp_path: Path) -> None:
    """A model with fewer rows keeps the first ids; one with more gets unused [PAD{i}] tokens."""
    cut = bpe_vocab_from_json(bundled_neox_tokenizer(), 1000)
    assert len(cut.tokens) == 1000 and cut.eot_id == 0
    padded = bpe_vocab_from_json(bundled_neox_tokenizer(), 50304)  # Pythia-style padded embedding
    assert padded.tokens[NEOX_SIZE:] == [f"[PAD{i}]" for i in range(NEOX_SIZE, 50304)]
    assert set(padded.types[NEOX_SIZE:]) == {TOKEN_TYPE_UNUSED}
    w = GGUFWriter(tmp_path / "p.gguf")
    write_bpe_tokenizer(w, 50304, bundled_neox_tokenizer())
    w.write()
    doc = json.loads(tokenizer_json_from_gguf(tmp_path / "p.gguf"))
    assert len(doc["model"]["vocab"]) == 50254 and "[PAD50300]" not in doc["model"]["vocab"]


def test_rejects_other_tokenizers(tmp_path: Path) -> None:
    """A tokenizer.json that is not byte-level BPE is refused, naming what was found."""
    doc = json.loads(bundled_neox_tokenizer().read_text(encoding="utf-8"))
    doc["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁"}
    (tmp_path / "t.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match="Metaspace"):
        bpe_vocab_from_json(tmp_path / "t.json", 100)
    (tmp_path / "w.json").write_text(json.dumps({"model": {"type": "WordPiece", "vocab": {}}}), encoding="utf-8")
    with pytest.raises(ValueError, match="WordPiece"):
        bpe_vocab_from_json(tmp_path / "w.json", 100)
