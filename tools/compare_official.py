"""Compare pyrnn's logits on a converted RWKV .pth with pip rwkv's ("cpu fp32") on the same tokens.

    python tools/compare_official.py /tmp/tiny7/model.pth /tmp/tiny7/tokenizer.json "ROMEO:\nWhat say you?"

Converts the .pth to an f32 GGUF in a temporary folder and prints the max-abs logit difference,
token by token (one state carried) and for one prefill call, relative to the logit span.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyrnn  # noqa: E402
from pyrnn.converters.convert import convert  # noqa: E402
from tests.rwkv_official import run_official  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("pth")
    p.add_argument("tokenizer_json")
    p.add_argument("text")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gguf = Path(tmp) / "model.gguf"
        convert(args.pth, gguf, out_type="f32", vocab=args.tokenizer_json)
        model = pyrnn.load(gguf)
        ids = model.tokenizer.encode(args.text)
        ref = run_official(Path(args.pth), 7, ids)
        state = model.new_state()
        steps = np.stack([model.forward([t], state) for t in ids])
        seq = model.forward(ids, model.new_state(), all_logits=True)
    span = float(ref["logits_step"].max() - ref["logits_step"].min())
    for name, ours in (("token by token", steps), ("prefill", seq)):
        err = float(np.abs(ours - ref["logits_step"]).max())
        print(f"{name}: {len(ids)} tokens, max |Δlogit| {err:.3e} (logit span {span:.2f}, relative {err / span:.2e})")


if __name__ == "__main__":
    main()
