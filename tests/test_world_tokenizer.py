"""RWKV World tokenizer (pyrnn._core.WorldTokenizer, pyrnn.converters.rwkv_vocab) against the
official implementation: the pip package `rwkv`, its rwkv_vocab_v20230424.txt and TRIE_TOKENIZER."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import numpy as np
import pyrnn._core as core
import pytest
import rwkv
from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

from pyrnn.converters.rwkv_vocab import (
    TOKEN_TYPE_CONTROL,
    TOKEN_TYPE_NORMAL,
    TOKEN_TYPE_UNUSED,
    gguf_world_tokens,
    load_world_vocab,
)

DATA = Path(__file__).parent / "data"
VOCAB_PATH = Path(rwkv.__file__).parent / "rwkv_vocab_v20230424.txt"
N_VOCAB = 65536  # embedding rows of the World models
N_LINES = 65529  # tokens in the vocabulary file

MIXED_PIECES = [
    "Hello world",
    "\nIn a shocking finding, scientist discovered a herd of dragons",
    "User: hi\n\nAssistant:",
    "def f(x):\n\treturn x ** 2  # square\r\n",
    "    indented    with   runs of spaces\t\t\n\n\n",
    "你好，世界。今天天气很好，我们去公园散步吧。",
    "日本語のテキスト：東京は晴れです。カタカナとひらがな。",
    "한국어 문장입니다. 안녕하세요!",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "Ελληνικά και العربية و עברית and हिन्दी",
    "emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ 🎉",
    "é à ü ñ ç ø å ß œ \u00a0non-breaking\u00a0space",
    "quotes ' \" ` and backslashes \\ \\n \\x00",
    "numbers 3.14159 2718281828 1,000,000 0x7fffffff -42e-7",
    "<s>[PAD65530]<|endoftext|><|padding|> [PAD1] <s",
    "\x00\x01\x7f control \x1b[31mred\x1b[0m",
    "https://example.com/path?query=1&b=%20#frag",
]


@pytest.fixture(scope="module")
def vocab() -> list[bytes]:
    return load_world_vocab(VOCAB_PATH)


@pytest.fixture(scope="module")
def official() -> TRIE_TOKENIZER:
    return TRIE_TOKENIZER(str(VOCAB_PATH))


@pytest.fixture(scope="module")
def tok(vocab: list[bytes]) -> core.WorldTokenizer:
    return core.WorldTokenizer(vocab)


@pytest.fixture(scope="module")
def gguf_tok(vocab: list[bytes]) -> core.WorldTokenizer:
    return core.WorldTokenizer.from_gguf_tokens(*gguf_world_tokens(vocab, N_VOCAB))


def check(tok: core.WorldTokenizer, official: TRIE_TOKENIZER, data: bytes) -> list[int]:
    """encode(data) equals the official encodeBytes and decodes back to data."""
    ids = tok.encode(data)
    assert ids == official.encodeBytes(data)
    assert tok.decode(ids) == data
    return ids


def mixed_text(n_bytes: int, seed: int) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < n_bytes:
        piece = rng.choice(MIXED_PIECES)
        parts.append(piece + rng.choice(["", " ", "\n", "\n\n", "  ", "\t"]))
        size += len(parts[-1].encode("utf-8"))
    return "".join(parts)


def write_vocab_file(path: Path, tokens: list[bytes], newline: str = "\n") -> None:
    """A vocabulary file in the official format (ids from 1); str literals where UTF-8."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        for i, t in enumerate(tokens, start=1):
            try:
                literal = repr(t.decode("utf-8"))
            except UnicodeDecodeError:
                literal = repr(t)
            f.write(f"{i} {literal} {len(t)}{newline}")


# --- golden vectors ---------------------------------------------------------------------------


