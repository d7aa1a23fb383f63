"""The tokenizer a model file carries (tokenizer.ggml.* keys), behind one small interface.

    tok = pyrnn.load("model.gguf").tokenizer
    ids = tok.encode("Hello world")     # list[int]
    tok.decode(ids)                     # bytes → str with errors="replace" via decode_text

RWKV World vocabularies ("rwkv") use the C++ trie tokenizer (greedy longest match, as the official
one); byte-level BPE vocabularies ("gpt2": GPT-NeoX for RWKV-4 Pile and Mamba) use the `tokenizers`
package on a tokenizer rebuilt from the file. Decoding returns bytes, because a token may hold
part of a UTF-8 character: callers stream and wait for whole characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from . import _core


class Tokenizer(Protocol):
    def encode(self, text: str | bytes) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> bytes: ...


class WorldTokenizer:
    def __init__(self, f: _core.GGUFFile) -> None:
        tokens = f.value("tokenizer.ggml.tokens")
        types = f.value("tokenizer.ggml.token_type") if "tokenizer.ggml.token_type" in f else [1] * len(tokens)
        self._tok = _core.WorldTokenizer.from_gguf_tokens(tokens, types)

    def encode(self, text: str | bytes) -> list[int]:
        return self._tok.encode(text)

    def decode(self, ids: Sequence[int]) -> bytes:
        return self._tok.decode(list(ids))

    def __len__(self) -> int:
        return len(self._tok)


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte (byte-level BPE writes tokens with these)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


class BPETokenizer:
    def __init__(self, f: _core.GGUFFile) -> None:
        from .converters.bpe_vocab import tokenizer_from_gguf

        self._tok = tokenizer_from_gguf(f)
        alphabet = _byte_level_alphabet()
        types = f.value("tokenizer.ggml.token_type")
        self._bytes: list[bytes] = []
        for tok, kind in zip(f.value("tokenizer.ggml.tokens"), types):
            text = tok if isinstance(tok, str) else tok.decode("utf-8", "replace")
            if kind == 1 and all(c in alphabet for c in text):  # a byte-level token
                self._bytes.append(bytes(alphabet[c] for c in text))
            else:  # control / added tokens stand for their text
                self._bytes.append(text.encode("utf-8"))

    def encode(self, text: str | bytes) -> list[int]:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> bytes:
        n = len(self._bytes)
        for i in ids:
            if not 0 <= i < n:
                raise IndexError(f"token id: expected 0..{n - 1}, found {i}")
        return b"".join(self._bytes[i] for i in ids)

    def __len__(self) -> int:
        return len(self._bytes)


def load_tokenizer(f: _core.GGUFFile) -> Tokenizer:
    if "tokenizer.ggml.model" not in f:
        raise ValueError("model file: expected tokenizer.ggml.model (a tokenizer in the file), found none")
    kind = f.value("tokenizer.ggml.model")
    if kind == "rwkv":
        return WorldTokenizer(f)
    if kind == "gpt2":
        return BPETokenizer(f)
    raise ValueError(f"tokenizer.ggml.model: expected 'rwkv' or 'gpt2', found {kind!r}")
