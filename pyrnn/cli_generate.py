"""`pyrnn generate` and `pyrnn chat` (wired into the `pyrnn` command by cli.py).

    pyrnn generate model.gguf "Once upon a time" --max-tokens 100 --seed 1
    pyrnn generate "Once upon a time"              # the packaged default model (pyrnn/data/default.gguf)
    echo "Once upon a time" | pyrnn generate model.gguf -
    pyrnn generate model.gguf "System: ...\\n\\n" --max-tokens 0 --state-out sys.state   # cache a prompt
    pyrnn generate model.gguf "User: hi\\n\\nAssistant:" --state-in sys.state
    pyrnn chat model.gguf                          # one user message per stdin line; /reset, /quit

Chat framing (RWKV World style): every user line becomes "User: LINE\\n\\nAssistant:" and the reply is
cut at "\\n\\nUser:". The state is kept across turns, so history is never fed again: after a reply
that ended at the stop string the next turn feeds " LINE\\n\\nAssistant:" (the state has already seen
"\\n\\nUser:"); after one that ended otherwise (end of text, --max-tokens) it feeds
"\\n\\nUser: LINE\\n\\nAssistant:". With --state-in the conversation starts from that state (e.g. a
cached system prompt ending in "\\n\\n"), and /reset returns to it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from .model import MAX_THREADS, default_model_path

CHAT_STOP = "\n\nUser:"


def _ranged(kind: Callable[[str], Any], lo: float | None = None, hi: float | None = None,
            what: str = "") -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, found {text!r}") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"expected {what}, found {text}")
        return v
    return parse


def _add_sampling(p: argparse.ArgumentParser, max_tokens: int) -> None:
    g = p.add_argument_group("sampling (order: penalties, top-k, top-p, min-p, temperature)")
    g.add_argument("--temperature", type=_ranged(float, 0, None, "a number >= 0"), default=0.8,
                   help="0 = greedy (default 0.8)")
    g.add_argument("--top-k", type=_ranged(int, 0, None, "an integer >= 0"), default=40, help="0 = off (default 40)")
    g.add_argument("--top-p", type=_ranged(float, 1e-30, 1, "a number in (0, 1]"), default=0.95,
                   help="1 = off (default 0.95)")
    g.add_argument("--min-p", type=_ranged(float, 0, 1, "a number in [0, 1]"), default=0.05,
                   help="0 = off (default 0.05)")
    g.add_argument("--repeat-penalty", type=_ranged(float, 1e-30, None, "a number > 0"), default=1.0,
                   help="divides positive logits, multiplies negative ones of recent tokens; 1 = off (default)")
    g.add_argument("--presence-penalty", type=float, default=0.0, help="subtracted once per recent token (default 0)")
    g.add_argument("--frequency-penalty", type=float, default=0.0,
                   help="subtracted per occurrence of a recent token (default 0)")
    g.add_argument("--penalty-window", type=_ranged(int, 0, None, "an integer >= 0"), default=64,
                   help="recent tokens the penalties look at (default 64)")
    g.add_argument("--seed", type=_ranged(int, 0, 2**64 - 1, "an integer in 0..2^64-1"),
                   help="same seed, same text (default: random)")
    p.add_argument("--max-tokens", type=_ranged(int, 0, None, "an integer >= 0"), default=max_tokens,
                   help=f"most tokens to generate (default {max_tokens})")
    p.add_argument("--threads", type=_ranged(int, 1, MAX_THREADS, f"an integer in 1..{MAX_THREADS}"),
                   help="threads for the matrix products (default: physical cores; device cpu only)")
    p.add_argument("--device", default="cpu",
                   help="cpu (default), cuda or cuda:N (a -DPYRNN_CUDA=ON build; docs/CUDA.md)")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("temperature", "top_k", "top_p", "min_p", "repeat_penalty",
                                          "presence_penalty", "frequency_penalty", "penalty_window", "max_tokens")}


def _check_sampling(args: argparse.Namespace) -> None:
    """Bad values are reported before the model is loaded."""
    from . import _core

    o = _options(args)
    del o["max_tokens"]
    _core.SamplerParams(**o)


def _load(path: str | Path, threads: int | None, device: str = "cpu") -> Any:
    from .model import load

    return load(path, device, threads)


def _stdout() -> Any:
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="replace")  # a terminal that cannot show a character gets '?', not a crash
    return out


def add_generate_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("generate", help="stream text from a prompt",
                       description="Stream the continuation of PROMPT. MODEL defaults to the packaged default "
                       "model; PROMPT '-' reads stdin.")
    p.add_argument("model", nargs="?", metavar="MODEL", help="a .gguf model (default: the packaged one)")
    p.add_argument("prompt", nargs="?", metavar="PROMPT", help="the text to continue; '-' reads stdin")
    p.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE (UTF-8)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="end at TEXT (not printed); repeatable")
    p.add_argument("--state-in", metavar="FILE", help="start from a saved state (same model only)")
    p.add_argument("--state-out", metavar="FILE", help="save the state after the prompt and the output")
    _add_sampling(p, max_tokens=256)
    p.set_defaults(func=run_generate)
    return p


def add_chat_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("chat", help="talk with a model: one user message per stdin line (/reset, /quit)",
                       description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="MODEL", help="a .gguf model (default: the packaged one)")
    p.add_argument("--state-in", metavar="FILE", help="start from a saved state, e.g. a cached system prompt")
    _add_sampling(p, max_tokens=512)
    p.set_defaults(func=run_chat)
    return p


def _resolve_prompt(args: argparse.Namespace) -> tuple[str | Path, str]:
    model, prompt = args.model, args.prompt
    if args.prompt_file is not None:
        if prompt is not None:
            raise ValueError("prompt: expected PROMPT or --prompt-file, found both")
        text = Path(args.prompt_file).read_text(encoding="utf-8")
        return (model if model is not None else default_model_path()), text
    if prompt is None:
        if model is None:
            raise ValueError("prompt: expected PROMPT, '-' (stdin) or --prompt-file FILE, found none")
        if model.endswith(".gguf") and Path(model).is_file():
            raise ValueError(f"prompt: expected a PROMPT after the model {model!r}, found none")
        model, prompt = None, model  # one argument: the prompt, with the default model
    if prompt == "-":
        prompt = sys.stdin.read()
    return (model if model is not None else default_model_path()), prompt


def _reader_gone() -> int:
    """stdout was closed by its reader (e.g. `| head`): stop quietly, as other command-line tools do."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from .model import State

    _check_sampling(args)
    model_path, prompt = _resolve_prompt(args)
    model = _load(model_path, args.threads, args.device)
    state = State.load(model, args.state_in) if args.state_in else model.new_state()
    gen = model.generate(prompt, **_options(args), seed=args.seed, stop=args.stop, state=state)
    out = _stdout()
    try:
        for piece in gen:
            out.write(piece)
            out.flush()
        out.write("\n")
        out.flush()
    except BrokenPipeError:
        return _reader_gone()
    if args.state_out:
        state.save(args.state_out)
    print(f"pyrnn: prompt {len(gen.prompt_tokens)} tokens, {gen.prefill_tokens_per_second:.1f} tokens/s; "
          f"generated {len(gen.tokens)} tokens, {gen.decode_tokens_per_second:.1f} tokens/s "
          f"(stopped: {gen.stop_reason}; seed {gen.seed})", file=sys.stderr)
    return 0


