"""Property-based fuzzing of the Python readers of untrusted bytes: .pth zips (torch_pickle),
safetensors files and Hugging Face folders (checkpoint), and saved states (State.from_bytes).

Each reader either returns or raises its documented error; nothing else may escape (no
KeyError, TypeError, OverflowError, RecursionError, IndexError, struct.error, ...). Seeds are small
valid inputs, mutated by hypothesis. The example budget keeps each test to a few seconds in CI;
PYRNN_FUZZ_EXAMPLES=20000 python -m pytest -q tests/test_fuzz_inputs.py runs a longer campaign."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="property-based fuzzing uses hypothesis (a test dependency)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_torch_pickle import _pth, _state, _tensor  # noqa: E402

import pyrnn  # noqa: E402
from pyrnn.converters.checkpoint import load_safetensors, read_checkpoint  # noqa: E402
from pyrnn.converters.torch_pickle import CheckpointFormatError, PickleSecurityError, load_pth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("PYRNN_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CHECKPOINT_ERRORS = (CheckpointFormatError, PickleSecurityError, FileNotFoundError)

# JSON of any shape, including the awkward numbers (1e400 parses as inf) and deep nesting.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """Byte overwrites at positions taken modulo the length, then an optional truncation."""
    b = bytearray(data)
    for pos, value in edits:
        if b:
            b[pos % len(b)] = value
    return bytes(b[: cut % (len(b) + 1)] if cut is not None else b)


edits = st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=6)
cuts = st.none() | st.integers(0, 2**20)


# ---- .pth (torch zip + restricted pickle) ---------------------------------------------------------

def _good_pth(tmp: Path) -> tuple[Path, dict[str, bytes]]:
    pkl = _state([("w", _tensor("FloatStorage", "0", 12, 0, (3, 4), (4, 1))),
                  ("h", _tensor("HalfStorage", "1", 4, 0, (4,), (1,)))])
    path = _pth(tmp / "seed.pth", pkl, {"0": np.arange(12, dtype="<f4").tobytes(), "1": bytes(8)})
    with zipfile.ZipFile(path) as zf:
        return path, {n: zf.read(n) for n in zf.namelist()}


@FUZZ
@given(edits=edits, cut=cuts, in_pickle=st.booleans())
def test_pth_mutations_raise_only_checkpoint_errors(tmp_path_factory: pytest.TempPathFactory,
                                                     edits: list[tuple[int, int]], cut: int | None,
                                                     in_pickle: bool) -> None:
    """A mutated .pth (whole file, or only its pickle inside a valid zip) loads or raises a checkpoint error."""
    tmp = tmp_path_factory.mktemp("pth")
    seed, members = _good_pth(tmp)
    target = tmp / "f.pth"
    if in_pickle:
        name = next(n for n in members if n.endswith("data.pkl"))
        with zipfile.ZipFile(target, "w") as zf:
            for n, b in members.items():
                zf.writestr(n, mutate(b, edits, cut) if n == name else b)
    else:
        target.write_bytes(mutate(seed.read_bytes(), edits, cut))
    try:
        load_pth(target)
    except CHECKPOINT_ERRORS:
        pass


@FUZZ
@given(pkl=st.binary(max_size=300))
def test_pth_random_pickles_raise_only_checkpoint_errors(tmp_path_factory: pytest.TempPathFactory, pkl: bytes) -> None:
    """Arbitrary bytes as data.pkl inside a valid zip load or raise a checkpoint error."""
    tmp = tmp_path_factory.mktemp("pkl")
    try:
        load_pth(_pth(tmp / "f.pth", b"\x80\x02" + pkl))
    except CHECKPOINT_ERRORS:
        pass


# ---- safetensors and Hugging Face folders -----------------------------------------------------------

def _safetensors(header: Any, body: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


SEED_ST = _safetensors({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                        "b": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]},
                        "__metadata__": {"format": "pt"}}, bytes(range(32)))

tensor_infos = st.dictionaries(
    st.sampled_from(["dtype", "shape", "data_offsets", "x"]),
    st.sampled_from(["F32", "BF16", "I8", "F99"]) | st.lists(st.integers(-2, 2**63), max_size=3) | json_values,
    max_size=4,
)


@FUZZ
@given(edits=edits, cut=cuts)
def test_safetensors_mutations_raise_only_checkpoint_errors(tmp_path_factory: pytest.TempPathFactory,
                                                            edits: list[tuple[int, int]], cut: int | None) -> None:
    """A mutated .safetensors file loads or raises CheckpointFormatError."""
    path = tmp_path_factory.mktemp("st") / "m.safetensors"
    path.write_bytes(mutate(SEED_ST, edits, cut))
    try:
        load_safetensors(path)
    except CheckpointFormatError:
        pass


@FUZZ
@given(header=st.dictionaries(st.text(max_size=4), tensor_infos | json_values, max_size=3) | json_values,
       body=st.binary(max_size=64))
def test_safetensors_headers_raise_only_checkpoint_errors(tmp_path_factory: pytest.TempPathFactory,
                                                          header: Any, body: bytes) -> None:
    """Any JSON header (wrong types, huge or negative shapes and offsets) loads or raises CheckpointFormatError."""
    path = tmp_path_factory.mktemp("st") / "m.safetensors"
    path.write_bytes(_safetensors(header, body))
    try:
        load_safetensors(path)
    except CheckpointFormatError:
        pass


def test_safetensors_deeply_nested_header_is_a_format_error(tmp_path: Path) -> None:
    """A header nested deeper than Python's recursion limit is refused, not a RecursionError."""
    h = b"[" * 100_000 + b"]" * 100_000
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(h)) + h)
    with pytest.raises(CheckpointFormatError, match="header"):
        load_safetensors(path)