def test_vectors_json(tok: core.WorldTokenizer, official: TRIE_TOKENIZER) -> None:
    """The rwkv.cpp test vectors (tests/data/world_tokenizer_vectors.json) encode to their ids."""
    vectors = json.loads((DATA / "world_tokenizer_vectors.json").read_text(encoding="utf-8"))
    assert vectors["vectors"]
    for v in vectors["vectors"]:
        data = v["text"].encode("utf-8")
        assert len(data) == v["text_utf8_bytes"]
        assert tok.encode(v["text"]) == v["ids"]
        assert check(tok, official, data) == v["ids"]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("Hello world", [33155, 40213]),
        (
            "\nIn a shocking finding, scientist discovered a herd of dragons",
            [11, 1136, 332, 57212, 51746, 45, 60455, 61885, 332, 31076, 4706, 51525],
        ),
        ("你好，世界", [10464, 11685, 19137, 10267, 14610]),
        ("  \t\n\n", [267, 258, 11]),
        ("User: hi\n\nAssistant:", [24281, 59, 4571, 261, 5585, 41693, 59]),
        ("é", [2503]),
        ("\u00a0x", [2430, 121]),
        ("😀", [3319, 153, 129]),
    ],
)
def test_reference_vectors(tok: core.WorldTokenizer, official: TRIE_TOKENIZER, text: str, ids: list[int]) -> None:
    """The vectors of ARCHITECTURES.md §1.5.1 encode to their ids, as the official tokenizer does."""
    assert tok.encode(text) == ids
    assert check(tok, official, text.encode("utf-8")) == ids


@pytest.mark.parametrize(
    "text",
    [
        "😀😃😄😁😆😅😂🤣",
        "👍🏽👍🏿 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵🇺🇸 ❤️‍🔥 1️⃣ 🫠",
        "你好，世界。人工智能正在改变世界。",
        "日本語のテキスト：東京は晴れです。",
        "한국어 문장입니다. 안녕하세요!",
        "𠀀𠀁𪚥 (CJK extension B, four-byte UTF-8)",
        "漢字と emoji 🎉 mixed with English, Русский and العربية",
    ],
)
def test_emoji_and_cjk(tok: core.WorldTokenizer, official: TRIE_TOKENIZER, text: str) -> None:
    """Emoji (ZWJ, flags, modifiers) and CJK text encode like the official tokenizer and round-trip."""
    assert tok.encode(text) == check(tok, official, text.encode("utf-8"))


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe",
        b"\xff",
        b"\x80",
        b"\x80\x80\xbf",
        b"abc\x80def",
        b"\xe4\xbd",  # first two bytes of a three-byte sequence
        b"\xf0\x9f\x98",  # first three bytes of a four-byte emoji
        b"x\xe4\xbdy\xf0\x9fz",
        b"\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80",  # overlong, surrogate, > U+10FFFF
        "你好".encode()[:-1] + "世界".encode()[1:],
    ],
)
def test_invalid_utf8(tok: core.WorldTokenizer, official: TRIE_TOKENIZER, data: bytes) -> None:
    """Invalid UTF-8 (stray, lone continuation, truncated bytes) encodes like encodeBytes, round-trips."""
    check(tok, official, data)


def test_empty(tok: core.WorldTokenizer, official: TRIE_TOKENIZER) -> None:
    """Empty input gives no ids (no BOS/EOS is added) and empty ids decode to b''."""
    assert tok.encode("") == []
    assert tok.encode(b"") == []
    assert check(tok, official, b"") == []
    assert tok.decode([]) == b""


def test_every_single_byte(tok: core.WorldTokenizer, official: TRIE_TOKENIZER) -> None:
    """Each byte alone is token byte + 1, as in the vocabulary file."""
    for b in range(256):
        assert check(tok, official, bytes([b])) == [b + 1]


def test_mixed_text_few_kb(tok: core.WorldTokenizer, official: TRIE_TOKENIZER) -> None:
    """A few KB of mixed scripts, code, whitespace runs and emoji encode like the official one."""
    for seed in range(3):
        text = mixed_text(6000, seed)
        assert tok.encode(text) == check(tok, official, text.encode("utf-8"))


def test_random_bytes(tok: core.WorldTokenizer, official: TRIE_TOKENIZER) -> None:
    """Seeded random byte strings of many lengths encode like encodeBytes and round-trip."""
    rng = random.Random(20230424)
    for n in list(range(0, 40)) + [rng.randrange(40, 2000) for _ in range(60)]:
        check(tok, official, rng.randbytes(n))


def test_random_token_concatenations(tok: core.WorldTokenizer, official: TRIE_TOKENIZER, vocab: list[bytes]) -> None:
    """Runs of random vocabulary entries (long matches that must back off) encode like encodeBytes."""
    rng = random.Random(7)
    for _ in range(200):
        data = b"".join(rng.choice(vocab[1:]) for _ in range(rng.randrange(1, 30)))
        check(tok, official, data)


