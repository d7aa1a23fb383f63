"""GGUF reader: valid files read back exactly; every corrupted file gives one clear FormatError."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from ggufcraft import Craft, kv_u32, s, tensor_info
from shared_paths import interop

import pyrnn
from pyrnn.gguf_writer import GGMLType, GGUFWriter, ValueType

FIXTURES = interop("")


def write(tmp_path: Path, data: bytes, name: str = "m.gguf") -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_crafted_base_file_is_valid(tmp_path: Path) -> None:
    """The untouched crafted file loads, so each corruption below is what breaks it."""
    f = pyrnn.GGUFFile(write(tmp_path, Craft().build()))
    assert f.value("general.architecture") == "test"
    assert [t["name"] for t in f.tensors] == ["a", "b"]
    assert bytes(f.tensor_bytes("a")) == bytes(range(32))


def _truncated_header() -> bytes:
    return Craft().build()[:100]  # inside the metadata


def _truncated_data() -> bytes:
    return Craft().build()[:-30]


def _overflow_dims() -> bytes:
    c = Craft()
    c.infos[0] = tensor_info("a", (2**32, 2**32), 0, 0)
    return c.build()


def _huge_dim() -> bytes:
    c = Craft()
    c.infos[0] = tensor_info("a", (2**63 + 5,), 0, 0)
    return c.build()


def _string_past_end() -> bytes:
    c = Craft()
    c.kvs[0] = struct.pack("<Q", 1 << 40) + b"general.architecture"
    return c.build()


def _kv_count_too_big() -> bytes:
    c = Craft()
    c.n_kv = 1 << 60
    return c.build()


def _tensor_count_too_big() -> bytes:
    c = Craft()
    c.n_tensors = 1 << 50
    return c.build()


def _dup_key() -> bytes:
    c = Craft()
    c.kvs.append(kv_u32("test.block_count", 3))
    return c.build()


def _dup_tensor() -> bytes:
    c = Craft()
    c.infos[1] = tensor_info("a", (3,), 0, 32)
    return c.build()


def _unknown_type() -> bytes:
    c = Craft()
    c.infos[1] = tensor_info("b", (3,), 4, 32)  # id 4 (Q4_2) was removed from ggml
    return c.build()


def _type_99() -> bytes:
    c = Craft()
    c.infos[1] = tensor_info("b", (3,), 99, 32)
    return c.build()


def _misaligned() -> bytes:
    c = Craft()
    c.infos[1] = tensor_info("b", (3,), 0, 33)
    return c.build()


def _offset_oob() -> bytes:
    c = Craft()
    c.infos[1] = tensor_info("b", (3,), 0, 1 << 20)
    return c.build()


def _overlap() -> bytes:
    c = Craft()
    c.infos[1] = tensor_info("b", (3,), 0, 0)
    return c.build()


def _too_many_dims() -> bytes:
    c = Craft()
    c.infos[0] = tensor_info("a", (1, 1, 1, 1, 8), 0, 0)
    return c.build()


def _zero_dims() -> bytes:
    c = Craft()
    c.infos[0] = tensor_info("a", (), 0, 0)
    return c.build()


def _bad_value_type() -> bytes:
    c = Craft()
    c.kvs.append(s("x") + struct.pack("<I", 13))
    return c.build()


def _nested_array() -> bytes:
    c = Craft()
    c.kvs.append(s("x") + struct.pack("<IIQ", 9, 9, 1))
    return c.build()


def _array_past_end() -> bytes:
    c = Craft()
    c.kvs.append(s("x") + struct.pack("<IIQ", 9, 10, 1 << 40))
    return c.build()


def _bad_alignment() -> bytes:
    c = Craft()
    c.kvs.append(kv_u32("general.alignment", 24))
    return c.build()


def _block_mismatch() -> bytes:
    c = Craft()
    c.infos[1] = tensor_info("b", (3,), 8, 32)  # q8_0 rows must be multiples of 32
    return c.build()


def _bad_bool() -> bytes:
    c = Craft()
    c.kvs.append(s("flag") + struct.pack("<IB", 7, 2))
    return c.build()


# (case, corrupted bytes, a piece the error message must contain)
CORRUPT = [
    ("bad magic", lambda: Craft(magic=b"GGML").build(), 'magic: expected "GGUF", found "GGML"'),
    ("empty file", lambda: b"", "magic"),
    ("bad version", lambda: Craft(version=4).build(), "version: expected 2 or 3, found 4"),
    ("version 1", lambda: Craft(version=1).build(), "found 1"),
    ("truncated header", _truncated_header, "found end of file"),
    ("truncated data", _truncated_data, 'tensor "b" data'),
    ("tensor offset out of bounds", _offset_oob, 'tensor "b" data'),
    ("overflow in dims", _overflow_dims, "overflow"),
    ("dim above 2^63", _huge_dim, "ne[0]: expected below 2^63"),
    ("duplicate key", _dup_key, 'metadata "test.block_count": expected a unique key'),
    ("duplicate tensor", _dup_tensor, 'tensor "a": expected a unique name'),
    ("unknown type (removed id)", _unknown_type, 'tensor "b" type: expected a ggml type id'),
    ("unknown type 99", _type_99, "found 99"),
    ("misaligned offset", _misaligned, 'tensor "b" offset: expected a multiple of the alignment 32, found 33'),
    ("overlapping tensors", _overlap, "overlapping"),
    ("string length past end", _string_past_end, "length: expected at most"),
    ("kv count too big", _kv_count_too_big, "metadata count: expected at most"),
    ("tensor count too big", _tensor_count_too_big, "tensor count: expected at most"),
    ("too many dims", _too_many_dims, "dimension count: expected 1..4, found 5"),
    ("zero dims", _zero_dims, "dimension count: expected 1..4, found 0"),
    ("bad value type", _bad_value_type, "expected a GGUF value type 0..12, found 13"),
    ("nested array", _nested_array, "found array"),
    ("array past end", _array_past_end, "array length: expected at most"),
    ("alignment not power of two", _bad_alignment, "expected a power of two, found 24"),
    ("row not multiple of block", _block_mismatch, "expected a multiple of 32 (block size of q8_0), found 3"),
    ("bool not 0/1", _bad_bool, "expected a bool 0 or 1, found 2"),
]


@pytest.mark.parametrize("case,make,message", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupted_file_gives_clear_error(tmp_path: Path, case: str, make, message: str) -> None:
    """Each hand-corrupted file raises FormatError (a ValueError) naming the broken field."""
    path = write(tmp_path, make())
    with pytest.raises(pyrnn.FormatError) as info:
        pyrnn.GGUFFile(path)
    assert isinstance(info.value, ValueError)
    assert message in str(info.value), str(info.value)
    assert path in str(info.value)  # the message names the file


def test_every_truncation_is_caught(tmp_path: Path) -> None:
    """Cutting a valid file at any byte gives FormatError, never a crash or a silent partial load."""
    data = Craft().build()
    for n in range(len(data) - 20):  # the last 20 bytes are padding after the last tensor
        with pytest.raises(pyrnn.FormatError):
            pyrnn.GGUFFile(write(tmp_path, data[:n]))


def test_random_byte_flips_never_crash(tmp_path: Path) -> None:
    """Flipping random header bytes either still parses or raises FormatError: nothing else."""
    rng = np.random.default_rng(7)
    data = bytearray(Craft().build())
    header_len = len(data) - 64
    for _ in range(400):
        d = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            d[rng.integers(0, header_len)] = rng.integers(0, 256)
        try:
            f = pyrnn.GGUFFile(write(tmp_path, bytes(d)))
            for t in f.tensors:
                f.tensor_bytes(t["name"])
        except pyrnn.FormatError:
            pass


def test_missing_file_and_directory(tmp_path: Path) -> None:
    """A missing path is FileNotFoundError, a directory IsADirectoryError; both name the path."""
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        pyrnn.GGUFFile(str(tmp_path / "nope.gguf"))
    with pytest.raises(IsADirectoryError):
        pyrnn.GGUFFile(str(tmp_path))


def _write_sample(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    tensors = {
        "f32.weight": rng.standard_normal((7, 33)).astype(np.float32),
        "f16.weight": rng.standard_normal((5, 31)).astype(np.float16),
        "vec": rng.standard_normal(1).astype(np.float32),
        "q8.weight": rng.integers(0, 256, size=(3, 2 * 34), dtype=np.uint8),  # 3 rows of 64 q8_0 values
        "cube": rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
    }
    w = GGUFWriter(path)
    w.add_string("general.architecture", "test")
    w.add_uint32("test.block_count", 12)
    w.add_float32("test.eps", 1e-5)
    w.add_bool("test.flag", True)
    w.add_int32("test.neg", -3)
    w.add_uint64("test.big", 2**40)
    w.add_string("test.bytes", b"\xff\xfe not utf-8")
    w.add_array("tokenizer.ggml.tokens", ["a", "bc", b"\x80"], ValueType.STRING)
    w.add_array("test.ints", [1, -2, 3], ValueType.INT32)
    w.add_array("test.floats", [0.5, 1.5], ValueType.FLOAT32)
    w.add_tensor("f32.weight", (7, 33), GGMLType.F32, tensors["f32.weight"])
    w.add_tensor("f16.weight", (5, 31), GGMLType.F16, lambda: tensors["f16.weight"])
    w.add_tensor("vec", (1,), GGMLType.F32, tensors["vec"])
    w.add_tensor("q8.weight", (3, 64), GGMLType.Q8_0, tensors["q8.weight"].tobytes())
    w.add_tensor("cube", (2, 3, 4, 5), GGMLType.F32, tensors["cube"])
    w.write()
    return tensors


def test_round_trip_bit_exact(tmp_path: Path) -> None:
    """What GGUFWriter writes, the C++ reader reads back bit-exactly: values, shapes, bytes."""
    path = tmp_path / "rt.gguf"
    tensors = _write_sample(path)
    f = pyrnn.GGUFFile(str(path))
    assert f.version == 3 and f.alignment == 32
    assert f.value("test.block_count") == 12 and f.value_type("test.block_count") == "uint32"
    assert f.value("test.eps") == np.float32(1e-5)
    assert f.value("test.flag") is True
    assert f.value("test.neg") == -3 and f.value("test.big") == 2**40
    assert f.value("test.bytes") == b"\xff\xfe not utf-8"
    assert f.value("tokenizer.ggml.tokens") == ["a", "bc", b"\x80"]
    assert f.value("test.ints") == [1, -2, 3] and f.value("test.floats") == [0.5, 1.5]
    infos = {t["name"]: t for t in f.tensors}
    assert infos["f32.weight"]["shape"] == (7, 33) and infos["f32.weight"]["ne"] == (33, 7)
    assert infos["cube"]["shape"] == (2, 3, 4, 5)
    assert infos["q8.weight"]["type_name"] == "q8_0" and infos["q8.weight"]["n_bytes"] == 3 * 68
    for name, arr in tensors.items():
        assert bytes(f.tensor_bytes(name)) == arr.tobytes(), name
        assert infos[name]["offset"] % 32 == 0


def test_readable_by_llama_cpp_gguf_package(tmp_path: Path) -> None:
    """llama.cpp's own gguf-py reader accepts our files and sees the same keys and tensors."""
    gguf = pytest.importorskip("gguf", reason="gguf is a [test] dependency; install pyrnn[test]")
    path = tmp_path / "rt.gguf"
    tensors = _write_sample(path)
    r = gguf.GGUFReader(str(path))
    assert r.fields["test.block_count"].parts[-1][0] == 12
    got = {t.name: t for t in r.tensors}
    assert set(got) == set(tensors)
    np.testing.assert_array_equal(np.asarray(got["f32.weight"].data), tensors["f32.weight"])
    np.testing.assert_array_equal(np.asarray(got["cube"].data).reshape(2, 3, 4, 5), tensors["cube"])


