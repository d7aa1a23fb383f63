"""`pyrnn info`: what a model file holds, and what this machine runs."""

from __future__ import annotations

import os
import platform
from collections import Counter

from . import _core

# Keys whose values are long lists (tokenizer vocabularies): summarised, never printed whole.
_LONG = 8


def _fmt_value(value: object) -> str:
    if isinstance(value, list):
        head = ", ".join(_fmt_value(v) for v in value[:_LONG])
        more = f", ... ({len(value)} items)" if len(value) > _LONG else ""
        return f"[{head}{more}]"
    if isinstance(value, bytes):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    return str(value)


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n} B"


def describe_model(path: str, tensors: bool = False) -> str:
    f = _core.GGUFFile(path)
    arch = f.value("general.architecture") if "general.architecture" in f else None
    lines = [f"file:          {path}", f"size:          {_fmt_bytes(f.file_size)} ({f.file_size} bytes)"]
    lines.append(f"gguf:          version {f.version}, alignment {f.alignment}")
    lines.append(f"architecture:  {arch if arch is not None else '(none: general.architecture missing)'}")
    if "general.name" in f:
        lines.append(f"name:          {f.value('general.name')}")

    infos = f.tensors
    by_type: Counter[str] = Counter()
    bytes_by_type: Counter[str] = Counter()
    n_params = 0
    for t in infos:
        by_type[t["type_name"]] += 1
        bytes_by_type[t["type_name"]] += t["n_bytes"]
        n_params += t["n_elements"]
    lines.append(f"tensors:       {len(infos)}, {n_params:,} parameters, {_fmt_bytes(sum(bytes_by_type.values()))}")
    for name, count in sorted(by_type.items(), key=lambda kv: -bytes_by_type[kv[0]]):
        lines.append(f"  {name:<8} {count:>5} tensors  {_fmt_bytes(bytes_by_type[name]):>12}")

    if isinstance(arch, str):
        hp = [k for k in f.keys if k.startswith(arch + ".")]
        if hp:
            lines.append("hyperparameters:")
            lines += [f"  {k[len(arch) + 1:]:<36} {_fmt_value(f.value(k))}" for k in hp]
    other = [k for k in f.keys if not (isinstance(arch, str) and k.startswith(arch + "."))]
    if other:
        lines.append("metadata:")
        lines += [f"  {k:<38} {f.value_type(k):<14} {_fmt_value(f.value(k))}" for k in other]
    if tensors:
        lines.append("tensor list (name, numpy shape, type, bytes):")
        lines += [f"  {t['name']:<40} {str(t['shape']):<20} {t['type_name']:<6} {t['n_bytes']}" for t in infos]
    return "\n".join(lines)


def describe_system() -> str:
    lines = [
        f"pyrnn:         {__import__('pyrnn').__version__}",
        f"platform:      {platform.system()} {platform.machine()}, Python {platform.python_version()}",
        f"cpu features:  {_core.cpu_features()}",
        f"kernels (isa): {_core.isa()}" + ("  (forced by PYRNN_ISA)" if os.environ.get("PYRNN_ISA") else ""),
        f"available:     {', '.join(_core.available_isas())}",
        f"cores:         {os.cpu_count()}",
    ]
    return "\n".join(lines)