def run_chat(args: argparse.Namespace) -> int:
    from .model import State

    _check_sampling(args)
    model = _load(args.model if args.model is not None else default_model_path(), args.threads, args.device)
    start = State.load(model, args.state_in) if args.state_in else model.new_state()
    state, turn, after = start.copy(), 0, None  # after: how the last reply ended (None: no reply yet)
    out, interactive = _stdout(), sys.stdin.isatty()
    while True:
        if interactive:
            print("User: ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        line = line.rstrip("\r\n")
        command = line.strip()
        if not command:
            continue
        if command == "/quit":
            break
        if command == "/reset":
            state, after = start.copy(), None
            print("pyrnn: conversation reset", file=sys.stderr)
            continue
        if after is None:
            prompt = f"User: {line}\n\nAssistant:"
        elif after == "stop":
            prompt = f" {line}\n\nAssistant:"
        else:
            prompt = f"{CHAT_STOP} {line}\n\nAssistant:"
        seed = None if args.seed is None else (args.seed + turn) % 2**64
        gen = model.generate(prompt, **_options(args), seed=seed, stop=[CHAT_STOP], state=state)
        if interactive:
            print("Assistant:", end="", file=sys.stderr, flush=True)
        first = True
        try:
            for piece in gen:
                if first:
                    piece = piece.lstrip(" ")
                    first = not piece
                out.write(piece)
                out.flush()
            out.write("\n")
            out.flush()
        except BrokenPipeError:
            return _reader_gone()
        after, turn = gen.stop_reason, turn + 1
    return 0
