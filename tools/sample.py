"""Continue a prompt with a pyrnn model, sampling with NumPy from its logits (greedy or temperature).

    python tools/sample.py pyrnn/data/default.gguf "ROMEO:" --tokens 80 --temperature 0.8 --seed 1

A stand-in for the real sampler: argmax when --temperature is 0, else softmax(logits / T) sampled
with numpy.random.default_rng(seed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyrnn  # noqa: E402


def continue_text(model: pyrnn.Model, prompt: str, n_tokens: int, temperature: float = 0.0, seed: int = 0) -> str:
    """The prompt's continuation (text only, the prompt not repeated)."""
    rng = np.random.default_rng(seed)
    state = model.new_state()
    logits = model.forward(model.tokenizer.encode(prompt), state)
    out: list[int] = []
    for _ in range(n_tokens):
        if temperature <= 0:
            tok = int(np.argmax(logits))
        else:
            z = logits.astype(np.float64) / temperature
            p = np.exp(z - z.max())
            tok = int(rng.choice(len(p), p=p / p.sum()))
        out.append(tok)
        logits = model.forward([tok], state)
    return model.tokenizer.decode(out).decode("utf-8", "replace")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("prompt")
    p.add_argument("--tokens", type=int, default=80)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    model = pyrnn.load(args.model)
    print(args.prompt + continue_text(model, args.prompt, args.tokens, args.temperature, args.seed))


if __name__ == "__main__":
    main()
