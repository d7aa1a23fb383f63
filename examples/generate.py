"""Stream a continuation of a prompt.

    python examples/generate.py model.gguf "Once upon a time"
    python examples/generate.py                  # the packaged default model, a default prompt
"""

from __future__ import annotations

import sys

import pyrnn
from pyrnn.cli_generate import default_model_path

model = pyrnn.load(sys.argv[1] if len(sys.argv) > 1 else default_model_path())
prompt = sys.argv[2] if len(sys.argv) > 2 else "Once upon a time"

gen = model.generate(prompt, max_tokens=64, temperature=0.8, top_p=0.95, seed=42, stop=["\n\n"])
print(prompt, end="")
for piece in gen:                       # whole characters, as soon as they are made
    print(piece, end="", flush=True)
print()
print(f"[{len(gen.tokens)} tokens, stopped by {gen.stop_reason}, "
      f"{gen.decode_tokens_per_second:.1f} tokens/s]", file=sys.stderr)
