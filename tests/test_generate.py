"""model.generate (pyrnn/generate.py) on a tiny random RWKV-7 with a BPE vocabulary: seeds, greedy vs a
hand-made argmax chain, exact stop strings, max_tokens, end of text, carried state, empty prompt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_bpe import tiny_rwkv7_bpe_gguf

import pyrnn
from pyrnn.generate import StopCutter

PROMPT = "Hello"  # greedy output of the fixture runs 60+ tokens before end of text


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_rwkv7_bpe_gguf(tmp_path_factory.mktemp("gen"))


@pytest.fixture(scope="module")
def model(model_path: Path) -> pyrnn.Model:
    return pyrnn.load(model_path)


def argmax_chain(model: pyrnn.Model, prompt_ids: list[int], n: int, state: pyrnn.State | None = None,
                 presence: float = 0.0, window: int = 64) -> list[int]:
    """Greedy decoding written out with model.forward and NumPy (presence penalty over the last `window` ids),
    ending at the end-of-text id 0."""
    state = state if state is not None else model.new_state()
    logits = model.forward(prompt_ids, state)
    history, out = list(prompt_ids), []
    for _ in range(n):
        x = logits.copy()
        for t in set(history[-window:]):
            x[t] -= presence
        t = int(np.argmax(x))
        if t == 0:
            break
        out.append(t)
        history.append(t)
        logits = model.forward([t], state)
    return out


def greedy(model: pyrnn.Model, prompt: object, n: int, **kw: object) -> pyrnn.generate.Generation:
    g = model.generate(prompt, max_tokens=n, temperature=0, **kw)
    g.text  # noqa: B018 - run it
    return g


def test_text_round_trips_through_the_tokenizer(model: pyrnn.Model) -> None:
    """The fixture's vocabulary holds every byte, so prompts (emoji included) encode and decode exactly."""
    s = "Once upon a time 😀 — naïve"
    assert model.tokenizer.decode(model.tokenizer.encode(s)).decode() == s


