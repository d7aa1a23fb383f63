"""The `pyrnn` command. User mistakes get one line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyrnn", description="Recurrent language models on your own device.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="describe a model file, or this machine (--system)")
    info.add_argument("model", nargs="?", help="a .gguf model file")
    info.add_argument("--system", action="store_true", help="print CPU features and the kernels in use")
    info.add_argument("--tensors", action="store_true", help="list every tensor")
    info.set_defaults(func=_cmd_info)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