def test_str_is_utf8_bytes(tok: core.WorldTokenizer) -> None:
    """encode(str) is encode of its UTF-8 bytes; a lone surrogate cannot be encoded."""
    text = mixed_text(3000, 11)
    assert tok.encode(text) == tok.encode(text.encode("utf-8"))
    with pytest.raises(UnicodeEncodeError):
        tok.encode("a\ud800b")
    with pytest.raises(TypeError):
        tok.encode(123)  # type: ignore[call-overload]


def test_long_input_and_threads(tok: core.WorldTokenizer, official: TRIE_TOKENIZER) -> None:
    """Long inputs (GIL released) give the same ids when encoded from several threads at once."""
    data = mixed_text(300_000, 5).encode("utf-8")
    expected = tok.encode(data)
    assert expected == official.encodeBytes(data)
    results: list[list[int]] = [[] for _ in range(4)]
    decoded: list[bytes] = [b""] * 4

    def work(i: int) -> None:
        results[i] = tok.encode(data)
        decoded[i] = tok.decode(results[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results)
    assert all(d == data for d in decoded)


# --- decode ----------------------------------------------------------------------------------


def test_decode_out_of_range(tok: core.WorldTokenizer) -> None:
    """decode of an id outside [0, vocab size) raises IndexError naming the id and the size."""
    assert len(tok) == N_LINES + 1
    for bad in (len(tok), N_VOCAB, -1, 2**31, 2**40, -(2**63)):
        with pytest.raises(IndexError, match=rf"token id {bad} .*vocabulary size {len(tok)}"):
            tok.decode([33155, bad])
    with pytest.raises(TypeError):
        tok.decode([1.0])  # type: ignore[list-item]


def test_decode_accepts_sequences(tok: core.WorldTokenizer) -> None:
    """decode takes any iterable of ints: list, tuple, NumPy array, generator."""
    ids = tok.encode("Hello world")
    assert tok.decode(tuple(ids)) == b"Hello world"
    assert tok.decode(np.array(ids, dtype=np.int64)) == b"Hello world"
    assert tok.decode(i for i in ids) == b"Hello world"


def test_decode_partial_utf8(tok: core.WorldTokenizer) -> None:
    """Decoding id by id yields the raw bytes, split mid-character where tokens split it."""
    ids = tok.encode("😀")
    assert [tok.decode([i]) for i in ids] == [b"\xf0\x9f", b"\x98", b"\x80"]


# --- vocabulary file -------------------------------------------------------------------------


def test_load_world_vocab_matches_official(vocab: list[bytes], official: TRIE_TOKENIZER) -> None:
    """load_world_vocab reads every line to the official tokenizer's bytes; id 0 is b'<s>'."""
    assert len(vocab) == N_LINES + 1
    assert vocab[0] == b"<s>"
    assert vocab[1:] == [official.idx2token[i] for i in range(1, N_LINES + 1)]
    assert vocab[1:257] == [bytes([b]) for b in range(256)]


def test_load_world_vocab_lf_and_crlf(tmp_path: Path, vocab: list[bytes]) -> None:
    """The same vocabulary reads the same with LF and with CRLF line ends."""
    raw = VOCAB_PATH.read_bytes()
    lf = tmp_path / "lf.txt"
    crlf = tmp_path / "crlf.txt"
    lf.write_bytes(raw.replace(b"\r\n", b"\n"))
    crlf.write_bytes(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert load_world_vocab(lf) == vocab
    assert load_world_vocab(crlf) == vocab


def test_load_world_vocab_literals(tmp_path: Path) -> None:
    """str literals become UTF-8 ('\\x80' is 2 bytes), bytes literals stay raw, spaces are kept."""
    path = tmp_path / "v.txt"
    path.write_text(
        "1 '\\x80' 2\n2 b'\\x80' 1\n3 'a b' 3\n4 \"it's\" 4\n5 '\\u4f60' 3\n6 ' ' 1\n",
        encoding="utf-8",
    )
    assert load_world_vocab(path) == [b"<s>", b"\xc2\x80", b"\x80", b"a b", b"it's", "你".encode(), b" "]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1 'a' 2\n", r"v\.txt:1: token has 1 bytes, length column 2"),
        ("1 'a' 1\n3 'b' 1\n", r"v\.txt:2: id 3, expected 2"),
        ("1 __import__('os') 3\n", r"v\.txt:1: cannot parse"),
        ("1 5 1\n", r"v\.txt:1: literal is int"),
        ("1'a'1\n", r"v\.txt:1: expected"),
    ],
)
def test_load_world_vocab_errors(tmp_path: Path, content: str, message: str) -> None:
    """A wrong length, a gap in the ids or a non-literal raises ValueError naming file and line."""
    path = tmp_path / "v.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_world_vocab(path)


