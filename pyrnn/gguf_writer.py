"""Streaming GGUF v3 writer for the converters.

    w = GGUFWriter("out.gguf")
    w.add_string("general.architecture", "rwkv7")
    w.add_uint32("rwkv7.block_count", 12)
    w.add_tensor("token_embd.weight", (65536, 768), GGMLType.F16, lambda: emb.astype(np.float16))
    w.write(progress=print_progress)      # temp file + rename: never a half-written OUT

Tensors are given as a shape (row-major, numpy order), a ggml type and a function that produces
the bytes, so a large model is converted one tensor at a time. Values are little-endian.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _core
from .atomic import atomic_output

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
DEFAULT_ALIGNMENT = 32


class ValueType(enum.IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


_SCALAR_FORMAT = {
    ValueType.UINT8: "<B", ValueType.INT8: "<b", ValueType.UINT16: "<H", ValueType.INT16: "<h",
    ValueType.UINT32: "<I", ValueType.INT32: "<i", ValueType.FLOAT32: "<f", ValueType.BOOL: "<?",
    ValueType.UINT64: "<Q", ValueType.INT64: "<q", ValueType.FLOAT64: "<d",
}

# ggml tensor types, from the C++ table (one source of truth): name -> (id, block size, bytes/block)
GGML_TYPES: dict[str, tuple[int, int, int]] = {
    name: (tid, block, size) for tid, name, block, size in _core.ggml_types()
}


class GGMLType(enum.IntEnum):
    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    BF16 = 30


def ggml_type_name(type_id: int) -> str:
    for name, (tid, _, _) in GGML_TYPES.items():
        if tid == type_id:
            return name
    raise ValueError(f"ggml type: expected a known id, found {type_id}")


def tensor_nbytes(shape: Sequence[int], type_id: int) -> int:
    """Bytes of a row-major tensor of `shape` stored as ggml type `type_id`."""
    _, block, size = GGML_TYPES[ggml_type_name(type_id)]
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    row = int(shape[-1]) if len(shape) else 1
    if row % block:
        raise ValueError(f"tensor row length: expected a multiple of {block}, found {row}")
    return n // block * size


TensorData = Union[np.ndarray, bytes, bytearray, memoryview]


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    type_id: int
    nbytes: int
    produce: Callable[[], TensorData]


def _pack_string(s: str | bytes) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


class GGUFWriter:
    """Collects metadata and tensor descriptions, then writes the file in one pass."""

    def __init__(self, path: str | os.PathLike[str], alignment: int = DEFAULT_ALIGNMENT) -> None:
        if alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"alignment: expected a power of two, found {alignment}")
        self.path = Path(path)
        self.alignment = alignment
        self._kv: dict[str, bytes] = {}
        self._tensors: list[_Tensor] = []
        if alignment != DEFAULT_ALIGNMENT:
            self.add_uint32("general.alignment", alignment)

    # ---- metadata -------------------------------------------------------------------------
    def _add(self, key: str, payload: bytes) -> None:
        if key in self._kv:
            raise ValueError(f"metadata key {key!r}: expected once, found a second value")
        self._kv[key] = payload

    def add_scalar(self, key: str, value: Any, vtype: ValueType) -> None:
        if vtype in (ValueType.STRING, ValueType.ARRAY):
            raise ValueError(f"metadata {key!r}: add_scalar takes a scalar type, found {vtype.name}")
        self._add(key, struct.pack("<I", vtype) + struct.pack(_SCALAR_FORMAT[vtype], value))

    def add_uint32(self, key: str, value: int) -> None:
        self.add_scalar(key, value, ValueType.UINT32)

    def add_int32(self, key: str, value: int) -> None:
        self.add_scalar(key, value, ValueType.INT32)

    def add_uint64(self, key: str, value: int) -> None:
        self.add_scalar(key, value, ValueType.UINT64)

    def add_float32(self, key: str, value: float) -> None:
        self.add_scalar(key, value, ValueType.FLOAT32)

    def add_bool(self, key: str, value: bool) -> None:
        self.add_scalar(key, bool(value), ValueType.BOOL)

    def add_string(self, key: str, value: str | bytes) -> None:
        self._add(key, struct.pack("<I", ValueType.STRING) + _pack_string(value))

    def add_array(self, key: str, values: Sequence[Any], elem_type: ValueType) -> None:
        head = struct.pack("<IIQ", ValueType.ARRAY, elem_type, len(values))
        if elem_type == ValueType.STRING:
            body = b"".join(_pack_string(v) for v in values)
        elif elem_type == ValueType.ARRAY:
            raise ValueError(f"metadata {key!r}: arrays of arrays are not supported")
        else:
            fmt = _SCALAR_FORMAT[elem_type]
            body = np.asarray(values, dtype=np.dtype(fmt)).tobytes()
        self._add(key, head + body)

    # ---- tensors --------------------------------------------------------------------------
    def add_tensor(
        self,
        name: str,
        shape: Sequence[int],
        type_id: int,
        data: TensorData | Callable[[], TensorData],
    ) -> None:
        """Add a tensor of row-major `shape`; `data` is its bytes or a function producing them."""
        if any(t.name == name for t in self._tensors):
            raise ValueError(f"tensor {name!r}: expected a unique name, found a duplicate")
        shape = tuple(int(d) for d in shape)
        if not 1 <= len(shape) <= 4:
            raise ValueError(f"tensor {name!r}: expected 1-4 dimensions, found {len(shape)}")
        nbytes = tensor_nbytes(shape, type_id)
        produce = data if callable(data) else (lambda d=data: d)
        self._tensors.append(_Tensor(name, shape, type_id, nbytes, produce))

    @property
    def tensors(self) -> list[_Tensor]:
        """The tensors added so far (name, row-major shape, type), in file order."""
        return list(self._tensors)

    # ---- output ---------------------------------------------------------------------------
    def _header(self) -> bytes:
        parts = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self._tensors), len(self._kv))]
        for key, payload in self._kv.items():
            parts += [_pack_string(key), payload]
        offset = 0
        for t in self._tensors:
            ne = tuple(reversed(t.shape))  # ggml order: ne[0] is the row
            parts += [_pack_string(t.name), struct.pack("<I", len(ne))]
            parts += [struct.pack(f"<{len(ne)}Q", *ne), struct.pack("<IQ", t.type_id, offset)]
            offset += self._padded(t.nbytes)
        header = b"".join(parts)
        return header + b"\0" * (self._padded(len(header)) - len(header))

    def _padded(self, n: int) -> int:
        return (n + self.alignment - 1) // self.alignment * self.alignment

    def write(self, progress: Callable[[int, int, str], None] | None = None) -> None:
        """Write to a temporary file beside the target and rename it into place when complete.

        `progress(done_bytes, total_bytes, tensor_name)` is called after each tensor."""
        total = sum(t.nbytes for t in self._tensors)
        with atomic_output(self.path) as out:
            out.write(self._header())
            done = 0
            for t in self._tensors:
                data = t.produce()
                buf = memoryview(np.ascontiguousarray(data) if isinstance(data, np.ndarray) else data)
                if buf.nbytes != t.nbytes:
                    raise ValueError(
                        f"tensor {t.name!r}: expected {t.nbytes} bytes for shape {t.shape} of "
                        f"type {ggml_type_name(t.type_id)}, found {buf.nbytes}"
                    )
                out.write(buf.cast("B"))
                out.write(b"\0" * (self._padded(t.nbytes) - t.nbytes))
                done += t.nbytes
                if progress:
                    progress(done, total, t.name)
