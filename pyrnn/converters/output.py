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

import re
from collections.abc import Callable

import numpy as np

from .. import _core
from ..gguf_writer import GGMLType, GGUFWriter

OUT_TYPES = {
    "f32": GGMLType.F32, "f16": GGMLType.F16, "bf16": GGMLType.BF16, "q8_0": GGMLType.Q8_0,
    "q5_1": GGMLType.Q5_1, "q5_0": GGMLType.Q5_0, "q4_1": GGMLType.Q4_1, "q4_0": GGMLType.Q4_0,
}


# The large matrices, by GGUF name: what `--type` applies to, in the converters and `pyrnn quantize`.
LARGE_MATRIX = re.compile(
    r"^(token_embd|output)\.weight$"
    r"|\.(time_mix_(receptance|key|value|output|gate)|channel_mix_(key|value|receptance)"
    r"|ssm_(in|out|x)|ffn_(up|down|gate)|attn_(q|k|v|output|gate))\.weight$"
)


def encode(array: np.ndarray, type_id: int) -> np.ndarray:
    """float data → the bytes of ggml type `type_id`, by the C++ quantizer (one implementation)."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    if type_id == GGMLType.F32:
        return a
    rows = a.reshape(-1, a.shape[-1] if a.ndim else 1)
    return _core.quantize(rows, int(type_id))


def matrix_type(type_id: int, cols: int) -> int:
    """The type a large matrix with rows of `cols` is stored in: `type_id`, or f16 when the rows do
    not fill whole 32-element blocks (as llama-quantize falls back)."""
    if type_id in (GGMLType.F32, GGMLType.F16, GGMLType.BF16) or cols % 32 == 0:
        return type_id
    return int(GGMLType.F16)


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
        self._add(name, lambda: array, tuple(array.shape), matrix_type(self.type_id, int(array.shape[-1])))

    def f32(self, name: str, array: np.ndarray) -> None:
        """Anything stored as f32 regardless of the output type."""
        self._add(name, lambda: array, tuple(array.shape), int(GGMLType.F32))