def test_interrupted_write_leaves_nothing(tmp_path: Path) -> None:
    """A producer that fails mid-write leaves neither the output nor a temporary file behind."""
    w = GGUFWriter(tmp_path / "out.gguf")
    w.add_string("general.architecture", "test")
    w.add_tensor("a", (4,), GGMLType.F32, np.zeros(4, np.float32))

    def boom() -> np.ndarray:
        raise RuntimeError("converter failed")

    w.add_tensor("b", (4,), GGMLType.F32, boom)
    with pytest.raises(RuntimeError):
        w.write()
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_size(tmp_path: Path) -> None:
    """A tensor whose bytes do not match its shape and type is refused with both sizes named."""
    w = GGUFWriter(tmp_path / "out.gguf")
    w.add_tensor("a", (4,), GGMLType.F32, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="expected 16 bytes .* found 20"):
        w.write()
    assert not (tmp_path / "out.gguf").exists()


@pytest.mark.skipif(not FIXTURES.exists(), reason="llama.cpp interop fixtures live in ../shared (absent here)")
@pytest.mark.parametrize("name", ["rwkv6-tiny-f32", "rwkv7-tiny-q8_0", "mamba-tiny-q8_0", "mamba2-tiny-f32"])
def test_reads_llama_cpp_files(name: str) -> None:
    """Files written by llama.cpp's converter load, with tensor sizes that fill the file exactly."""
    arch = name.split("-")[0]
    f = pyrnn.GGUFFile(str(FIXTURES / arch / f"{name}.gguf"))
    assert f.value("general.architecture") == arch
    end = max(t["offset"] + t["n_bytes"] for t in f.tensors)
    assert f.data_offset + end <= f.file_size < f.data_offset + end + f.alignment
