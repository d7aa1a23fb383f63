"""The RWKV "World" vocabulary (rwkv_vocab_v20230424.txt) and its GGUF form.

    vocab = load_world_vocab("rwkv_vocab_v20230424.txt")   # vocab[id] = bytes; vocab[0] = b"<s>"
    tokens, types = gguf_world_tokens(vocab, 65536)         # tokenizer.ggml.tokens / .token_type

The file has one token per line, ``<id> <python literal> <byte length>`` (shared/reference/
ARCHITECTURES.md §1.5.1); ``gguf_world_tokens`` writes exactly what llama.cpp's converter
(``_set_vocab_rwkv_world``) writes, so our GGUF files and llama.cpp's agree token for token (§1.6).
"""

from __future__ import annotations

import ast
import os
from typing import Union

__all__ = [
    "TOKEN_TYPE_CONTROL",
    "TOKEN_TYPE_NORMAL",
    "TOKEN_TYPE_UNUSED",
    "gguf_world_tokens",
    "load_world_vocab",
]

# llama.cpp's llama_token_type values, as stored in tokenizer.ggml.token_type.
TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_UNUSED = 5

END_OF_TEXT = b"<s>"

PathLike = Union[str, "os.PathLike[str]"]


def load_world_vocab(path: PathLike) -> list[bytes]:
    """Read rwkv_vocab_v20230424.txt; returns vocab with vocab[id] = the bytes of token id.

    vocab[0] = b"<s>" (end of text; not in the file). As the official tokenizer does: the literal
    lies between the first and the last space of a line (it may contain spaces), a str literal
    becomes its UTF-8 bytes, a bytes literal is taken as is, and the last column must equal the
    byte length. Ids must run 1, 2, 3, ... in file order. LF and CRLF line ends are both accepted
    (the copy in RWKV-LM has CRLF). The literal is read with ast.literal_eval, never eval.
    Raises ValueError naming the file and line for anything else.
    """
    vocab: list[bytes] = [END_OF_TEXT]
    with open(path, encoding="utf-8", newline="") as f:
        for line_no, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            where = f"{os.fspath(path)}:{line_no}"
            if not line.strip():
                continue  # a trailing blank line; the official reader would fail on it
            first, last = line.find(" "), line.rfind(" ")
            if first < 0 or last <= first:
                raise ValueError(f"{where}: expected '<id> <literal> <length>', got {line!r}")
            try:
                token_id = int(line[:first])
                length = int(line[last + 1 :])
                literal = ast.literal_eval(line[first + 1 : last])
            except (ValueError, SyntaxError) as e:
                raise ValueError(f"{where}: cannot parse {line!r}: {e}") from None
            if isinstance(literal, str):
                token = literal.encode("utf-8")
            elif isinstance(literal, bytes):
                token = literal
            else:
                raise ValueError(f"{where}: literal is {type(literal).__name__}, not str or bytes")
            if token_id != len(vocab):
                raise ValueError(f"{where}: id {token_id}, expected {len(vocab)} (ids are dense)")
            if len(token) != length:
                raise ValueError(f"{where}: token has {len(token)} bytes, length column {length}")
            vocab.append(token)
    return vocab


def gguf_world_tokens(vocab: list[bytes], n_vocab: int) -> tuple[list[bytes], list[int]]:
    """tokenizer.ggml.tokens and tokenizer.ggml.token_type exactly as llama.cpp writes them.

    Entry 0 is b"<s>" (CONTROL) whatever vocab[0] holds; entry i >= 1 is repr(vocab[i])[2:-1]
    (printable ASCII as is, backslash escapes for the rest), NORMAL; then b"[PAD{i}]", UNUSED, up
    to n_vocab entries (the model's embedding rows). Raises ValueError if vocab has more than
    n_vocab entries.
    """
    if len(vocab) > n_vocab:
        raise ValueError(f"vocabulary has {len(vocab)} tokens, more than n_vocab = {n_vocab}")
    tokens = [END_OF_TEXT]
    types = [TOKEN_TYPE_CONTROL]
    for token in vocab[1:]:
        tokens.append(repr(bytes(token))[2:-1].encode("utf-8"))
        types.append(TOKEN_TYPE_NORMAL)
    for i in range(len(tokens), n_vocab):
        tokens.append(f"[PAD{i}]".encode())
        types.append(TOKEN_TYPE_UNUSED)
    return tokens, types
