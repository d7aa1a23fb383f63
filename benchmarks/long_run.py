"""Long generation run: RSS must stay flat over 100,000 tokens fed one at a time.

    nice -n 10 python benchmarks/long_run.py --tokens 100000 --C 768 --layers 12 --vocab 65536 --type q8_0

Builds a random RWKV-7 checkpoint (tests/tiny_models.py) of the given shape, converts it with
pyrnn's converter, then generates greedily (argmax, numpy) one token per forward call, recording
the process RSS every 1,000 tokens. Prints one JSON object: shape, tokens, tokens/s, RSS start (after
the first 1,000 tokens), end and max in MiB, and the samples. Random weights: the point is memory and
stability (every logit finite), not text."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import pyrnn  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=100_000)
    ap.add_argument("--C", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=65536)
    ap.add_argument("--type", default="q8_0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=float("inf"), help="stop early after this long (report the count)")
    args = ap.parse_args()

    from tiny_models import rwkv7_state_dict, save_safetensors

    from pyrnn.converters.convert import convert

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        C = args.C
        sd = rwkv7_state_dict(C, args.layers, args.vocab, (max(32, C // 12), max(32, C // 12), 32, 4 * 32), seed=0)
        src = save_safetensors(sd, tmp / "m.safetensors")
        del sd
        convert(src, tmp / "m.gguf", out_type=args.type)
        src.unlink()
        model = pyrnn.load(tmp / "m.gguf", threads=args.threads)
        state = model.new_state()
        token, samples = 0, []
        t0 = time.perf_counter()
        for i in range(1, args.tokens + 1):
            logits = model.forward([token], state)
            token = int(np.argmax(logits))
            if i % args.every == 0:
                if not np.isfinite(logits).all():
                    raise SystemExit(f"token {i}: non-finite logits")
                samples.append((i, round(rss_mib(), 1)))
                print(f"{i} tokens {time.perf_counter() - t0:.1f} s rss {samples[-1][1]} MiB",
                      file=sys.stderr, flush=True)
                if time.perf_counter() - t0 > args.seconds:
                    break
        dt = time.perf_counter() - t0
    rss = [r for _, r in samples]
    print(json.dumps({
        "shape": f"rwkv7 C={C} L={args.layers} V={args.vocab} {args.type}", "threads": args.threads,
        "tokens": i, "tokens_per_s": round(i / dt, 1), "seconds": round(dt, 1),
        "rss_start_mib": rss[0], "rss_end_mib": rss[-1], "rss_max_mib": max(rss), "samples": samples,
    }))


if __name__ == "__main__":
    main()
