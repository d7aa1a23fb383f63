"""Safe .pth reader: torch.save checkpoints load exactly without torch; hostile or corrupt files
give one clear PickleSecurityError / CheckpointFormatError and never run code."""

from __future__ import annotations

import collections
import os
import pickle
import struct
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyrnn.converters.torch_pickle import CheckpointFormatError, PickleSecurityError, load_pth

_FIXTURE_ROOTS = [
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "interop",
    Path("/work/shared/fixtures/interop"),
]


def _fixture(rel: str) -> Path:
    for root in _FIXTURE_ROOTS:
        if (root / rel).is_file():
            return root / rel
    return _FIXTURE_ROOTS[0] / rel


RWKV7_PTH = _fixture("rwkv7/source/rwkv7-tiny.pth")
RWKV6_PTH = _fixture("rwkv6/source/rwkv6-tiny.pth")


# ---------------------------------------------------------------------------------------------
# A tiny pickle assembler (protocol 2 opcodes) and zip writer, so most tests need no torch.


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(
    storage_type: str, key: str, numel: int, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> bytes:
    """Pickle ops for torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)."""
    return (
        _global("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + _tuple(_str("storage"), _global("torch", storage_type), _str(key), _str("cpu"), _int(numel))
        + b"Q"
        + _int(offset)
        + _tuple(*map(_int, size))
        + _tuple(*map(_int, stride))
        + b"\x89"
        + _global("collections", "OrderedDict")
        + b")R"
        + b"tR"
    )


def _state(entries: list[tuple[str, bytes]]) -> bytes:
    return b"\x80\x02}(" + b"".join(_str(k) + v for k, v in entries) + b"u."


def _write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _pth(
    path: Path,
    pkl: bytes,
    storages: dict[str, bytes] | None = None,
    prefix: str = "archive",
    byteorder: bytes | None = b"little",
) -> Path:
    members = {f"{prefix}/data.pkl": pkl}
    if byteorder is not None:
        members[f"{prefix}/byteorder"] = byteorder
    for key, data in (storages or {}).items():
        members[f"{prefix}/data/{key}"] = data
    return _write_zip(path, members)


def _rewrite(src: Path, dst: Path, change: Any, compression: int = zipfile.ZIP_STORED) -> Path:
    """Copy a zip, passing each (name, data) through change(); None drops the member."""
    with zipfile.ZipFile(src) as zin:
        members = {}
        for name in zin.namelist():
            out = change(name, zin.read(name))
            if out is not None:
                members[out[0]] = out[1]
    return _write_zip(dst, members, compression)


# ---------------------------------------------------------------------------------------------
# torch-free: crafted checkpoints.


def test_crafted_f32_strided_views(tmp_path: Path) -> None:
    """Offsets, strides and a shared storage are honoured, as zero-copy read-only views."""
    base = np.arange(24, dtype="<f4")
    pkl = _state(
        [
            ("whole", _tensor("FloatStorage", "0", 24, 0, (4, 6), (6, 1))),
            ("t", _tensor("FloatStorage", "0", 24, 0, (6, 4), (1, 6))),
            ("tail", _tensor("FloatStorage", "0", 24, 20, (4,), (1,))),
            ("every5", _tensor("FloatStorage", "0", 24, 1, (5,), (5,))),
            ("bcast", _tensor("FloatStorage", "0", 24, 3, (2, 3), (0, 1))),
        ]
    )
    sd = load_pth(_pth(tmp_path / "m.pth", pkl, {"0": base.tobytes()}))
    assert list(sd) == ["whole", "t", "tail", "every5", "bcast"]
    assert np.array_equal(sd["whole"], base.reshape(4, 6))
    assert np.array_equal(sd["t"], base.reshape(4, 6).T)
    assert np.array_equal(sd["tail"], base[20:])
    assert np.array_equal(sd["every5"], base[1::5])
    assert np.array_equal(sd["bcast"], np.broadcast_to(base[3:6], (2, 3)))
    assert all(a.dtype == np.float32 and not a.flags.writeable for a in sd.values())
    assert np.shares_memory(sd["whole"], sd["tail"])


def test_crafted_bf16_all_bit_patterns_exact(tmp_path: Path) -> None:
    """Every one of the 65536 bf16 bit patterns widens to float32 bits << 16 exactly."""
    bits = np.arange(65536, dtype="<u2")
    pkl = _state([("b", _tensor("BFloat16Storage", "0", 65536, 0, (256, 256), (256, 1)))])
    sd = load_pth(_pth(tmp_path / "m.pth", pkl, {"0": bits.tobytes()}))
    assert sd["b"].dtype == np.float32 and sd["b"].shape == (256, 256)
    assert np.array_equal(sd["b"].view(np.uint32).ravel(), bits.astype(np.uint32) << 16)


def test_crafted_big_endian_is_byteswapped(tmp_path: Path) -> None:
    """A byteorder record of 'big' is honoured: values come back right, in native order."""
    f = np.array([1.5, -2.25, 3e30], dtype=">f4")
    i = np.array([1, -2, 2**40], dtype=">i8")
    bf = np.array([0x3FC0, 0xC000], dtype=">u2")  # 1.5, -2.0
    pkl = _state(
        [
            ("f", _tensor("FloatStorage", "0", 3, 0, (3,), (1,))),
            ("i", _tensor("LongStorage", "1", 3, 0, (3,), (1,))),
            ("bf", _tensor("BFloat16Storage", "2", 2, 0, (2,), (1,))),
        ]
    )
    path = _pth(tmp_path / "m.pth", pkl, {"0": f.tobytes(), "1": i.tobytes(), "2": bf.tobytes()}, byteorder=b"big")
    sd = load_pth(path)
    assert np.array_equal(sd["f"], [1.5, -2.25, np.float32(3e30)]) and sd["f"].dtype.isnative
    assert np.array_equal(sd["i"], [1, -2, 2**40]) and sd["i"].dtype.isnative
    assert np.array_equal(sd["bf"], [1.5, -2.0]) and sd["bf"].dtype == np.float32


def test_crafted_archive_prefix_and_compressed_members(tmp_path: Path) -> None:
    """Any top folder name works, and deflate-compressed members load through the copy path."""
    data = np.arange(10, dtype="<i4")
    pkl = _state([("x", _tensor("IntStorage", "0", 10, 2, (2, 4), (4, 1)))])
    members = {"some.weird-name/data.pkl": pkl, "some.weird-name/data/0": data.tobytes()}
    path = _write_zip(tmp_path / "m.pth", members, zipfile.ZIP_DEFLATED)
    sd = load_pth(path)
    assert np.array_equal(sd["x"], data[2:10].reshape(2, 4)) and sd["x"].dtype == np.int32


def test_crafted_nested_state_dict_is_unwrapped(tmp_path: Path) -> None:
    """{'state_dict': {...tensors}, 'epoch': 3} returns the inner dict of tensors."""
    inner = b"}(" + _str("w") + _tensor("FloatStorage", "0", 2, 0, (2,), (1,)) + b"u"
    pkl = b"\x80\x02}(" + _str("state_dict") + inner + _str("epoch") + _int(3) + b"u."
    sd = load_pth(_pth(tmp_path / "m.pth", pkl, {"0": np.ones(2, "<f4").tobytes()}))
    assert list(sd) == ["w"] and np.array_equal(sd["w"], [1.0, 1.0])


def test_crafted_two_nested_dicts_are_ambiguous(tmp_path: Path) -> None:
    """A top level with two dicts of tensors is refused rather than guessed."""
    inner = b"}(" + _str("w") + _tensor("FloatStorage", "0", 2, 0, (2,), (1,)) + b"u"
    pkl = b"\x80\x02}(" + _str("a") + inner + _str("b") + inner + b"u."
    with pytest.raises(CheckpointFormatError, match="exactly one"):
        load_pth(_pth(tmp_path / "m.pth", pkl, {"0": np.ones(2, "<f4").tobytes()}))


def test_crafted_top_level_list_is_refused(tmp_path: Path) -> None:
    """A pickle holding a list (not a dict of tensors) is a CheckpointFormatError."""
    pkl = b"\x80\x02]" + _tensor("FloatStorage", "0", 2, 0, (2,), (1,)) + b"a."
    with pytest.raises(CheckpointFormatError, match="found a list"):
        load_pth(_pth(tmp_path / "m.pth", pkl, {"0": np.ones(2, "<f4").tobytes()}))


# ---------------------------------------------------------------------------------------------
# Hostile pickles: each refused with PickleSecurityError, and no code runs.


class _Payload:
    def __init__(self, fn: Any, args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


def _hostile_cases(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (data.pkl bytes, the module.global the error must name)."""
    cmd = f"touch {marker}"
    system = f"{os.system.__module__}.system"  # posix.system (nt.system on Windows)
    return {
        "os.system reduce p2": (pickle.dumps({"w": _Payload(os.system, (cmd,))}, protocol=2), system),
        "os.system reduce p4": (pickle.dumps(_Payload(os.system, (cmd,)), protocol=4), system),
        "os.system by hand": (b"cos\nsystem\n(V" + cmd.encode() + b"\ntR.", "os.system"),
        "os.system via INST": (b"(V" + cmd.encode() + b"\nios\nsystem\n.", "os.system"),
        "builtins.eval": (
            pickle.dumps(_Payload(eval, (f"__import__('os').system('{cmd}')",)), protocol=4),
            "builtins.eval",
        ),
        "__builtin__.eval p2": (
            pickle.dumps(_Payload(eval, ("1",)), protocol=2),
            "__builtin__.eval",
        ),  # protocol 2 writes Python 2 names
        "subprocess.Popen": (
            pickle.dumps(_Payload(subprocess.Popen, (["touch", str(marker)],)), protocol=4),
            "subprocess.Popen",
        ),
        "builtins.getattr trick": (
            b"\x80\x02cbuiltins\ngetattr\n" + _global("collections", "OrderedDict") + _str("fromkeys") + b"\x86R.",
            "builtins.getattr",
        ),
        "collections.Counter": (pickle.dumps({"w": collections.Counter("ab")}, protocol=2), "collections.Counter"),
        "numpy reconstruct": (pickle.dumps({"w": np.zeros(3)}, protocol=2), "multiarray"),
    }


@pytest.mark.parametrize("case", list(_hostile_cases(Path("M"))))
def test_hostile_pickle_is_refused(tmp_path: Path, case: str) -> None:
    """Each code-running or non-tensor global is refused by name, and the payload never runs."""
    marker = tmp_path / "MARKER"
    pkl, refused = _hostile_cases(marker)[case]
    path = _pth(tmp_path / "evil.pth", pkl)
    with pytest.raises(PickleSecurityError, match="refused global") as info:
        load_pth(path)
    assert refused in str(info.value)
    assert not marker.exists()


def test_hostile_payload_after_valid_tensor_is_refused(tmp_path: Path) -> None:
    """A payload hidden behind a genuine tensor entry is still refused and never runs."""
    marker = tmp_path / "MARKER"
    payload = pickle.dumps(_Payload(os.system, (f"touch {marker}",)), protocol=2)[2:-1]
    pkl = _state([("w", _tensor("FloatStorage", "0", 2, 0, (2,), (1,))), ("evil", payload)])
    with pytest.raises(PickleSecurityError, match="system"):
        load_pth(_pth(tmp_path / "evil.pth", pkl, {"0": np.ones(2, "<f4").tobytes()}))
    assert not marker.exists()


def test_hostile_extension_opcode_is_refused(tmp_path: Path) -> None:
    """EXT1/2/4 (copyreg extension registry, which bypasses find_class) are refused."""
    with pytest.raises(PickleSecurityError, match="EXT1"):
        load_pth(_pth(tmp_path / "evil.pth", b"\x80\x02\x82\x01)R."))


def test_hostile_call_of_storage_class_is_refused(tmp_path: Path) -> None:
    """REDUCE on an allowed non-callable global (a storage class or dtype) is refused."""
    for target in (_global("torch", "FloatStorage"), _global("torch", "float32")):
        with pytest.raises(PickleSecurityError, match="refused a call"):
            load_pth(_pth(tmp_path / "evil.pth", b"\x80\x02" + target + b")R."))


def test_hostile_build_cannot_mutate_stand_ins(tmp_path: Path) -> None:
    """BUILD on a stand-in (to overwrite a rebuild function's state) fails cleanly."""
    pkl = (
        b"\x80\x02"
        + _global("torch._utils", "_rebuild_tensor_v2")
        + b"N}"
        + _str("fn")
        + _global("collections", "OrderedDict")
        + b"s\x86b."
    )
    with pytest.raises(CheckpointFormatError, match="read-only"):
        load_pth(_pth(tmp_path / "evil.pth", pkl))


# ---------------------------------------------------------------------------------------------
# Corrupt files: one CheckpointFormatError naming what was expected and found.


def _good(tmp_path: Path) -> Path:
    pkl = _state([("w", _tensor("FloatStorage", "0", 12, 0, (3, 4), (4, 1)))])
    return _pth(tmp_path / "good.pth", pkl, {"0": np.arange(12, dtype="<f4").tobytes()})


def test_corrupt_baseline_loads(tmp_path: Path) -> None:
    """The crafted file used by the corruption tests loads, so each corruption is what breaks it."""
    assert np.array_equal(load_pth(_good(tmp_path))["w"], np.arange(12).reshape(3, 4))


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    """A path that does not exist raises FileNotFoundError naming the path."""
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_pth(missing)


def test_truncated_zip(tmp_path: Path) -> None:
    """A zip cut in half is reported as truncated."""
    data = _good(tmp_path).read_bytes()
    (tmp_path / "t.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match="truncated"):
        load_pth(tmp_path / "t.pth")


def test_missing_storage_member(tmp_path: Path) -> None:
    """A storage record referenced by data.pkl but absent from the zip is named."""
    path = _rewrite(_good(tmp_path), tmp_path / "m.pth", lambda n, d: None if n.endswith("data/0") else (n, d))
    with pytest.raises(CheckpointFormatError, match="'archive/data/0'.*missing"):
        load_pth(path)


def test_short_storage_member(tmp_path: Path) -> None:
    """A storage record shorter than numel * itemsize says the bytes expected and found."""
    path = _rewrite(_good(tmp_path), tmp_path / "m.pth", lambda n, d: (n, d[:20]) if n.endswith("data/0") else (n, d))
    with pytest.raises(CheckpointFormatError, match="48 bytes; found 20 bytes"):
        load_pth(path)


def test_view_beyond_storage(tmp_path: Path) -> None:
    """An offset/stride view reaching past its storage is refused, not read out of bounds."""
    pkl = _state([("w", _tensor("FloatStorage", "0", 4, 1, (2, 2), (3, 1)))])
    path = _pth(tmp_path / "m.pth", pkl, {"0": np.arange(4, dtype="<f4").tobytes()})
    with pytest.raises(CheckpointFormatError, match="reaches element 5 .* holds only 4"):
        load_pth(path)


def test_no_data_pkl(tmp_path: Path) -> None:
    """A zip without <archive>/data.pkl is not a torch checkpoint."""
    path = _write_zip(tmp_path / "m.pth", {"archive/readme.txt": b"hi"})
    with pytest.raises(CheckpointFormatError, match="data.pkl"):
        load_pth(path)


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"hello, this is a text file\n", "expected a torch.save zip archive"),
        (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "expected a torch.save zip archive"),
        (b"", "empty file"),
        (pickle.dumps({"w": 1}, protocol=2), "bare pickle"),
    ],
    ids=["text", "garbage", "empty", "bare-pickle"],
)
def test_not_a_zip(tmp_path: Path, content: bytes, expect: str) -> None:
    """Plain text, random bytes, an empty file and a bare pickle are each one clear error."""
    (tmp_path / "m.pth").write_bytes(content)
    with pytest.raises(CheckpointFormatError, match=expect):
        load_pth(tmp_path / "m.pth")


def test_malformed_pickle(tmp_path: Path) -> None:
    """A data.pkl that is not a pickle stream is a CheckpointFormatError."""
    with pytest.raises(CheckpointFormatError, match="malformed"):
        load_pth(_pth(tmp_path / "m.pth", b"\x80\x02}(X\xff\xff\xff\x7fab"))


def test_bad_persistent_id(tmp_path: Path) -> None:
    """A persistent id that is not a storage tuple is a CheckpointFormatError."""
    with pytest.raises(CheckpointFormatError, match="persistent id"):
        load_pth(_pth(tmp_path / "m.pth", b"\x80\x02" + _str("boom") + b"Q."))


def test_bad_byteorder_record(tmp_path: Path) -> None:
    """A byteorder record other than little/big is a CheckpointFormatError."""
    pkl = _state([("w", _tensor("FloatStorage", "0", 1, 0, (), ()))])
    path = _pth(tmp_path / "m.pth", pkl, {"0": b"\0" * 4}, byteorder=b"middle")
    with pytest.raises(CheckpointFormatError, match="'little' or 'big'"):
        load_pth(path)


def test_fuzzed_files_fail_cleanly(tmp_path: Path) -> None:
    """Hundreds of mutated files either load or raise one of the two errors, never anything else."""
    good = _good(tmp_path).read_bytes()
    with zipfile.ZipFile(tmp_path / "good.pth") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    rng = np.random.default_rng(7)
    for i in range(400):
        if i % 2:  # mutate the pickle only, keeping the zip valid
            pkl = bytearray(members["archive/data.pkl"])
            for _ in range(int(rng.integers(1, 4))):
                pkl[int(rng.integers(len(pkl)))] = int(rng.integers(256))
            path = _write_zip(tmp_path / "f.pth", {**members, "archive/data.pkl": bytes(pkl)})
        else:  # flip bytes anywhere in the file, or cut it short
            data = bytearray(good)
            if i % 4:
                data = data[: int(rng.integers(len(data)))]
            else:
                for _ in range(int(rng.integers(1, 4))):
                    data[int(rng.integers(len(data)))] = int(rng.integers(256))
            path = tmp_path / "f.pth"
            path.write_bytes(bytes(data))
        try:
            load_pth(path)
        except (CheckpointFormatError, PickleSecurityError):
            pass


# ---------------------------------------------------------------------------------------------
# Real torch.save output (torch is a test dependency; these skip where it is absent).


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch", reason="these cases compare with files written by torch.save")


def _expected(t: Any) -> np.ndarray[Any, Any]:
    t = t.detach().resolve_neg().resolve_conj()
    return t.float().numpy() if str(t.dtype) == "torch.bfloat16" else t.numpy()


def _assert_same(loaded: dict[str, np.ndarray[Any, Any]], ref: dict[str, Any]) -> None:
    assert list(loaded) == list(ref)
    for name, t in ref.items():
        want = _expected(t)
        got = loaded[name]
        assert got.dtype == want.dtype, name
        assert got.shape == want.shape, name
        assert np.array_equal(got, want), name


def test_torch_dtypes_roundtrip(tmp_path: Path, torch: Any) -> None:
    """f32/f16/bf16/f64/int8-64/uint8/uint16/bool/complex tensors match torch exactly."""
    g = torch.Generator().manual_seed(0)
    sd = {
        "f32": torch.randn(7, 33, generator=g),
        "f16": torch.randn(5, 3, generator=g).half(),
        "bf16": torch.randn(7, 33, generator=g).bfloat16(),
        "f64": torch.randn(4, generator=g).double(),
        "i64": torch.tensor([-(2**62), -1, 0, 1, 2**62], dtype=torch.int64),
        "i32": torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-(2**15), 2**15 - 1], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "u16": torch.tensor([0, 65535], dtype=torch.int32).to(torch.uint16),
        "bool": torch.tensor([True, False, True]),
        "c64": torch.randn(3, generator=g) + 1j * torch.randn(3, generator=g),
    }
    torch.save(sd, tmp_path / "m.pth")
    _assert_same(load_pth(tmp_path / "m.pth"), sd)
    assert load_pth(tmp_path / "m.pth")["bf16"].dtype == np.float32


def test_torch_shapes_and_views(tmp_path: Path, torch: Any) -> None:
    """0-d, empty, a transposed view, slices sharing one storage and odd shapes match torch."""
    base = torch.arange(7 * 33, dtype=torch.float32).reshape(7, 33)
    flat = torch.arange(100, dtype=torch.float32)
    sd = {
        "scalar": torch.tensor(3.5),
        "empty": torch.empty(0, 5),
        "odd": base,
        "transposed": base.t(),
        "a": flat[10:20],
        "b": flat[50:].view(5, 10),
        "c": flat[3:90:7],
        "col": base[:, 5],
    }
    torch.save(sd, tmp_path / "m.pth")
    loaded = load_pth(tmp_path / "m.pth")
    _assert_same(loaded, sd)
    with zipfile.ZipFile(tmp_path / "m.pth") as zf:
        assert sum("/data/" in n for n in zf.namelist()) == 4  # scalar, empty, base, flat
    assert loaded["transposed"].strides == (4, 132)
    assert np.shares_memory(loaded["odd"], loaded["transposed"])
    assert loaded["scalar"].shape == () and loaded["empty"].shape == (0, 5)


def test_torch_ordered_dict_parameters_and_views_bits(tmp_path: Path, torch: Any) -> None:
    """A module's OrderedDict, Parameters, tensors with attributes and neg/conj views load."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(7, 33), torch.nn.LayerNorm(33))
    sd = model.state_dict()
    assert isinstance(sd, collections.OrderedDict)
    tagged = torch.ones(3)
    tagged.note = "hi"
    extra = {
        "param": torch.nn.Parameter(torch.randn(2, 3)),
        "tagged": tagged,
        "neg": torch._neg_view(torch.arange(4.0)),
        "conj": torch.tensor([1 + 2j, 3 - 4j]).conj(),
    }
    torch.save(sd, tmp_path / "m.pth")
    _assert_same(load_pth(tmp_path / "m.pth"), dict(sd))
    torch.save(extra, tmp_path / "x.pth")
    _assert_same(load_pth(tmp_path / "x.pth"), extra)


def test_torch_checkpoint_dict_is_unwrapped(tmp_path: Path, torch: Any) -> None:
    """torch.save({'model': state_dict, 'step': 10}) returns the inner state dict."""
    sd = {"w": torch.randn(3, 4), "b": torch.zeros(4)}
    torch.save({"model": sd, "step": 10, "note": "x"}, tmp_path / "m.pth")
    _assert_same(load_pth(tmp_path / "m.pth"), sd)


def test_torch_big_endian_file(tmp_path: Path, torch: Any) -> None:
    """A file rewritten as big-endian loads the same values torch.load reads from it."""
    sd = {"f": torch.randn(3, 5), "i": torch.arange(-4, 4), "h": torch.randn(6).bfloat16()}
    torch.save(sd, tmp_path / "m.pth")
    item = {"0": ">f4", "1": ">i8", "2": ">u2"}

    def swap(name: str, data: bytes) -> tuple[str, bytes]:
        if name.endswith("/byteorder"):
            return name, b"big"
        key = name.rsplit("/data/", 1)[-1] if "/data/" in name else None
        if key in item:
            return name, np.frombuffer(data, item[key].replace(">", "<")).astype(item[key]).tobytes()
        return name, data

    path = _rewrite(tmp_path / "m.pth", tmp_path / "be.pth", swap)
    _assert_same(load_pth(path), torch.load(path, weights_only=True))
    _assert_same(load_pth(path), sd)


def test_torch_legacy_format_is_refused(tmp_path: Path, torch: Any) -> None:
    """The pre-1.6 non-zip torch.save format is refused with a 'legacy' message."""
    torch.save({"w": torch.ones(2)}, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointFormatError, match="legacy"):
        load_pth(tmp_path / "old.pth")


def test_torch_float8_is_refused_clearly(tmp_path: Path, torch: Any) -> None:
    """An unsupported dtype (float8) is a CheckpointFormatError naming the dtype."""
    torch.save({"w": torch.ones(2).to(torch.float8_e4m3fn)}, tmp_path / "m.pth")
    with pytest.raises(CheckpointFormatError, match="float8_e4m3fn"):
        load_pth(tmp_path / "m.pth")


def test_torch_file_with_corrupt_member_size(tmp_path: Path, torch: Any) -> None:
    """A real torch.save file whose storage record lost bytes is refused, naming the sizes."""
    torch.save({"w": torch.randn(7, 33)}, tmp_path / "m.pth")
    path = _rewrite(
        tmp_path / "m.pth", tmp_path / "bad.pth", lambda n, d: (n, d[:-4]) if n.endswith("/data/0") else (n, d)
    )
    with pytest.raises(CheckpointFormatError, match="924 bytes; found 920"):
        load_pth(path)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            RWKV7_PTH,
            id="rwkv7",
            marks=pytest.mark.skipif(not RWKV7_PTH.is_file(), reason=f"fixture {RWKV7_PTH} is absent"),
        ),
        pytest.param(
            RWKV6_PTH,
            id="rwkv6",
            marks=pytest.mark.skipif(not RWKV6_PTH.is_file(), reason=f"fixture {RWKV6_PTH} is absent"),
        ),
    ],
)
def test_fixture_matches_torch_load(path: Path, torch: Any) -> None:
    """The shared bf16 RWKV fixtures load exactly as torch.load(weights_only=True).float()."""
    ref = torch.load(path, weights_only=True, map_location="cpu")
    loaded = load_pth(path)
    assert list(loaded) == list(ref)
    for name, t in ref.items():
        assert loaded[name].dtype == np.float32, name
        assert np.array_equal(loaded[name], t.float().numpy()), name


@pytest.mark.parametrize("case", ["os.system reduce p2", "builtins.eval", "subprocess.Popen", "collections.Counter"])
def test_hostile_pickle_refused_by_convert(tmp_path: Path, case: str) -> None:
    """`pyrnn convert` on a hostile .pth (code-running or non-tensor global) refuses it by name, runs
    nothing and writes no output file."""
    from pyrnn.converters.convert import convert

    marker = tmp_path / "MARKER"
    pkl, refused = _hostile_cases(marker)[case]
    src = _pth(tmp_path / "evil.pth", pkl)
    with pytest.raises(PickleSecurityError, match="refused global") as info:
        convert(src, tmp_path / "out.gguf", out_type="f32")
    assert refused in str(info.value)
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pth"]
