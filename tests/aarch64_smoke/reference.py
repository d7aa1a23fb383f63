"""Reference output for the aarch64 wheel smoke test, computed on the build host (x86-64) at run time.

    python tests/aarch64_smoke/reference.py OUT.npz [--model PATH] [--tokens N]

Greedy decoding of a fixed prompt with the packaged default model: the prompt's ids, the generated
ids, the logits after the prompt and after each generated token (float32, n_steps x n_vocab), and
the serialized state after the prompt (states are portable: the aarch64 side must continue from it).
tests/aarch64_smoke/smoke_aarch64.py replays the same ids on the aarch64 wheel and compares.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import pyrnn

PROMPT = "ROMEO:\nBut soft, what light through yonder window breaks?\n"


def greedy(model: pyrnn.Model, prompt_ids: list[int], n: int) -> tuple[list[int], np.ndarray]:
    """n greedy tokens after the prompt; logits[i] is what token i was chosen from (fed one at a time)."""
    state = model.new_state()
    logits = [model.forward(prompt_ids, state)]
    out: list[int] = []
    for _ in range(n):
        out.append(int(np.argmax(logits[-1])))
        logits.append(model.forward([out[-1]], state))
    return out, np.stack(logits[:n]).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", type=Path, default=None, help="GGUF file (default: the packaged model)")
    ap.add_argument("--tokens", type=int, default=24)
    a = ap.parse_args()
    model = pyrnn.load(a.model or pyrnn.default_model_path())
    prompt_ids = model.tokenizer.encode(PROMPT)
    ids, logits = greedy(model, prompt_ids, a.tokens)
    state = model.new_state()
    model.forward(prompt_ids, state)
    np.savez(a.out, prompt=PROMPT, prompt_ids=np.asarray(prompt_ids, np.int32), ids=np.asarray(ids, np.int32),
             logits=logits, isa=pyrnn.isa(), state_after_prompt=np.frombuffer(bytes(state), np.uint8),
             model=str(a.model or ""))
    print(f"reference ({pyrnn.isa()}, {model.arch}): {len(prompt_ids)} prompt ids, {len(ids)} generated: "
          f"{model.tokenizer.decode(ids)!r}")


if __name__ == "__main__":
    main()