@FUZZ
@given(config=json_values, index=st.none() | json_values | st.fixed_dictionaries(
    {"weight_map": st.dictionaries(st.text(max_size=4), st.sampled_from(
        ["model.safetensors", "../outside.safetensors", "/etc/hostname", "", "sub/x.safetensors", "config.json"])
        | json_values, max_size=3)}))
def test_hf_folders_raise_only_checkpoint_errors(tmp_path_factory: pytest.TempPathFactory,
                                                 config: Any, index: Any) -> None:
    """A folder with any config.json and shard index reads or raises a checkpoint error."""
    folder = tmp_path_factory.mktemp("hf")
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(SEED_ST)
    (folder.parent / "outside.safetensors").write_bytes(SEED_ST)
    if index is not None:
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    try:
        read_checkpoint(folder)
    except CHECKPOINT_ERRORS:
        pass


def test_hf_shard_outside_the_folder_is_refused(tmp_path: Path) -> None:
    """A shard index naming a file outside the folder (../x, /abs) is refused, not read."""
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (tmp_path / "outside.safetensors").write_bytes(SEED_ST)
    for shard in ("../outside.safetensors", str(tmp_path / "outside.safetensors")):
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": shard}}))
        with pytest.raises(CheckpointFormatError, match="shard"):
            read_checkpoint(folder)


# ---- saved states -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model() -> pyrnn.Model:
    return pyrnn.load(ROOT / "fuzz" / "corpus" / "gguf" / "rwkv4-q4_0.gguf")


def _state_blob(header: Any, payload: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<8sII", pyrnn.model.STATE_MAGIC, pyrnn.model.STATE_FORMAT, len(h)) + h + payload


@FUZZ
@given(edits=edits, cut=cuts)
def test_state_mutations_raise_only_value_error(model: pyrnn.Model, edits: list[tuple[int, int]],
                                                cut: int | None) -> None:
    """A mutated saved state loads (same size, same model) or raises ValueError."""
    blob = bytes(model.new_state())
    try:
        s = pyrnn.State.from_bytes(model, mutate(blob, edits, cut))
    except ValueError:
        return
    assert s.data.shape == (model.state_size,)


@FUZZ
@given(header=json_values | st.fixed_dictionaries(
    {"arch": json_values, "state_size": json_values, "model_fingerprint": json_values}), payload=st.binary(max_size=64))
def test_state_headers_raise_only_value_error(model: pyrnn.Model, header: Any, payload: bytes) -> None:
    """Any JSON state header (wrong types, inf, huge sizes) is refused with ValueError."""
    with pytest.raises(ValueError):
        pyrnn.State.from_bytes(model, _state_blob(header, payload))


def test_state_deeply_nested_header_is_a_value_error(model: pyrnn.Model) -> None:
    """A state header nested deeper than the recursion limit raises ValueError, not RecursionError."""
    with pytest.raises(ValueError, match="header"):
        h = b"[" * 100_000
        prefix = struct.pack("<8sII", pyrnn.model.STATE_MAGIC, pyrnn.model.STATE_FORMAT, len(h))
        pyrnn.State.from_bytes(model, prefix + h)


@pytest.mark.parametrize("info", [
    {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 4]},           # inf: int() overflows
    {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]},             # not an integer
    {"dtype": "F32", "shape": [2**62, 2**62, 0], "data_offsets": [0, 0]},  # int64 product overflow
    {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 0]},    # product wraps to 0 in int64
    {"dtype": "F32", "shape": [1], "data_offsets": [0, True]},            # a bool is not an offset
])
def test_safetensors_bad_numbers_are_format_errors(tmp_path: Path, info: dict[str, Any]) -> None:
    """Shapes and offsets that are floats, inf, bools or overflow int64 raise CheckpointFormatError."""
    path = tmp_path / "m.safetensors"
    h = json.dumps({"a": info}).replace("Infinity", "1e400").encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + bytes(4))
    with pytest.raises(CheckpointFormatError):
        load_safetensors(path)


def test_safetensors_all_empty_tensors_load(tmp_path: Path) -> None:
    """A file whose tensors are all empty (no data bytes at all) loads as empty arrays."""
    path = tmp_path / "m.safetensors"
    path.write_bytes(_safetensors({"a": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}}, b""))
    assert load_safetensors(path)["a"].shape == (0, 3)


def test_state_infinite_size_is_a_value_error(model: pyrnn.Model) -> None:
    """"state_size": 1e400 (inf once parsed) raises ValueError, not OverflowError."""
    h = b'{"arch": "rwkv4", "state_size": 1e400, "model_fingerprint": ""}'
    prefix = struct.pack("<8sII", pyrnn.model.STATE_MAGIC, pyrnn.model.STATE_FORMAT, len(h))
    with pytest.raises(ValueError, match="header"):
        pyrnn.State.from_bytes(model, prefix + h)


@pytest.mark.parametrize("shard", ["x" * 5000 + ".safetensors", 7, None, ["model.safetensors"]])
def test_hf_unusable_shard_names_are_format_errors(tmp_path: Path, shard: Any) -> None:
    """A shard name too long for the file system (OSError from stat) or not a string is refused cleanly."""
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": shard}}))
    with pytest.raises(CheckpointFormatError, match="shard|weight_map"):
        read_checkpoint(tmp_path)
