"""A multi-turn chat in Python: one state carried across turns, so earlier turns are never fed again.

    python examples/chat_session.py model.gguf
"""

from __future__ import annotations

import sys

import pyrnn
from pyrnn.cli_generate import default_model_path

model = pyrnn.load(sys.argv[1] if len(sys.argv) > 1 else default_model_path())
state = model.new_state()                # the whole conversation so far, in a fixed size
stop = "\n\nUser:"                       # RWKV World chat framing: "User: ...\n\nAssistant: ...\n\n"
prefix = "User: "                        # what the state still needs before the next user message

for turn, message in enumerate(["Hello! Who are you?", "What is a recurrent network?", "Thanks, bye."]):
    print(f"User: {message}")
    gen = model.generate(f"{prefix}{message}\n\nAssistant:", state=state, stop=[stop],
                         max_tokens=48, temperature=0.7, top_p=0.9, seed=turn)
    print("Assistant:", "".join(gen).strip())
    # the state has seen the reply; if it ended at the stop string it has also seen "\n\nUser:"
    prefix = " " if gen.stop_reason == "stop" else "\n\nUser: "
