"""Kernels: every ISA this CPU runs equals the scalar reference on odd sizes; fp16 conversion is exact."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pyrnn import _core

ISAS = _core.available_isas()
SIZES = [(1, 1), (7, 7), (31, 33), (33, 31), (5, 4096 + 32), (64, 256)]
BF16 = 30


def _bf16_bytes(a: np.ndarray) -> np.ndarray:
    """float32 -> bf16 by truncation (exactly representable values are what we compare)."""
    return (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


def _inputs(rows: int, cols: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, cols)).astype(np.float32), rng.standard_normal(cols).astype(np.float32)


def test_reference_is_first_and_always_present() -> None:
    """The reference kernels exist on every machine, and dispatch lists them first."""
    assert ISAS[0] == "ref"


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,cols", SIZES)
@pytest.mark.parametrize("type_name", ["f32", "f16", "bf16"])
def test_matvec_matches_reference(isa: str, rows: int, cols: int, type_name: str) -> None:
    """matvec of each ISA equals the scalar reference (and float64 numpy) to float rounding."""
    w, x = _inputs(rows, cols, seed=rows * 1000 + cols)
    if type_name == "f32":
        raw, type_id, exact = w, 0, w
    elif type_name == "f16":
        raw = w.astype(np.float16)
        type_id, exact = 1, raw.astype(np.float32)
    else:
        raw = _bf16_bytes(w)
        type_id, exact = BF16, (raw.astype(np.uint32) << 16).view(np.float32)
    y = _core.gemm(raw, type_id, rows, cols, x, isa)
    y_ref = _core.gemm(raw, type_id, rows, cols, x, "ref")
    y64 = exact.astype(np.float64) @ x.astype(np.float64)
    scale = np.abs(exact).astype(np.float64) @ np.abs(x).astype(np.float64)  # error bound grows with Σ|w·x|
    tol = 2e-6 * np.sqrt(cols) * scale + 1e-30
    assert np.all(np.abs(y - y64) <= tol), f"max err {np.max(np.abs(y - y64) / tol)} of tolerance"
    assert np.all(np.abs(y - y_ref) <= 2 * tol)


QUANT = {"q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8}
# Token counts that run every tile remainder path (avx2 tiles 4 tokens, avx512 8).
TOKENS = [1, 2, 3, 5, 8, 15, 17]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,cols", [(33, 288), (5, 4096 + 32)])
@pytest.mark.parametrize("n", TOKENS)
@pytest.mark.parametrize("type_name", ["f16", *QUANT])
def test_gemm_tokens_match_reference(isa: str, rows: int, cols: int, n: int, type_name: str) -> None:
    """gemm of each ISA for n tokens equals the reference's for the same bytes.

    Both quantize the activations with the same reference quantizer and sum each block exactly in
    integers, so they differ only in the order of the float accumulation: the bound is the float
    summation bound over Σ|w·x| (with x's rounding to 8 bits, at most half a step per element).
    """
    rng = np.random.default_rng(rows * 100 + n)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    x = rng.standard_normal((n, cols)).astype(np.float32)
    if type_name == "f16":
        raw, type_id, w_exact, k = w.astype(np.float16), 1, w.astype(np.float16).astype(np.float64), cols
    else:
        type_id = QUANT[type_name]
        raw = _core.quantize(w, type_id).reshape(rows, -1)
        w_exact = np.stack([_core.dequantize(r, type_id, cols) for r in raw]).astype(np.float64)
        k = cols // 32
    y = _core.gemm(raw, type_id, rows, cols, x, isa)
    y_ref = _core.gemm(raw, type_id, rows, cols, x, "ref")
    x_mag = np.abs(x).astype(np.float64) + np.abs(x).max(axis=1, keepdims=True) / 127
    tol = 4 * (k + 8) * 2.0**-24 * (x_mag @ np.abs(w_exact).T) + 1e-30
    assert y.shape == (n, rows)
    assert np.all(np.abs(y - y_ref) <= tol), f"max err {np.max(np.abs(y - y_ref) / tol)} of tolerance"


PACK_TYPES = {"q4_0": 2, "q8_0": 8, "f32": 0, "f16": 1}


def _raw(w: np.ndarray, type_id: int) -> np.ndarray:
    """w (rows, cols) as the bytes of type_id, one row per array row."""
    if type_id in (0, 1):
        return w.astype(np.float16 if type_id else np.float32)
    return _core.quantize(w, type_id).reshape(w.shape[0], -1)


def _has_packed_kernel(isa: str, type_id: int) -> bool:
    raw = _raw(np.zeros((16, 32), np.float32), type_id)
    try:
        _core.gemm(_core.pack(raw, type_id, 16, 32), type_id, 16, 32, np.zeros(32, np.float32), isa, True)
    except ValueError as e:
        assert "has no packed kernel" in str(e)
        return False
    return True


PACKED = [(isa, t) for isa in ISAS for t in PACK_TYPES if _has_packed_kernel(isa, PACK_TYPES[t])]


def test_avx512_has_packed_kernels() -> None:
    """Where avx512 runs, its packed kernels exist (so the test below cannot pass by running nothing)."""
    if "avx512" in ISAS:
        assert {("avx512", t) for t in PACK_TYPES} <= set(PACKED)


@pytest.mark.parametrize("isa,type_name", PACKED)
@pytest.mark.parametrize("rows,cols", [(16, 32), (48, 288), (32, 4096 + 32)])
@pytest.mark.parametrize("n", [1, 3, 8, 17])
def test_packed_gemm_matches_reference(isa: str, type_name: str, rows: int, cols: int, n: int) -> None:
    """The packed kernel on pack()'s 16-row layout equals the reference on the file's bytes, from a
    buffer at any alignment (numpy's, here offset by one byte): the layout loses nothing."""
    rng = np.random.default_rng(rows + cols + n)
    type_id = PACK_TYPES[type_name]
    raw = _raw(rng.standard_normal((rows, cols)).astype(np.float32), type_id)
    x = rng.standard_normal((n, cols)).astype(np.float32)
    packed = _core.pack(raw, type_id, rows, cols)
    shifted = np.empty(packed.size + 1, np.uint8)[1:]  # not 64-byte aligned
    shifted[:] = packed
    floats = type_id in (0, 1)
    w_exact = raw.astype(np.float64) if floats else np.stack([_core.dequantize(r, type_id, cols) for r in raw])
    x_mag = np.abs(x).astype(np.float64) + (0 if floats else np.abs(x).max(axis=1, keepdims=True) / 127)
    k = cols if floats else cols // 32  # terms of the float summation
    tol = 4 * (k + 8) * 2.0**-24 * (x_mag @ np.abs(w_exact.astype(np.float64)).T) + 1e-30
    y_ref = _core.gemm(raw, type_id, rows, cols, x, "ref")
    for w in (packed, shifted):
        y = _core.gemm(w, type_id, rows, cols, x, isa, True)
        assert np.all(np.abs(y - y_ref) <= tol), f"max err {np.max(np.abs(y - y_ref) / tol)} of tolerance"


def test_pack_rejects_bad_input() -> None:
    """pack() and gemm(packed=True) name what is wrong instead of reading past a buffer."""
    raw = _core.quantize(np.ones((16, 64), np.float32), 2).reshape(16, -1)
    with pytest.raises(ValueError, match="rows: expected a positive multiple of 16, found 8"):
        _core.pack(raw[:8], 2, 8, 64)
    with pytest.raises(ValueError, match="type: expected q4_0, q8_0, f32, f16 or bf16"):
        _core.pack(raw, 3, 16, 64)
    with pytest.raises(ValueError, match="w: expected"):
        _core.pack(raw, 2, 16, 96)
    x = np.ones(64, np.float32)
    with pytest.raises(ValueError, match="packed: ref has no packed kernel for q4_0"):
        _core.gemm(_core.pack(raw, 2, 16, 64), 2, 16, 64, x, "ref", True)
    if "avx512" in ISAS:
        with pytest.raises(ValueError, match="w: expected 576 bytes, found 288"):
            _core.gemm(_core.pack(raw, 2, 16, 64)[:288], 2, 16, 64, x, "avx512", True)


def test_matvec_rejects_bad_shapes() -> None:
    """Wrong sizes at the border give ValueError naming the argument, not a crash."""
    w, x = _inputs(3, 8, 0)
    with pytest.raises(ValueError, match="x: expected 9 elements per row, found 8"):
        _core.gemm(w, 0, 3, 9, x)
    with pytest.raises(ValueError, match="w: expected 128 bytes, found 96"):
        _core.gemm(w, 0, 4, 8, x)
    with pytest.raises(ValueError, match="isa"):
        _core.gemm(w, 0, 3, 8, x, "nonexistent")


def test_fp16_to_fp32_all_values() -> None:
    """All 65,536 half values convert exactly as numpy does (subnormals, inf, nan included)."""
    h = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    ours = np.array([_core.fp16_to_fp32(int(v)) for v in h], dtype=np.float32)
    ref = h.view(np.float16).astype(np.float32)
    same = (ours.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(ours) & np.isnan(ref))
    assert same.all()


def test_fp32_to_fp16_rounds_like_numpy() -> None:
    """float -> half rounds to nearest even like numpy, across normal, subnormal and overflow ranges."""
    rng = np.random.default_rng(1)
    f = np.concatenate([
        rng.standard_normal(3000).astype(np.float32) * 10.0 ** rng.integers(-9, 6, 3000),
        np.array([0.0, -0.0, 65504.0, 65520.0, 65519.0, 1e-8, 2.0**-24, 2.0**-25, 3 * 2.0**-26, np.inf, -np.inf],
                 dtype=np.float32),
    ]).astype(np.float32)
    ours = np.array([_core.fp32_to_fp16(float(v)) for v in f], dtype=np.uint16)
    with np.errstate(over="ignore"):  # 65520 and up overflow to inf, on purpose
        ref = f.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(ours, ref)


def test_pyrnn_isa_forces_reference(tmp_path) -> None:
    """PYRNN_ISA=ref selects the reference kernels; an unknown ISA gives one clear error."""
    code = "from pyrnn import _core; print(_core.isa())"
    import pyrnn

    # the subprocess imports the same pyrnn as this test, installed or built in the tree
    root = os.path.dirname(os.path.dirname(pyrnn.__file__))
    env = dict(os.environ, PYRNN_ISA="ref", PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=tmp_path)  # away from the source tree
    assert out.stdout.strip() == "ref"
    env["PYRNN_ISA"] = "sse1"
    bad = subprocess.run([sys.executable, "-m", "pyrnn.cli", "info", "--system"], env=env,
                         capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 1
    assert "PYRNN_ISA: expected one of ref" in bad.stderr and "Traceback" not in bad.stderr