# --- GGUF tokens -----------------------------------------------------------------------------


def test_gguf_world_tokens_match_llamacpp(tmp_path: Path) -> None:
    """gguf_world_tokens reproduces llama.cpp's tokens and types for the rwkv7 tiny fixture."""
    fixture = json.loads((DATA / "llamacpp_rwkv7_tiny_tokens.json").read_text(encoding="utf-8"))
    n_vocab = fixture["n_vocab"]
    lines = VOCAB_PATH.read_bytes().splitlines(keepends=True)[: n_vocab - 1]
    path = tmp_path / "head.txt"
    path.write_bytes(b"".join(lines))
    tokens, types = gguf_world_tokens(load_world_vocab(path), n_vocab)
    assert tokens == [t.encode("ascii") for t in fixture["tokens"]]
    assert types == fixture["token_types"]


def test_gguf_world_tokens_layout(vocab: list[bytes]) -> None:
    """Id 0 is '<s>' CONTROL, lines are repr(bytes)[2:-1] NORMAL, then '[PAD{i}]' UNUSED."""
    tokens, types = gguf_world_tokens(vocab, N_VOCAB)
    assert len(tokens) == len(types) == N_VOCAB
    assert (tokens[0], types[0]) == (b"<s>", TOKEN_TYPE_CONTROL)
    assert tokens[1:4] == [b"\\x00", b"\\x01", b"\\x02"]
    assert tokens[93] == b"\\\\"  # byte 0x5c, the backslash
    assert tokens[40] == b"'"  # byte 0x27
    assert tokens[vocab.index("你".encode())] == b"\\xe4\\xbd\\xa0"
    assert set(types[1 : N_LINES + 1]) == {TOKEN_TYPE_NORMAL}
    assert tokens[N_LINES + 1 :] == [f"[PAD{i}]".encode() for i in range(N_LINES + 1, N_VOCAB)]
    assert set(types[N_LINES + 1 :]) == {TOKEN_TYPE_UNUSED}
    with pytest.raises(ValueError, match="more than n_vocab"):
        gguf_world_tokens(vocab, N_LINES)


def test_from_gguf_tokens_round_trip(
    gguf_tok: core.WorldTokenizer, tok: core.WorldTokenizer, vocab: list[bytes]
) -> None:
    """from_gguf_tokens(gguf_world_tokens(vocab)) decodes every id to its bytes and encodes alike."""
    assert len(gguf_tok) == N_VOCAB
    for i in range(1, N_LINES + 1):
        assert gguf_tok.decode([i]) == vocab[i]
    assert gguf_tok.decode([0]) == b"<s>"
    assert gguf_tok.decode([N_VOCAB - 1]) == f"[PAD{N_VOCAB - 1}]".encode()
    rng = random.Random(3)
    for data in [mixed_text(5000, 1).encode("utf-8"), rng.randbytes(5000), b""]:
        assert gguf_tok.encode(data) == tok.encode(data)


def test_from_gguf_tokens_str_entries(vocab: list[bytes], gguf_tok: core.WorldTokenizer) -> None:
    """Token texts given as str (as some GGUF readers return them) build the same tokenizer."""
    tokens, types = gguf_world_tokens(vocab, N_VOCAB)
    from_str = core.WorldTokenizer.from_gguf_tokens([t.decode("utf-8") for t in tokens], types)
    text = mixed_text(4000, 2)
    assert from_str.encode(text) == gguf_tok.encode(text)
    assert from_str.decode(range(N_VOCAB)) == gguf_tok.decode(range(N_VOCAB))


