"""`pyrnn quantize IN OUT --type T`: re-store a GGUF model's large matrices in another type.

The large matrices (output.LARGE_MATRIX: embedding, head, projections) are dequantized to f32 and
quantized to T by the C++ quantizer; every other tensor and all metadata are copied unchanged,
except general.file_type. Rows that do not fill whole 32-element blocks fall back to f16.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from . import _core
from .converters.convert import FILE_TYPES
from .converters.output import LARGE_MATRIX, OUT_TYPES, encode, matrix_type
from .gguf_writer import GGUFWriter, ValueType

_SCALARS = {t.name.lower(): t for t in ValueType}
_FLOAT_TYPES = {0, 1, 30}  # f32, f16, bf16: what may be re-quantized without compounding error


def _copy_metadata(src: _core.GGUFFile, w: GGUFWriter, skip: set[str]) -> None:
    for key in src.keys:
        if key in skip:
            continue
        vtype, value = src.value_type(key), src.value(key)
        if vtype.startswith("array["):
            w.add_array(key, value, _SCALARS[vtype[6:-1]])
        elif vtype == "string":
            w.add_string(key, value)
        else:
            w.add_scalar(key, value, _SCALARS[vtype])


def quantize_file(src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str], out_type: str,
                  progress: Callable[[int, int, str], None] | None = None) -> int:
    """Write `dst_path`; returns how many tensors were re-stored in `out_type`."""
    if out_type not in OUT_TYPES:
        raise ValueError(f"--type: expected one of {', '.join(OUT_TYPES)}, found {out_type!r}")
    if os.path.abspath(src_path) == os.path.abspath(dst_path):
        raise ValueError("output: expected a path other than the input (the input is memory-mapped while writing)")
    src = _core.GGUFFile(os.fspath(src_path))
    target = int(OUT_TYPES[out_type])
    w = GGUFWriter(dst_path, alignment=src.alignment)
    _copy_metadata(src, w, skip={"general.file_type", "general.alignment"})
    w.add_uint32("general.file_type", FILE_TYPES[out_type])
    changed = 0
    for t in src.tensors:
        name, shape, tid = t["name"], t["shape"], t["type"]
        if LARGE_MATRIX.search(name) and len(shape) == 2 and tid in _FLOAT_TYPES:
            new = matrix_type(target, shape[-1])

            def make(name: str = name, tid: int = tid, n: int = t["n_elements"], shape: tuple = shape,
                     new: int = new) -> np.ndarray:
                floats = _core.dequantize(np.asarray(src.tensor_bytes(name)), tid, n).reshape(shape)
                return encode(floats, new)

            w.add_tensor(name, shape, new, make)
            changed += new != tid
        else:
            w.add_tensor(name, shape, tid, lambda name=name: src.tensor_bytes(name))
    w.write(progress)
    return changed
