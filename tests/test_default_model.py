"""The model shipped in the package (pyrnn/data/default.gguf, docs/DEFAULT_MODEL.md): it loads, is small,
carries its tokenizer, predicts held-out Shakespeare as well as when it was made, and writes words."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import pyrnn

HELD_OUT = Path(__file__).parent / "data" / "tinyshakespeare_heldout_5k.txt"  # first 5,000 chars of the last 10%
# Measured by pyrnn on HELD_OUT when the file was made (docs/DEFAULT_MODEL.md) + a margin for other ISAs.
PPL_MEASURED = 22.25  # q8_0, tools/eval_ppl.py on HELD_OUT (2,154 tokens)
PPL_BOUND = 23.0


@pytest.fixture(scope="module")
def model() -> pyrnn.Model:
    return pyrnn.load(pyrnn.default_model_path())


def test_default_model_is_small_rwkv7() -> None:
    """The shipped file exists, is under 8 MB and is an RWKV-7."""
    path = pyrnn.default_model_path()
    assert path.is_file() and path.stat().st_size < 8 * 2**20
    assert pyrnn.load(path).arch == "rwkv7"


def test_default_model_tokenizer_round_trips(model: pyrnn.Model) -> None:
    """Its byte-level BPE (tokenizer.ggml.model "gpt2") encodes and decodes any text exactly."""
    assert model.metadata.value("tokenizer.ggml.model") == "gpt2"
    text = "ROMEO:\nBut soft, what light through yonder window breaks? — naïve 東京 🙂\n"
    ids = model.tokenizer.encode(text)
    assert len(ids) < len(text.encode()) and max(ids) < model.n_vocab
    assert model.tokenizer.decode(ids).decode("utf-8") == text


def test_default_model_held_out_perplexity(model: pyrnn.Model) -> None:
    """Per-token perplexity on held-out Tiny Shakespeare (state carried over chunked prefill) is below its bound."""
    ids = model.tokenizer.encode(HELD_OUT.read_text(encoding="utf-8"))
    state, nll = model.new_state(), 0.0
    for s in range(0, len(ids) - 1, 256):
        piece = ids[s: min(s + 256, len(ids) - 1)]
        logits = model.forward(piece, state, all_logits=True).astype(np.float64)
        m = logits.max(axis=1)
        lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
        nll += float((lse - logits[np.arange(len(piece)), ids[s + 1: s + 1 + len(piece)]]).sum())
    ppl = math.exp(nll / (len(ids) - 1))
    assert ppl < PPL_BOUND, f"held-out perplexity {ppl:.2f}, measured {PPL_MEASURED} when shipped"


def test_default_model_greedy_text_is_not_degenerate(model: pyrnn.Model) -> None:
    """Greedy continuation of "ROMEO:" is words, not a repeated token: at least 5 distinct words."""
    state = model.new_state()
    logits = model.forward(model.tokenizer.encode("ROMEO:"), state)
    out = []
    for _ in range(60):
        out.append(int(np.argmax(logits)))
        logits = model.forward(out[-1:], state)
    words = set(re.findall(r"[A-Za-z']+", model.tokenizer.decode(out).decode("utf-8", "replace")))
    assert len(words) >= 5, words
