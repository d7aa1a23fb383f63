"""Cache the state after a long system prompt, save it, load it later and continue from it.

    python examples/save_state.py model.gguf [state-file]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import pyrnn
from pyrnn.cli_generate import default_model_path

model = pyrnn.load(sys.argv[1] if len(sys.argv) > 1 else default_model_path())
scratch = tempfile.TemporaryDirectory()                      # removed at exit
path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(scratch.name) / "system.state"

system = "System: You are a helpful assistant. Answer briefly and politely.\n\n"
state = model.new_state()
model.forward(model.tokenizer.encode(system), state)         # one prefill call: the state now holds the prompt
state.save(path)                                             # header (model identity) + float32 data
print(f"saved the system prompt's state ({state.data.nbytes} bytes of floats) to {path}")

question = "User: What is the capital of France?\n\nAssistant:"
options = dict(max_tokens=32, temperature=0, stop=["\n\nUser:"])
restored = pyrnn.State.load(model, path)                     # refuses a state of another model
answer = model.generate(question, state=restored, **options).text
ids = model.tokenizer.encode(system) + model.tokenizer.encode(question)   # the same tokens, all fed again
recomputed = model.generate(ids, **options).text
print("Assistant:", answer.strip())
assert answer == recomputed, "a restored state continues exactly like feeding the prompt again"
np.testing.assert_array_equal(pyrnn.State.load(model, path).data, state.data)
print("the restored state continues exactly like the original")
