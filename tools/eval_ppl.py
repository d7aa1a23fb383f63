"""Perplexity of a pyrnn model on a text file: chunked prefill with the state carried across chunks.

    python tools/eval_ppl.py pyrnn/data/default.gguf ../shared/data/tinyshakespeare.txt --from-fraction 0.9
    # → tokens 49421  nll/token 1.234  ppl/token 3.43  ppl/byte 1.66  bits/byte 0.73

Every token after the first is predicted from all the text before it (one state, never reset).
Per-byte perplexity is exp(total NLL / bytes predicted), comparable across vocabularies.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyrnn  # noqa: E402


def token_nll(model: pyrnn.Model, ids: list[int], chunk: int = 256) -> np.ndarray:
    """−log p(ids[i] | ids[:i]) for i = 1..n−1, in nats, float64."""
    state = model.new_state()
    out = np.empty(len(ids) - 1, np.float64)
    for s in range(0, len(ids) - 1, chunk):
        piece = ids[s: min(s + chunk, len(ids) - 1)]
        logits = model.forward(piece, state, all_logits=True).astype(np.float64)  # (n, V)
        m = logits.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
        target = np.asarray(ids[s + 1: s + 1 + len(piece)])
        out[s: s + len(piece)] = lse - logits[np.arange(len(piece)), target]
    return out


def perplexity(model: pyrnn.Model, ids: list[int], chunk: int = 256) -> dict[str, float]:
    """Per-token and per-byte perplexity of `ids` (the first token is context only)."""
    nll = token_nll(model, ids, chunk)
    n_bytes = len(model.tokenizer.decode(ids[1:]))
    total = float(nll.sum())
    return {"tokens": len(nll), "bytes": n_bytes, "nll_per_token": total / len(nll),
            "ppl_per_token": math.exp(total / len(nll)), "ppl_per_byte": math.exp(total / n_bytes),
            "bits_per_byte": total / n_bytes / math.log(2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="a .gguf model")
    p.add_argument("text", help="a UTF-8 text file")
    p.add_argument("--from-fraction", type=float, default=0.0,
                   help="skip this leading fraction of the characters (0.9: Tiny Shakespeare's held-out 10%%)")
    p.add_argument("--max-tokens", type=int, default=0, help="evaluate only the first N tokens (0: all)")
    p.add_argument("--chunk", type=int, default=256, help="tokens per prefill call")
    args = p.parse_args()
    text = Path(args.text).read_text(encoding="utf-8")
    text = text[int(len(text) * args.from_fraction):]
    model = pyrnn.load(args.model)
    ids = model.tokenizer.encode(text)
    if args.max_tokens:
        ids = ids[: args.max_tokens]
    r = perplexity(model, ids, args.chunk)
    print(f"tokens {r['tokens']}  nll/token {r['nll_per_token']:.4f}  ppl/token {r['ppl_per_token']:.3f}  "
          f"ppl/byte {r['ppl_per_byte']:.4f}  bits/byte {r['bits_per_byte']:.4f}")


if __name__ == "__main__":
    main()
