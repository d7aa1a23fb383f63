"""Quantized types: our bytes are llama.cpp's bytes, and every ISA's matvec equals the reference.

Reference for the formats is gguf-py's quants module (llama.cpp's own Python implementation of the
ggml block layouts): quantizing must give identical bytes and dequantizing identical floats.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyrnn import _core

gguf = pytest.importorskip("gguf", reason="gguf is a [test] dependency; install pyrnn[test]")
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import quants  # noqa: E402

TYPES = {"q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "f16": 1, "bf16": 30}
ISAS = _core.available_isas()


def _data(rows: int, cols: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)) * rng.uniform(0.01, 10, (rows, 1))
    x[0, :32] = 0.0  # an all-zero block (scale 0) must not divide by zero
    if cols >= 64:
        x[-1, 32:64] = 3.5  # a constant block
    return x.astype(np.float32)


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("rows,cols", [(1, 32), (7, 96), (33, 4096 + 32)])
def test_quantize_matches_llama_cpp(name: str, rows: int, cols: int) -> None:
    """quantize() writes the bytes llama.cpp's reference writes; dequantize() reads them back identically."""
    x = _data(rows, cols, seed=rows + cols)
    ours = _core.quantize(x, TYPES[name])
    theirs = quants.quantize(x, getattr(Q, name.upper())).reshape(-1).view(np.uint8)
    assert ours.tobytes() == theirs.tobytes()
    back = _core.dequantize(ours, TYPES[name], x.size)
    ref = quants.dequantize(ours.reshape(rows, -1), getattr(Q, name.upper())).reshape(-1)
    np.testing.assert_array_equal(back, ref)


def test_quantize_refuses_bad_rows() -> None:
    """A row length that is not a multiple of the block size is refused with the sizes named."""
    with pytest.raises(ValueError, match="multiple of 32"):
        _core.quantize(np.zeros((2, 33), np.float32), TYPES["q8_0"])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "f16", "bf16"])
@pytest.mark.parametrize("n_tokens", [2, 5, 9])
def test_gemm_equals_token_by_token(isa: str, name: str, n_tokens: int) -> None:
    """GEMM over n tokens (full 4-token tiles and a remainder) equals n separate matvecs exactly."""
    rows, cols = 37, 96
    w = _data(rows, cols, seed=11)
    x = np.random.default_rng(n_tokens).standard_normal((n_tokens, cols)).astype(np.float32)
    wq = _core.quantize(w, TYPES[name])
    y = _core.gemm(wq, TYPES[name], rows, cols, x, isa)
    one_by_one = np.stack([_core.gemm(wq, TYPES[name], rows, cols, x[t], isa) for t in range(n_tokens)])
    np.testing.assert_array_equal(y, one_by_one)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0"])
@pytest.mark.parametrize("rows,cols", [(1, 32), (7, 64), (31, 96), (33, 160), (5, 4096 + 32)])
def test_quant_matvec_matches_reference(isa: str, name: str, rows: int, cols: int) -> None:
    """Each ISA's quantized matvec equals the scalar reference (the same integer sums, in another
    order) and stays within activation-quantization error of the dequantized product."""
    w = _data(rows, cols, seed=3 * rows + cols)
    x = np.random.default_rng(cols).standard_normal(cols).astype(np.float32)
    tid = TYPES[name]
    wq = _core.quantize(w, tid)
    y = _core.gemm(wq, tid, rows, cols, x, isa)
    y_ref = _core.gemm(wq, tid, rows, cols, x, "ref")
    wd = _core.dequantize(wq, tid, w.size).reshape(rows, cols).astype(np.float64)
    scale = np.abs(wd) @ np.abs(x.astype(np.float64)) + 1e-30
    assert np.all(np.abs(y - y_ref) <= 1e-5 * scale)
    # x is quantized to 8 bits per block: relative error ≤ 1/254 of each block's max, summed
    assert np.all(np.abs(y - wd @ x) <= 0.01 * scale)
