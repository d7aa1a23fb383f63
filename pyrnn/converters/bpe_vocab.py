"""Byte-level BPE vocabularies (a Hugging Face tokenizer.json, e.g. GPT-NeoX "20B") ↔ llama.cpp's GGUF keys.

    write_bpe_tokenizer(writer, 50277, bundled_neox_tokenizer())   # tokenizer.ggml.* in a GGUF
    tok = tokenizer_from_gguf("rwkv4-pile.gguf")                   # a `tokenizers.Tokenizer` again
    tok.encode("Hello world").ids                                  # [12092, 1533], as the original

The keys are those llama.cpp's converter writes for a GPT-2-style BPE (`get_vocab_base`; the GPT-NeoX
vocabulary it has built in reads back with the same keys and values, see tests/test_bpe_vocab.py):
`tokenizer.ggml.model` "gpt2"; `.pre` "mpt" (llama.cpp's name for the GPT-NeoX pre-tokenizer: NFC,
then byte-level with the GPT-2 regex) or "gpt-2" (no normalizer); `.tokens` the token strings as
tokenizer.json spells them (byte-level form, "Ġworld"; added tokens as their text), padded with
"[PAD{i}]" to the model's vocabulary size or cut to it; `.token_type` 1 normal, 3 control (special
added tokens and "<|…|>"), 4 user-defined (other added tokens, e.g. NeoX's runs of spaces), 5 unused
(padding); `.merges` every merge as "left right"; `.bos/.eos/.unknown_token_id` "<|endoftext|>";
`.add_bos_token` false (RWKV and Mamba add no BOS).

Reading a tokenizer.json needs only `json`; rebuilding a Tokenizer needs the `tokenizers` package.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Union

from ..gguf_writer import GGUFWriter, ValueType

__all__ = [
    "BPEVocab",
    "bpe_vocab_from_json",
    "bundled_neox_tokenizer",
    "tokenizer_from_gguf",
    "tokenizer_json_from_gguf",
    "write_bpe_tokenizer",
]

PathLike = Union[str, "os.PathLike[str]"]

# llama.cpp's llama_token_type values, as stored in tokenizer.ggml.token_type.
TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_USER_DEFINED = 4
TOKEN_TYPE_UNUSED = 5

END_OF_TEXT = "<|endoftext|>"

# tokenizer.ggml.pre → the tokenizer.json normalizer it stands for (the pre-tokenizer is byte-level
# with the GPT-2 regex and no prefix space for both).
_PRE_NORMALIZERS: dict[str, dict[str, Any] | None] = {"mpt": {"type": "NFC"}, "gpt-2": None}
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}


@dataclass
class BPEVocab:
    """What goes into the tokenizer.ggml.* keys."""

    pre: str
    tokens: list[str]
    types: list[int]
    merges: list[str]
    eot_id: int | None  # "<|endoftext|>", also written as bos/eos/unknown


def bundled_neox_tokenizer() -> Path:
    """The GPT-NeoX 20B tokenizer.json of RWKV-4 Pile/Raven (ChatRWKV's 20B_tokenizer.json)."""
    return Path(str(resources.files("pyrnn") / "data" / "20B_tokenizer.json"))


def _pre_name(doc: dict[str, Any], where: str) -> str:
    pre = doc.get("pre_tokenizer") or {}
    byte_level = (pre.get("type") == "ByteLevel" and not pre.get("add_prefix_space", False)
                  and pre.get("use_regex", True))
    for name, normalizer in _PRE_NORMALIZERS.items():
        if byte_level and doc.get("normalizer") == normalizer:
            return name
    raise ValueError(f"{where}: expected a byte-level BPE tokenizer (normalizer NFC or none, pre_tokenizer "
                     f"ByteLevel without prefix space), found normalizer {doc.get('normalizer')!r}, "
                     f"pre_tokenizer {pre!r:.200}")


def _merge_text(m: Any) -> str:
    return m if isinstance(m, str) else f"{m[0]} {m[1]}"  # tokenizers writes "a b" or, newer, ["a", "b"]


def bpe_vocab_from_json(path: PathLike, n_vocab: int) -> BPEVocab:
    """Read a tokenizer.json into llama.cpp's key values for a model of `n_vocab` embedding rows."""
    where = os.fspath(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: expected a tokenizer.json, found {e}") from None
    model = doc.get("model") if isinstance(doc, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise ValueError(f"{where}: model.type: expected 'BPE', found {model.get('type') if model else None!r}")
    for option in ("continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(option):
            raise ValueError(f"{where}: model.{option}: expected none, found {model[option]!r}")
    if model.get("byte_fallback"):
        raise ValueError(f"{where}: model.byte_fallback: expected false, found true")
    pre = _pre_name(doc, where)

    by_id: dict[int, str] = {int(i): tok for tok, i in model["vocab"].items()}
    added: dict[int, dict[str, Any]] = {int(a["id"]): a for a in doc.get("added_tokens", [])}
    for i, a in added.items():
        by_id[i] = a["content"]
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):  # llama.cpp: ids beyond the model's rows are dropped, holes padded
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(TOKEN_TYPE_UNUSED)
            continue
        tok = by_id[i]
        tokens.append(tok)
        if i not in added:
            types.append(TOKEN_TYPE_NORMAL)
        elif added[i].get("special") or (tok.startswith("<|") and tok.endswith("|>")):
            types.append(TOKEN_TYPE_CONTROL)
        else:
            types.append(TOKEN_TYPE_USER_DEFINED)
    merges = [_merge_text(m) for m in model.get("merges", [])]
    eot = next((i for i, a in added.items() if a["content"] == END_OF_TEXT and i < n_vocab), None)
    return BPEVocab(pre, tokens, types, merges, eot)


def write_bpe_tokenizer(w: GGUFWriter, n_vocab: int, path: PathLike) -> None:
    """tokenizer.ggml.* for the BPE tokenizer in the tokenizer.json `path`, as llama.cpp writes them."""
    v = bpe_vocab_from_json(path, n_vocab)
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", v.pre)
    w.add_array("tokenizer.ggml.tokens", v.tokens, ValueType.STRING)
    w.add_array("tokenizer.ggml.token_type", v.types, ValueType.INT32)
    w.add_array("tokenizer.ggml.merges", v.merges, ValueType.STRING)
    if v.eot_id is not None:
        for key in ("bos", "eos", "unknown"):
            w.add_uint32(f"tokenizer.ggml.{key}_token_id", v.eot_id)
    w.add_bool("tokenizer.ggml.add_bos_token", False)


def _open_gguf(source: Any) -> Any:
    if hasattr(source, "value"):
        return source
    from .. import GGUFFile

    return GGUFFile(os.fspath(source))


def _text(s: str | bytes) -> str:
    return s if isinstance(s, str) else s.decode("utf-8", errors="surrogateescape")


def tokenizer_json_from_gguf(source: Any) -> str:
    """The tokenizer.json text that the tokenizer.ggml.* keys of a GGUF (a path or a GGUFFile) stand for.

    Normal and control tokens form the BPE vocabulary; control tokens are special added tokens,
    user-defined ones plain added tokens (matched on normalized text); unused padding is left out.
    Merges whose parts or result are not in the vocabulary (a file cut to a smaller model's
    vocabulary, as llama.cpp writes them) are dropped, since the model can never see those tokens.
    """
    f = _open_gguf(source)
    model = f.value("tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(f"tokenizer.ggml.model: expected 'gpt2' (byte-level BPE), found {model!r}")
    pre = f.value("tokenizer.ggml.pre") if "tokenizer.ggml.pre" in f else "gpt-2"
    if pre not in _PRE_NORMALIZERS:
        raise ValueError(f"tokenizer.ggml.pre: expected one of {', '.join(_PRE_NORMALIZERS)}, found {pre!r}")
    tokens = [_text(t) for t in f.value("tokenizer.ggml.tokens")]
    types = list(f.value("tokenizer.ggml.token_type"))
    if len(types) != len(tokens):
        raise ValueError(f"tokenizer.ggml.token_type: expected {len(tokens)} entries, found {len(types)}")
    vocab: dict[str, int] = {}
    added: list[dict[str, Any]] = []
    for i, (tok, kind) in enumerate(zip(tokens, types)):
        if kind in (TOKEN_TYPE_NORMAL, TOKEN_TYPE_CONTROL):
            vocab.setdefault(tok, i)
        if kind in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED):
            added.append({"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": kind == TOKEN_TYPE_USER_DEFINED, "special": kind == TOKEN_TYPE_CONTROL})
    merges: list[list[str]] = []
    for m in f.value("tokenizer.ggml.merges") if "tokenizer.ggml.merges" in f else []:
        m = _text(m)
        cut = m.find(" ", 1)  # as llama.cpp: a left part may itself begin with a space
        if cut < 0:
            raise ValueError(f"tokenizer.ggml.merges: expected 'left right', found {m!r}")
        a, b = m[:cut], m[cut + 1:]
        if a in vocab and b in vocab and a + b in vocab:
            merges.append([a, b])
    doc = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": _PRE_NORMALIZERS[pre], "pre_tokenizer": _BYTE_LEVEL, "post_processor": _BYTE_LEVEL,
        "decoder": _BYTE_LEVEL,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    return json.dumps(doc, ensure_ascii=False)


def tokenizer_from_gguf(source: Any) -> Any:
    """A `tokenizers.Tokenizer` rebuilt from a GGUF's tokenizer.ggml.* keys (needs the tokenizers package)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer_json_from_gguf(source))
