"""Quantized models: logits of each type against the f32 model of the same checkpoint, with the
bounds measured on random-init models (no outlier structure: a conservative setting), and
`pyrnn quantize` equal to converting straight to the type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shared_paths import interop
from tiny_models import rwkv7_state_dict

import pyrnn
from pyrnn.converters.convert import convert_tensors
from pyrnn.quantize import quantize_file

# type: (worst, median) of max|Δlogit| / logit span over 64 positions. Measured (RWKV-7, C=256,
# 3 layers): f16 6.9e-4/4.2e-4, bf16 5.3e-3/3.0e-3, q8_0 2.1e-2/1.4e-2, q5_1 0.11/0.069,
# q5_0 0.39/0.080, q4_1 0.25/0.14, q4_0 0.26/0.15. llama.cpp's own q8_0 on its fixture: 1.4e-2.
BOUNDS = {
    "f16": (2e-3, 1e-3), "bf16": (1.5e-2, 8e-3), "q8_0": (5e-2, 3e-2),
    "q5_1": (0.3, 0.15), "q5_0": (0.6, 0.15), "q4_1": (0.5, 0.25), "q4_0": (0.5, 0.25),
}
TOKENS = np.random.default_rng(0).integers(0, 1000, 64)


@pytest.fixture(scope="module")
def checkpoint() -> dict[str, np.ndarray]:
    return rwkv7_state_dict(256, 3, 1000, (32, 64, 32, 64), seed=4)


@pytest.fixture(scope="module")
def f32_logits(checkpoint: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    path = tmp_path_factory.mktemp("f32") / "f32.gguf"
    convert_tensors(checkpoint, None, path, "f32")
    m = pyrnn.load(path)
    return m.forward(TOKENS, m.new_state(), all_logits=True)


@pytest.mark.parametrize("out_type", BOUNDS)
def test_type_error_against_f32(out_type: str, checkpoint: dict[str, np.ndarray], f32_logits: np.ndarray,
                                tmp_path: Path) -> None:
    """Each type's logits stay within its stated bound of the f32 model's, worst and median."""
    path = tmp_path / f"{out_type}.gguf"
    convert_tensors(checkpoint, None, path, out_type)
    m = pyrnn.load(path)
    logits = m.forward(TOKENS, m.new_state(), all_logits=True)
    err = np.abs(logits - f32_logits).max(axis=1) / np.ptp(f32_logits, axis=1)
    worst, median = BOUNDS[out_type]
    assert err.max() <= worst and np.median(err) <= median, (err.max(), np.median(err))


def test_quantize_tool_equals_direct_conversion(checkpoint: dict[str, np.ndarray], tmp_path: Path) -> None:
    """`pyrnn quantize` of an f32 file writes the same tensors as converting straight to q4_0."""
    convert_tensors(checkpoint, None, tmp_path / "f32.gguf", "f32")
    convert_tensors(checkpoint, None, tmp_path / "direct.gguf", "q4_0")
    quantize_file(tmp_path / "f32.gguf", tmp_path / "tool.gguf", "q4_0")
    a, b = pyrnn.GGUFFile(str(tmp_path / "tool.gguf")), pyrnn.GGUFFile(str(tmp_path / "direct.gguf"))
    assert [t["name"] for t in a.tensors] == [t["name"] for t in b.tensors]
    for t in b.tensors:
        assert bytes(a.tensor_bytes(t["name"])) == bytes(b.tensor_bytes(t["name"])), t["name"]
    assert a.value("general.file_type") == 2


def test_quantize_refuses_same_path(tmp_path: Path) -> None:
    """Quantizing a file onto itself is refused (it is memory-mapped while the output is written)."""
    p = tmp_path / "m.gguf"
    with pytest.raises(ValueError, match="other than the input"):
        quantize_file(p, p, "q8_0")


FIXTURES = interop("rwkv7")


@pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
def test_llama_cpp_q8_0_file_matches_llama_cpp(tmp_path: Path) -> None:
    """llama.cpp's q8_0 file runs in pyrnn with llama.cpp's own numbers (8-bit activations, as it does),
    and `pyrnn quantize` of its f32 file reproduces llama-quantize's bytes.

    Not bit-exact at every position: an activation that lands within float rounding of a q8 rounding
    boundary may round the other way under another summation order, a jump of one quantization step.
    Measured: one position at 8.9e-4 of the span (AVX2), every other within 1e-7; the scalar
    reference within 5e-8 everywhere."""
    m = pyrnn.load(FIXTURES / "rwkv7-tiny-q8_0.gguf")
    ref = np.load(FIXTURES / "llamacpp_logits_q8_0.npy")
    s = m.new_state()
    ours = np.stack([m.forward([t], s) for t in np.load(FIXTURES / "tokens.npy")])
    err = np.abs(ours - ref).max(axis=1) / np.ptp(ref, axis=1)
    assert err.max() <= 2e-3 and np.median(err) <= 1e-5, (err.max(), np.median(err))
    assert (ours.argmax(axis=1) == ref.argmax(axis=1)).all()
    quantize_file(FIXTURES / "rwkv7-tiny-f32.gguf", tmp_path / "q8.gguf", "q8_0")
    a, b = pyrnn.GGUFFile(str(tmp_path / "q8.gguf")), pyrnn.GGUFFile(str(FIXTURES / "rwkv7-tiny-q8_0.gguf"))
    for t in b.tensors:
        assert bytes(a.tensor_bytes(t["name"])) == bytes(b.tensor_bytes(t["name"])), t["name"]
