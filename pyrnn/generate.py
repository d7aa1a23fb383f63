"""Text generation: prompt in, text pieces out, as they are made.

    model = pyrnn.load("model.gguf")
    for piece in model.generate("Once upon a time", max_tokens=100, seed=1):
        print(piece, end="", flush=True)

    chat = model.new_state()                          # carried across calls: nothing is fed twice
    reply = "".join(model.generate("User: hi\\n\\nAssistant:", stop=["\\n\\nUser:"], state=chat))

generate() returns a Generation: iterate it for str pieces (whole characters only, see stream.py);
afterwards it tells prompt_tokens, tokens (the generated ids), stop_reason ("stop", "eos" or
"max_tokens"), seed, and the prefill and decode timings.

- The prompt (str, bytes, or token ids) is fed with one sequence call (prefill). An empty prompt
  feeds the single token tokenizer.ggml.bos_token_id (0 if the file names none): id 0 is the
  end-of-text token RWKV and NeoX-vocabulary models saw between training documents, so an empty
  prompt starts a new document.
- Stop strings are cut exactly: no text at or after the earliest stop string is ever yielded, even
  when the stop string spans tokens (text that might start one is held back until it is decided).
- A sampled end-of-text token (tokenizer.ggml.eos_token_id, else 0) ends generation and is not fed.
- With `state`, the state is updated in place: afterwards it has seen the prompt and every id in
  `tokens` (the token that completed a stop string included), so the next call continues from
  there. Without one, a fresh state is used and thrown away.
- Sampling (see csrc/sampler.h for the order): penalties over the last `penalty_window` ids of this
  call's prompt and output, top-k, top-p, min-p, temperature; temperature 0 is greedy. `seed` makes
  the run repeatable (None: a random seed, kept in .seed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Union

import numpy as np

from . import _core
from .stream import Utf8Stream

if TYPE_CHECKING:
    from .model import Model, State

Prompt = Union[str, bytes, Sequence[int], np.ndarray]


class StopCutter:
    """Cuts a stream of text at the earliest occurrence of any stop string.

    push(text) → (text safe to show, stopped); finish() → what was held back, at the end."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops]
        self.held = ""

    def push(self, text: str) -> tuple[str, bool]:
        buf = self.held + text
        starts = [i for i in (buf.find(s) for s in self.stops) if i >= 0]
        if starts:
            self.held = ""
            return buf[:min(starts)], True
        keep = 0  # the longest tail of buf that a stop string could still complete
        for s in self.stops:
            for k in range(min(len(s) - 1, len(buf)), keep, -1):
                if buf.endswith(s[:k]):
                    keep = k
                    break
        self.held = buf[len(buf) - keep:]
        return buf[:len(buf) - keep], False

    def finish(self) -> str:
        out, self.held = self.held, ""
        return out


def _token_id(model: Model, key: str) -> int:
    f = model.metadata
    return int(f.value(key)) if key in f else 0


class Generation:
    """An iterator of text pieces; its attributes describe the run (complete once iteration ends)."""

    def __init__(self, model: Model, prompt: Prompt, *, max_tokens: int = 256, temperature: float = 0.8,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.0,
                 presence_penalty: float = 0.0, frequency_penalty: float = 0.0, penalty_window: int = 64,
                 seed: int | None = None, stop: Sequence[str] | str = (), state: State | None = None) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)) or max_tokens < 0:
            raise ValueError(f"max_tokens: expected an integer >= 0, found {max_tokens!r}")
        self.params = _core.SamplerParams(
            temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty,
            presence_penalty=presence_penalty, frequency_penalty=frequency_penalty, penalty_window=penalty_window)
        stops = [stop] if isinstance(stop, str) else list(stop)
        for s in stops:
            if not isinstance(s, str) or not s:
                raise ValueError(f"stop: expected non-empty strings, found {s!r}")
        self.seed = int.from_bytes(os.urandom(8), "little") if seed is None else int(seed)
        self._rng = _core.Rng(self.seed)
        if state is not None and state.model_fingerprint != model.fingerprint:
            raise ValueError("state: expected a state of this model, found one of another model")
        if isinstance(prompt, (str, bytes)):
            ids = model.tokenizer.encode(prompt) if prompt else []
        else:
            ids = [int(t) for t in prompt]
            for t in ids:
                if not 0 <= t < model.n_vocab:
                    raise ValueError(f"prompt token id: expected 0..{model.n_vocab - 1}, found {t}")
        self.prompt_tokens: list[int] = ids or [_token_id(model, "tokenizer.ggml.bos_token_id")]
        self.tokens: list[int] = []
        self.stop_reason: str | None = None
        self.prefill_seconds = 0.0
        self.decode_seconds = 0.0
        self._model, self._state, self._carried = model, state, state is not None
        self._max_tokens, self._stops = int(max_tokens), stops
        self._eos = _token_id(model, "tokenizer.ggml.eos_token_id")
        self._pieces: list[str] = []
        self._it = self._run()

    def __iter__(self) -> Generation:
        return self

    def __next__(self) -> str:
        piece = next(self._it)
        self._pieces.append(piece)
        return piece

    @property
    def text(self) -> str:
        """The whole output: runs to the end if not yet there; includes pieces already iterated."""
        for _ in self:
            pass
        return "".join(self._pieces)

    @property
    def prefill_tokens_per_second(self) -> float:
        return len(self.prompt_tokens) / self.prefill_seconds if self.prefill_seconds > 0 else 0.0

    @property
    def decode_tokens_per_second(self) -> float:
        return len(self.tokens) / self.decode_seconds if self.decode_seconds > 0 else 0.0

    def _run(self) -> Iterator[str]:
        model = self._model
        state = self._state if self._state is not None else model.new_state()
        tokenizer = model.tokenizer
        window = self.params.penalty_window
        t0 = time.perf_counter()
        logits = model.forward(self.prompt_tokens, state)
        self.prefill_seconds = time.perf_counter() - t0
        history = list(self.prompt_tokens[-window:]) if window else []
        utf8, cut = Utf8Stream(), StopCutter(self._stops)
        t0 = time.perf_counter()
        try:
            for i in range(self._max_tokens):
                tok = _core.sample(logits, self.params, self._rng, history[-window:] if window else None)
                if tok == self._eos:
                    self.stop_reason = "eos"
                    break
                self.tokens.append(tok)
                if window:
                    history.append(tok)
                    if len(history) > 4 * window:  # keep the window, not the whole text
                        del history[:-window]
                out, stopped = cut.push(utf8.feed(tokenizer.decode([tok])))
                last = stopped or i == self._max_tokens - 1
                if not last or self._carried:  # a carried state sees every token in .tokens
                    logits = model.forward([tok], state)
                if out:
                    self.decode_seconds += time.perf_counter() - t0  # the consumer's time is not ours
                    t0 = -1.0
                    yield out
                    t0 = time.perf_counter()
                if stopped:
                    self.stop_reason = "stop"
                    return
            else:
                self.stop_reason = "max_tokens"
            out, stopped = cut.push(utf8.flush())
            if stopped:
                self.stop_reason = "stop"
            else:
                out += cut.finish()
            self.decode_seconds += time.perf_counter() - t0
            t0 = -1.0
            if out:
                yield out
        finally:
            if t0 >= 0:  # ended by an error, not at a yield
                self.decode_seconds += time.perf_counter() - t0


def generate(model: Model, prompt: Prompt, **options: object) -> Generation:
    """model.generate(prompt, ...): see this module's docstring and Generation for the options."""
    return Generation(model, prompt, **options)  # type: ignore[arg-type]
