"""Non-finite floats (NaN, ±inf) in weights or activations: every quantizer and every quantized gemm
has defined behaviour (no float→int cast of NaN, which is undefined in C++; UBSan checks this in
tools/ci_reliability.sh), and a non-finite activation gives NaN output instead of finite garbage."""

from __future__ import annotations

import numpy as np
import pytest

from pyrnn import _core
from pyrnn.gguf_writer import GGML_TYPES

QUANTS = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0"]


@pytest.mark.parametrize("name", QUANTS)
def test_quantize_nonfinite_rows(name: str) -> None:
    """Rows holding NaN/inf quantize without error; the finite rows are unaffected."""
    tid = GGML_TYPES[name][0]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    clean = _core.quantize(x, tid)
    x[1, 3], x[2, 40], x[3, 0] = np.nan, np.inf, -np.inf
    dirty = _core.quantize(x, tid).reshape(4, -1)
    assert np.array_equal(dirty[0], clean.reshape(4, -1)[0])


@pytest.mark.parametrize("isa", _core.available_isas())
@pytest.mark.parametrize("name", QUANTS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_gemm_nonfinite_activation_is_nan(isa: str, name: str, bad: float) -> None:
    """A NaN/inf in x makes every output of y = W·x NaN (or inf) on every ISA, as float math would."""
    tid = GGML_TYPES[name][0]
    rng = np.random.default_rng(1)
    w = _core.quantize(rng.standard_normal((5, 96)).astype(np.float32), tid)
    x = rng.standard_normal(96).astype(np.float32)
    x[50] = bad
    y = _core.gemm(w, tid, 5, 96, x, isa)
    assert not np.isfinite(y).any()
