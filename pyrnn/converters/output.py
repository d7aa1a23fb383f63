"""Where converted tensors go: the GGUF writer plus the rule for which type each tensor is stored in.

    out = TensorOutput(writer, "f16")
    out.matrix("blk.0.time_mix_key.weight", wk)   # a large projection: stored as the output type
    out.f32("blk.0.time_mix_w0.weight", w0)       # vectors, LoRA, decays: always f32

The rule (docs/FORMAT.md): the output type applies to the embedding, the head and the large
projection matrices — the bytes that decode reads for every token. Norm weights, token-shift mixes,
decays, bonuses and the small LoRA matrices stay f32: they are a small part of the file and the
recurrence is sensitive to their precision.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..gguf_writer import GGMLType, GGUFWriter

OUT_TYPES = {"f32": GGMLType.F32, "f16": GGMLType.F16, "bf16": GGMLType.BF16}


def encode(array: np.ndarray, type_id: int) -> np.ndarray:
    """float data → the bytes of ggml type `type_id` (f32, f16, bf16 with round-to-nearest-even)."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    if type_id == GGMLType.F32:
        return a
    if type_id == GGMLType.F16:
        return a.astype(np.float16)
    if type_id == GGMLType.BF16:
        u = a.view(np.uint32).astype(np.uint64)
        rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        nan = np.isnan(a)
        out = rounded.astype(np.uint16)
        out[nan] = 0x7FC0
        return out
    raise ValueError(f"output type: expected f32, f16 or bf16, found ggml type {type_id}")


class TensorOutput:
    def __init__(self, writer: GGUFWriter, out_type: str) -> None:
        if out_type not in OUT_TYPES:
            raise ValueError(f"output type: expected one of {', '.join(OUT_TYPES)}, found {out_type!r}")
        self.writer = writer
        self.type_id = int(OUT_TYPES[out_type])

    def _add(self, name: str, make: Callable[[], np.ndarray], shape: tuple[int, ...], type_id: int) -> None:
        self.writer.add_tensor(name, shape, type_id, lambda: encode(make(), type_id))

    def matrix(self, name: str, array: np.ndarray) -> None:
        """A large 2-d weight, stored as the output type."""
        self._add(name, lambda: array, tuple(array.shape), self.type_id)

    def f32(self, name: str, array: np.ndarray) -> None:
        """Anything stored as f32 regardless of the output type."""
        self._add(name, lambda: array, tuple(array.shape), int(GGMLType.F32))
