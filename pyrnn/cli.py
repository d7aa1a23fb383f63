"""The `pyrnn` command. User mistakes get one line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from . import _core


def _cmd_info(args: argparse.Namespace) -> int:
    from .info import describe_model, describe_system

    if args.system or not args.model:
        print(describe_system())
        if not args.model:
            return 0
    print(describe_model(args.model, tensors=args.tensors))
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .converters.convert import convert, progress_bar

    arch = convert(args.checkpoint, args.output, out_type=args.type, vocab=args.vocab,
                   progress=None if args.quiet else progress_bar(), config=args.config)
    print(f"wrote {args.output} ({arch}, {args.type})", file=sys.stderr)
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from .converters.convert import progress_bar
    from .quantize import quantize_file

    n = quantize_file(args.input, args.output, args.type, progress=None if args.quiet else progress_bar())
    print(f"wrote {args.output}: {n} tensors re-stored as {args.type}", file=sys.stderr)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import report

    threads = [int(t) for t in args.threads.split(",")]
    if any(t < 1 for t in threads):
        raise ValueError(f"--threads: expected positive counts like 1,2, found {args.threads!r}")
    if args.device != "cpu":
        from .bench import device_report

        print(device_report(args.model, args.device, args.decode_tokens, args.prompt_tokens, args.repeats))
        return 0
    print(report(args.model, threads, args.decode_tokens, args.prompt_tokens, args.repeats))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyrnn", description="Recurrent language models on your own device.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="describe a model file, or this machine (--system)")
    info.add_argument("model", nargs="?", help="a .gguf model file")
    info.add_argument("--system", action="store_true", help="print CPU features and the kernels in use")
    info.add_argument("--tensors", action="store_true", help="list every tensor")
    info.set_defaults(func=_cmd_info)

    conv = sub.add_parser("convert", help="convert a checkpoint (.pth, HF folder, .safetensors) to GGUF")
    conv.add_argument("checkpoint", help="a BlinkDL .pth, a Hugging Face folder or a .safetensors file")
    conv.add_argument("-o", "--output", required=True, help="the .gguf file to write")
    conv.add_argument("--type", default="f16", choices=["f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0"],
                      help="type of the embedding, head and large matrices (default f16); vectors stay f32")
    conv.add_argument("--vocab", help="RWKV World vocabulary file, or a BPE tokenizer.json (default: the bundled "
                      "rwkv_vocab_v20230424.txt; GPT-NeoX 20B for RWKV-4 with 50,277 tokens)")
    conv.add_argument("--config", help="JSON settings for a checkpoint without a config (torchscale RetNet: "
                      "RetNetConfig names, e.g. {\"no_scale_embedding\": true, \"activation_fn\": \"gelu\"})")
    conv.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    conv.set_defaults(func=_cmd_convert)

    quant = sub.add_parser("quantize", help="re-store a GGUF model's large matrices in another type")
    quant.add_argument("input", help="a .gguf model")
    quant.add_argument("output", help="the .gguf file to write")
    quant.add_argument("--type", required=True, choices=["f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0"])
    quant.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    quant.set_defaults(func=_cmd_quantize)

    bench = sub.add_parser("bench", help="decode and prefill speed against this machine's bandwidth and FMA peak")
    bench.add_argument("model", help="a .gguf model")
    bench.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2; cpu only)")
    bench.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N (a -DPYRNN_CUDA=ON build)")
    bench.add_argument("--decode-tokens", type=int, default=64, help="tokens per decode run (default 64)")
    bench.add_argument("--prompt-tokens", type=int, default=512, help="prompt length for prefill (default 512)")
    bench.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is reported")
    bench.set_defaults(func=_cmd_bench)

    from .cli_generate import add_chat_parser, add_generate_parser  # generate, chat: pyrnn/cli_generate.py

    add_generate_parser(sub)
    add_chat_parser(sub)
    return p


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: writers delete their temporary files


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.func(args))
    except (_core.FormatError, OSError, ValueError, RuntimeError) as e:
        print(f"pyrnn: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyrnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
