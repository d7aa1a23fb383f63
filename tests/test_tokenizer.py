"""Tokenizers read from a model file: the NeoX BPE gives the original tokenizer's ids, and decoding
to bytes (token by token, as streaming does) rebuilds the exact text, emoji and all."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

import pyrnn
from pyrnn.converters.bpe_vocab import bundled_neox_tokenizer, write_bpe_tokenizer
from pyrnn.gguf_writer import GGUFWriter
from pyrnn.tokenizer import BPETokenizer

TEXTS = [
    "Hello world", "a  b", "x\n\n  y", "       indented", "\nIn a shocking finding", "<|endoftext|>hi", "café",
    "emoji 😀👍🏽 and CJK 你好，世界", "tabs\tand\r\nCRLF", "", "   ", "ünïcödé ﬁ ligature", "1234567890 + 3.14159",
]


@pytest.fixture(scope="module")
def neox(tmp_path_factory: pytest.TempPathFactory) -> BPETokenizer:
    path = tmp_path_factory.mktemp("tok") / "neox.gguf"
    w = GGUFWriter(path)
    w.add_string("general.architecture", "none")
    write_bpe_tokenizer(w, 50277, bundled_neox_tokenizer())
    w.write()
    return BPETokenizer(pyrnn.GGUFFile(str(path)))


@pytest.mark.parametrize("text", TEXTS)
def test_neox_ids_match_original(neox: BPETokenizer, text: str) -> None:
    """Encoding through the file's tokenizer gives the original 20B tokenizer's ids."""
    original = Tokenizer.from_file(str(bundled_neox_tokenizer()))
    assert neox.encode(text) == original.encode(text, add_special_tokens=False).ids


@pytest.mark.parametrize("text", TEXTS)
def test_neox_decode_bytes_token_by_token(neox: BPETokenizer, text: str) -> None:
    """The bytes of each token, concatenated, are the UTF-8 of the text (tokens may split a character)."""
    ids = neox.encode(text)
    assert b"".join(neox.decode([i]) for i in ids) == text.encode("utf-8")


def test_neox_decode_rejects_bad_ids(neox: BPETokenizer) -> None:
    """An id outside the vocabulary is an IndexError naming the range."""
    with pytest.raises(IndexError, match="expected 0..50276"):
        neox.decode([50277])


def test_missing_tokenizer_is_a_clear_error(tmp_path: Path) -> None:
    """A model file without tokenizer keys says so when its tokenizer is asked for."""
    from pyrnn.tokenizer import load_tokenizer

    w = GGUFWriter(tmp_path / "none.gguf")
    w.add_string("general.architecture", "none")
    w.write()
    with pytest.raises(ValueError, match="tokenizer.ggml.model"):
        load_tokenizer(pyrnn.GGUFFile(str(tmp_path / "none.gguf")))
