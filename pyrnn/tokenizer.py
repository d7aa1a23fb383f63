"""The tokenizer a model file carries (tokenizer.ggml.* keys), behind one small interface.

    tok = pyrnn.load("model.gguf").tokenizer
    ids = tok.encode("Hello world")     # list[int]
    tok.decode(ids)                     # bytes → str with errors="replace" via decode_text

RWKV World vocabularies ("rwkv") use the C++ trie tokenizer (greedy longest match, as the official
one). Decoding returns bytes, because a token may hold part of a UTF-8 character.
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


def load_tokenizer(f: _core.GGUFFile) -> Tokenizer:
    if "tokenizer.ggml.model" not in f:
        raise ValueError("model file: expected tokenizer.ggml.model (a tokenizer in the file), found none")
    kind = f.value("tokenizer.ggml.model")
    if kind == "rwkv":
        return WorldTokenizer(f)
    raise ValueError(f"tokenizer.ggml.model: expected 'rwkv', found {kind!r} (not supported yet)")