def test_same_seed_same_text(model: pyrnn.Model) -> None:
    """The same seed gives the same tokens and text; another seed gives others."""
    def run(seed: int) -> tuple[str, list[int]]:
        g = model.generate(PROMPT, max_tokens=40, seed=seed, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
        return g.text, g.tokens

    assert run(5) == run(5)
    assert run(5)[1] != run(6)[1]


def test_seed_is_recorded(model: pyrnn.Model) -> None:
    """Without a seed a random one is chosen and kept in .seed, which replays the run."""
    g = model.generate(PROMPT, max_tokens=20, temperature=1.0)
    text = g.text
    assert model.generate(PROMPT, max_tokens=20, temperature=1.0, seed=g.seed).text == text


def test_greedy_equals_the_argmax_chain(model: pyrnn.Model) -> None:
    """Temperature 0 yields exactly the argmax chain built by hand with model.forward."""
    ids = model.tokenizer.encode(PROMPT)
    g = greedy(model, PROMPT, 30)
    assert g.prompt_tokens == ids
    assert g.tokens == argmax_chain(model, ids, 30)


def test_greedy_with_presence_penalty_sees_prompt_and_output(model: pyrnn.Model) -> None:
    """Penalties cover the last penalty_window ids of prompt and output, as the hand-made chain does."""
    ids = model.tokenizer.encode(PROMPT)
    for window in (3, 8, 64):
        g = greedy(model, PROMPT, 30, presence_penalty=50.0, penalty_window=window)
        assert g.tokens == argmax_chain(model, ids, 30, presence=50.0, window=window)
    assert g.tokens != argmax_chain(model, ids, 30)  # the penalty did act


def test_output_is_the_decoded_tokens(model: pyrnn.Model) -> None:
    """Without stop strings the pieces join to the decoded tokens, and no piece is empty."""
    g = model.generate(PROMPT, max_tokens=50, seed=1)
    pieces = list(g)
    assert all(pieces)
    assert "".join(pieces) == model.tokenizer.decode(g.tokens).decode("utf-8", "replace")


@pytest.mark.parametrize("n", [0, 1, 7])
def test_max_tokens(model: pyrnn.Model, n: int) -> None:
    """max_tokens bounds the output exactly (stop_reason says so); 0 only feeds the prompt."""
    state = model.new_state()
    g = model.generate(PROMPT, max_tokens=n, seed=2, state=state)
    text = g.text
    assert len(g.tokens) == n and g.stop_reason == "max_tokens"
    assert (text == "") == (n == 0)
    ref = model.new_state()
    model.forward(model.tokenizer.encode(PROMPT) + g.tokens, ref)
    np.testing.assert_array_equal(state.data, ref.data)


def test_end_of_text_stops_and_is_not_fed(model: pyrnn.Model) -> None:
    """Sampling the end-of-text id (0 here) ends generation; it is neither in .tokens nor in the state."""
    state = model.new_state()
    g = model.generate(PROMPT, max_tokens=5000, seed=0, temperature=50.0, top_k=0, top_p=1.0, min_p=0.0,
                       state=state)
    g.text  # noqa: B018
    assert g.stop_reason == "eos" and 0 not in g.tokens and len(g.tokens) < 5000
    ref = model.new_state()
    model.forward(model.tokenizer.encode(PROMPT) + g.tokens, ref)
    np.testing.assert_array_equal(state.data, ref.data)


def _boundary_stop(model: pyrnn.Model, tokens: list[int], text: str) -> str:
    """A 4-character string of `text` whose first 2 characters end one token and last 2 begin the next."""
    for k in range(3, len(tokens) - 2):
        head = model.tokenizer.decode(tokens[:k]).decode("utf-8", "replace")
        if not text.startswith(head):  # the boundary splits a character
            continue
        s = text[len(head) - 2:len(head) + 2]
        if len(s) == 4 and "\ufffd" not in s and len(model.tokenizer.decode(tokens[k - 1:k]).decode("utf-8",
                                                                                                     "replace")) >= 2:
            return s
    raise AssertionError("no token boundary with whole characters around it")


def test_stop_string_spanning_tokens_is_cut_exactly(model: pyrnn.Model) -> None:
    """A stop string made of the end of one token and the start of the next: output ends right before it."""
    full = greedy(model, PROMPT, 60)
    assert full.stop_reason == "max_tokens"
    text = "".join(model.tokenizer.decode(full.tokens).decode("utf-8", "replace"))
    stop = _boundary_stop(model, full.tokens, text)
    g = model.generate(PROMPT, max_tokens=60, temperature=0, stop=[stop])
    pieces = list(g)
    assert "".join(pieces) == text[:text.find(stop)]
    assert g.stop_reason == "stop"
    assert all(stop not in p for p in pieces)


def test_earliest_stop_string_wins(model: pyrnn.Model) -> None:
    """With several stop strings the output ends before the earliest occurrence of any of them."""
    g = greedy(model, PROMPT, 60)
    text = g.text
    assert g.stop_reason == "max_tokens"
    late, early = text[40:43], text[10:12]
    cut = min(text.find(late), text.find(early))
    assert greedy(model, PROMPT, 60, stop=[late, early]).text == text[:cut]


def test_held_back_text_is_released_when_no_stop_completes(model: pyrnn.Model) -> None:
    """Text that could begin a stop string is held, then printed when generation ends without it."""
    g = greedy(model, PROMPT, 30)
    text = g.text
    assert g.stop_reason == "max_tokens"
    stop = text[-3:] + "\x00never"
    g2 = greedy(model, PROMPT, 30, stop=[stop])
    assert g2.text == text and g2.stop_reason == "max_tokens"


def test_stop_cutter_pieces() -> None:
    """StopCutter: held text is released or cut as later pieces decide, across any split."""
    c = StopCutter(["\n\nUser:"])
    assert c.push("Hello\n") == ("Hello", False)
    assert c.push("\nUs") == ("", False)
    assert c.push("er: hi") == ("", True)
    c = StopCutter(["\n\nUser:"])
    assert c.push("a\n\nUs") == ("a", False)
    assert c.push("e") == ("", False)
    assert c.push("x") == ("\n\nUsex", False)
    assert c.finish() == ""
    c = StopCutter(["abc", "bcd"])
    assert c.push("xab") == ("x", False)
    assert c.push("cd") == ("", True)
    assert StopCutter([]).push("anything") == ("anything", False)


def test_state_continuation_equals_one_run(model: pyrnn.Model) -> None:
    """Two calls with a carried state continue exactly where one run over the same tokens is."""
    ids1, ids2 = model.tokenizer.encode(PROMPT), model.tokenizer.encode(" and then")
    state = model.new_state()
    a = greedy(model, ids1, 12, state=state)
    b = greedy(model, ids2, 12, state=state)
    once = greedy(model, ids1 + a.tokens + ids2, 12)
    assert b.tokens == once.tokens and b.text == once.text
    ref = model.new_state()
    model.forward(ids1 + a.tokens + ids2 + b.tokens, ref)
    np.testing.assert_array_equal(state.data, ref.data)


def test_state_fed_through_the_stop_token(model: pyrnn.Model) -> None:
    """With a stop string, the carried state has seen every token in .tokens, the stop's last token included."""
    text = greedy(model, PROMPT, 40).text
    state = model.new_state()
    g = greedy(model, PROMPT, 40, state=state, stop=[text[20:23]])
    assert g.stop_reason == "stop"
    ref = model.new_state()
    model.forward(model.tokenizer.encode(PROMPT) + g.tokens, ref)
    np.testing.assert_array_equal(state.data, ref.data)


def test_empty_prompt_starts_from_token_0(model: pyrnn.Model) -> None:
    """An empty prompt feeds the BOS/end-of-text id 0 and continues greedily from there."""
    g = greedy(model, "", 15)
    assert g.prompt_tokens == [0]
    assert g.tokens == argmax_chain(model, [0], 15)


def test_text_includes_pieces_already_iterated(model: pyrnn.Model) -> None:
    """.text is the whole output even after part of it was iterated."""
    g = model.generate(PROMPT, max_tokens=20, seed=4)
    first = next(g)
    assert g.text.startswith(first) and g.text == model.generate(PROMPT, max_tokens=20, seed=4).text


def test_stats(model: pyrnn.Model) -> None:
    """Timings and rates are filled in once the run ends."""
    g = model.generate(PROMPT, max_tokens=10, seed=3)
    g.text  # noqa: B018
    assert g.prefill_seconds > 0 and g.decode_seconds > 0
    assert g.prefill_tokens_per_second > 0 and g.decode_tokens_per_second > 0


@pytest.mark.parametrize("kw,message", [
    ({"max_tokens": -1}, "max_tokens"), ({"top_p": 2.0}, "top_p"), ({"temperature": -1.0}, "temperature"),
    ({"stop": [""]}, "stop"), ({"seed": -5}, "seed"), ({"top_k": -3}, "top_k"),
])
def test_bad_options_fail_at_the_call(model: pyrnn.Model, kw: dict[str, object], message: str) -> None:
    """Bad options raise ValueError naming the option when generate() is called, before any work."""
    with pytest.raises(ValueError, match=message):
        model.generate(PROMPT, **kw)


def test_prompt_ids_out_of_range(model: pyrnn.Model) -> None:
    """Token-id prompts are checked against the vocabulary."""
    with pytest.raises(ValueError, match="prompt token id"):
        model.generate([1, 300])


def test_state_of_another_model(model: pyrnn.Model, tmp_path: Path) -> None:
    """A state of another model is refused by generate."""
    other = pyrnn.load(tiny_rwkv7_bpe_gguf(tmp_path, seed=1))
    with pytest.raises(ValueError, match="another model"):
        model.generate(PROMPT, state=other.new_state())