def test_control_and_pad_texts_are_plain_text(gguf_tok: core.WorldTokenizer, official: TRIE_TOKENIZER) -> None:
    """The texts '<s>' and '[PAD…]' encode as ordinary text; CONTROL/UNUSED ids are never produced."""
    data = b"<s>[PAD65530][PAD65535]<s>x [PAD1]"
    ids = gguf_tok.encode(data)
    assert ids == official.encodeBytes(data)
    assert all(0 < i <= N_LINES for i in ids)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("\\q", r"unknown escape \\q"),
        ("ab\\", "backslash at the end"),
        ("\\x4", "two hex digits"),
        ("\\xzz", "two hex digits"),
        ("\\u4f60", r"unknown escape \\u"),
        ("\\0", r"unknown escape \\0"),
    ],
)
def test_from_gguf_tokens_malformed_escape(vocab: list[bytes], text: str, reason: str) -> None:
    """A malformed escape raises ValueError naming the token id and its text."""
    tokens, types = gguf_world_tokens(vocab, N_VOCAB)
    tokens[300] = text.encode()
    escaped = text.replace("\\", "\\\\")
    with pytest.raises(ValueError, match=rf'token 300 "{escaped}": .*{reason}'):
        core.WorldTokenizer.from_gguf_tokens(tokens, types)


def test_from_gguf_tokens_accepted_escapes(vocab: list[bytes]) -> None:
    """Upper-case hex, \\" and raw non-ASCII bytes are read as llama.cpp reads them."""
    tokens, types = gguf_world_tokens(vocab, N_VOCAB)
    tokens[300:303] = [b"\\xC3\\xA9", b'\\"q', "é!".encode()]
    t = core.WorldTokenizer.from_gguf_tokens(tokens, types)
    assert [t.decode([i]) for i in (300, 301, 302)] == ["é".encode(), b'"q', "é!".encode()]


def test_from_gguf_tokens_bad_lists(vocab: list[bytes]) -> None:
    """Lists of different lengths, wrong item types or no usable single bytes raise errors."""
    tokens, types = gguf_world_tokens(vocab, N_VOCAB)
    with pytest.raises(ValueError, match="65536 tokens but 65535 token types"):
        core.WorldTokenizer.from_gguf_tokens(tokens, types[:-1])
    with pytest.raises(TypeError, match=r"tokens\[1\] must be bytes or str"):
        core.WorldTokenizer.from_gguf_tokens([b"<s>", 5], [3, 1])  # type: ignore[list-item]
    types[66] = TOKEN_TYPE_CONTROL  # byte 0x41 'A' may no longer be produced
    with pytest.raises(ValueError, match="single byte 0x41"):
        core.WorldTokenizer.from_gguf_tokens(tokens, types)


# --- constructor from raw bytes ----------------------------------------------------------------


def test_constructor_requires_every_byte() -> None:
    """A vocabulary missing a single-byte token (so encode could fail) is rejected with ValueError."""
    singles = [bytes([b]) for b in range(256)]
    with pytest.raises(ValueError, match="single byte 0x00"):
        core.WorldTokenizer([b"<s>"])
    with pytest.raises(ValueError, match="single byte 0x7f"):
        core.WorldTokenizer([b"<s>", *singles[:127], b"", *singles[128:]])
    with pytest.raises(TypeError, match=r"tokens\[1\] must be bytes"):
        core.WorldTokenizer([b"<s>", "a"])  # type: ignore[list-item]
    assert len(core.WorldTokenizer([b"<s>", *singles])) == 257


def test_custom_vocab_matches_official(tmp_path: Path, official: TRIE_TOKENIZER) -> None:
    """On a small custom vocabulary with duplicates and overlaps, ids equal TRIE_TOKENIZER's."""
    extra = [b"ab", b"abc", b"abcd", b"bcd", b"ab", b"\xe4\xbd", "你好".encode(), b"cd", b"abc"]
    path = tmp_path / "custom.txt"
    write_vocab_file(path, [bytes([b]) for b in range(256)] + extra)
    custom_official = TRIE_TOKENIZER(str(path))
    custom = core.WorldTokenizer(load_world_vocab(path))
    for data in [b"abcd", b"abcabcab", b"abcdbcd", b"ab", "你好你".encode(), b"xabcdx", b"abcbcd"]:
        assert custom.encode(data) == custom_official.encodeBytes(data)
        assert custom.decode(custom.encode(data)) == data
    # ids 257.. are the extras in order; equal bytes: the highest id wins, as in both references
    assert custom.encode(b"ab") == [261]
    assert custom.encode(b"abc") == [265]
