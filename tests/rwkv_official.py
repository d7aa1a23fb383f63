"""Runs the official RWKV implementation (pip `rwkv`, strategy "cpu fp32") on a .pth, in a subprocess.

    ref = run_official(pth_path, version=7, tokens=[1, 2, 3])
    ref["logits_step"]   # (n, V): after each token, fed one at a time with the state carried
    ref["logits_seq"]    # (n, V): one sequence call with full_output=True
    ref["state_0"] ...   # the pip state list after the n single steps, entry by entry
    ref["version"]       # the version pip detected from the keys (e.g. 5.2); 7 for RWKV-7

A subprocess because the package picks RWKV-7 or RWKV-4/5/6 at import time (RWKV_V7_ON) and
compiles with TorchScript unless told not to; each run gets a clean interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def run_official(pth: Path, version: int, tokens: list[int]) -> dict[str, np.ndarray]:
    out = pth.with_suffix(".official.npz")
    env = dict(os.environ, RWKV_JIT_ON="0", RWKV_CUDA_ON="0", RWKV_V7_ON="1" if version == 7 else "0")
    subprocess.run(
        [sys.executable, __file__, str(pth), json.dumps(tokens), str(out)],
        env=env, check=True, capture_output=True, text=True,
    )
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def _main(pth: str, tokens_json: str, out: str) -> None:
    import torch
    from rwkv.model import RWKV

    torch.set_num_threads(1)
    tokens = json.loads(tokens_json)
    model = RWKV(model=pth[: -len(".pth")], strategy="cpu fp32")
    state = None
    steps = []
    with torch.no_grad():
        for t in tokens:
            logits, state = model.forward([t], state)
            steps.append(logits.float().numpy().copy())
        seq, _ = model.forward(tokens, None, full_output=True)
    result = {"logits_step": np.stack(steps), "logits_seq": seq.float().numpy()}
    result["version"] = np.float64(getattr(model, "version", 7))  # the sub-version pip detected (4 … 6)
    for i, s in enumerate(state):
        result[f"state_{i}"] = s.float().numpy()
    np.savez(out, **result)


if __name__ == "__main__":
    _main(*sys.argv[1:4])
