"""Read PyTorch ``.pth`` checkpoints (the ``torch.save`` zip format) without PyTorch.

``load_pth(path)`` returns the checkpoint's state dict as ``{name: numpy.ndarray}``. It needs only
NumPy and it never executes code from the pickle: ``data.pkl`` is read by a restricted unpickler
whose ``find_class`` hands out harmless stand-ins for the handful of globals a tensor state dict
uses, and refuses every other global with :class:`PickleSecurityError`.

What is accepted
----------------
* The zip container written by ``torch.save`` since PyTorch 1.6: ``<archive>/data.pkl`` (the
  pickle), ``<archive>/data/<key>`` (one record per storage), optional ``<archive>/byteorder``.
  ``<archive>`` is whatever top-level folder the file uses (torch names it after the file).
* Globals (nothing else): ``collections.OrderedDict``; ``torch._utils._rebuild_tensor``,
  ``_rebuild_tensor_v2``, ``_rebuild_tensor_v3``, ``_rebuild_parameter``,
  ``_rebuild_parameter_with_state``; ``torch._tensor._rebuild_from_type_v2`` (a tensor that carried
  Python attributes: the attributes are dropped) with ``torch.Tensor`` / ``torch.nn.Parameter`` as
  its type; the legacy storage classes ``torch.FloatStorage``, ``DoubleStorage``, ``HalfStorage``,
  ``BFloat16Storage``, ``LongStorage``, ``IntStorage``, ``ShortStorage``, ``CharStorage``,
  ``ByteStorage``, ``BoolStorage``, ``ComplexFloatStorage``, ``ComplexDoubleStorage``;
  ``torch.storage.UntypedStorage``; and ``torch.<dtype>`` objects.
* Element types: float32/float64/float16/int8/16/32/64/uint8/16/32/64/bool/complex64/complex128
  map to the same NumPy dtype. bfloat16 is widened EXACTLY to float32 (the bf16 bits shifted left
  by 16). float8/float4/bits*/complex32 tensors are refused with :class:`CheckpointFormatError`.
* Storage offsets, strides (non-contiguous views such as a saved transpose, stride-0 expands),
  several tensors sharing one storage, and the ``neg``/``conj`` view bits are honoured.
* Byte order: read from the ``byteorder`` record ("little" or "big"; little when the record is
  absent, as in files from older PyTorch releases). Data in a byte order other than this machine's
  is byte-swapped into native order.

What comes back
---------------
Arrays are read-only. For storage records stored uncompressed (``torch.save`` never compresses)
the arrays are zero-copy views into a read-only memory map of the file, so tensors that share a
storage share memory; the map lives as long as any array does. Compressed records, bfloat16 data,
byte-swapped data and ``neg``/``conj`` views are converted once per storage into a new array.
Stored records are not CRC-checked (that would read the whole file); compressed ones are.

The pickled top-level object must be a dict. If every value is a tensor it is the state dict. If
instead it holds no tensors itself but exactly one non-empty dict whose values are all tensors
(``{"state_dict": {...}, "epoch": 3}``, ``{"model": {...}}``), that inner dict is returned.
Anything else raises :class:`CheckpointFormatError`. Keys must be strings.

What is refused
---------------
* Any other global (``os.system``, ``posix.system``, ``builtins.eval``/``getattr``,
  ``subprocess.*``, ``numpy.*``, ``collections.Counter``, ...), and the EXT1/EXT2/EXT4 opcodes
  (which look up globals through ``copyreg``'s extension cache, around ``find_class``):
  :class:`PickleSecurityError`, naming the refused ``module.name``. Calling a storage class or
  dtype stand-in is refused the same way.
* Not a zip archive, the legacy pre-1.6 (non-zip) or tar ``torch.save`` formats, a TorchScript
  archive, a truncated or corrupt zip, no ``data.pkl``, a malformed pickle, an unexpected
  persistent id, a missing storage record or one shorter than ``numel * itemsize``, a view whose
  offset and strides reach past its storage: :class:`CheckpointFormatError`, whose message says
  what was expected and what was found. A missing file raises ``FileNotFoundError``.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import pickletools
import struct
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["CheckpointFormatError", "PickleSecurityError", "load_pth"]


class PickleSecurityError(ValueError):
    """The checkpoint's pickle references something other than plain tensor data."""


class CheckpointFormatError(ValueError):
    """The file is not a readable ``torch.save`` checkpoint (wrong format, truncated, corrupt)."""


# ---------------------------------------------------------------------------------------------
# Stand-ins handed to the pickle. They are immutable (``__slots__`` and no ``__setattr__``), so the
# pickle's BUILD opcode cannot alter them, and they expose nothing a pickle could exploit.


class _Frozen:
    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")


class _DType(_Frozen):
    """A torch dtype: the NumPy dtype of its stored elements (little-endian), or None."""

    __slots__ = ("name", "stored", "bf16")
    name: str
    stored: np.dtype[Any] | None
    bf16: bool

    def __init__(self, name: str, stored: str | None, bf16: bool = False) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "stored", None if stored is None else np.dtype(stored))
        object.__setattr__(self, "bf16", bf16)

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise PickleSecurityError(f"refused a call of torch.{self.name}: a dtype is not callable")

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _StorageType(_Frozen):
    """A storage class (``torch.FloatStorage``, ``torch.storage.UntypedStorage``...)."""

    __slots__ = ("qualname", "dtype")
    qualname: str
    dtype: _DType

    def __init__(self, qualname: str, dtype: _DType) -> None:
        object.__setattr__(self, "qualname", qualname)
        object.__setattr__(self, "dtype", dtype)

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise PickleSecurityError(f"refused a call of {self.qualname}: storages come only from persistent ids")

    def __repr__(self) -> str:
        return self.qualname


class _TypeMarker(_Frozen):
    """``torch.Tensor`` / ``torch.nn.Parameter``, only as the type argument of a rebuild."""

    __slots__ = ("qualname",)
    qualname: str

    def __init__(self, qualname: str) -> None:
        object.__setattr__(self, "qualname", qualname)

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise PickleSecurityError(f"refused a call of {self.qualname}")

    def __repr__(self) -> str:
        return self.qualname


class _Storage(_Frozen):
    """One storage record: its raw bytes and the dtype its persistent id declared."""

    __slots__ = ("key", "dtype", "raw")
    key: str
    dtype: _DType
    raw: np.ndarray[Any, np.dtype[np.uint8]]

    def __init__(self, key: str, dtype: _DType, raw: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "raw", raw)


class _Tensor(_Frozen):
    """A rebuilt tensor; unwrapped to its array once unpickling is over."""

    __slots__ = ("array",)
    array: np.ndarray[Any, Any]

    def __init__(self, array: np.ndarray[Any, Any]) -> None:
        object.__setattr__(self, "array", array)


class _Callable(_Frozen):
    """An allowed callable: a name (for messages) and the function it runs."""

    __slots__ = ("qualname", "fn")
    qualname: str
    fn: Callable[..., object]

    def __init__(self, qualname: str, fn: Callable[..., object]) -> None:
        object.__setattr__(self, "qualname", qualname)
        object.__setattr__(self, "fn", fn)

    def __call__(self, *args: object) -> object:
        return self.fn(*args)

    def __repr__(self) -> str:
        return self.qualname


# torch dtype name -> NumPy dtype of the stored elements (None: known to torch, not supported here)
_DTYPE_TABLE: dict[str, str | None] = {
    "float32": "<f4",
    "float64": "<f8",
    "float16": "<f2",
    "bfloat16": "<u2",  # widened to float32 on load
    "int64": "<i8",
    "int32": "<i4",
    "int16": "<i2",
    "int8": "i1",
    "uint8": "u1",
    "uint16": "<u2",
    "uint32": "<u4",
    "uint64": "<u8",
    "bool": "?",
    "complex64": "<c8",
    "complex128": "<c16",
    "complex32": None,
    "float8_e5m2": None,
    "float8_e4m3fn": None,
    "float8_e5m2fnuz": None,
    "float8_e4m3fnuz": None,
    "float8_e8m0fnu": None,
    "float4_e2m1fn_x2": None,
    "bits8": None,
    "bits16": None,
    "bits1x8": None,
    "bits2x4": None,
    "bits4x2": None,
    "qint8": None,
    "quint8": None,
    "qint32": None,
    "quint4x2": None,
    "quint2x4": None,
}
_DTYPE_ALIASES = {
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "cfloat": "complex64",
    "cdouble": "complex128",
}
_DTYPES: dict[str, _DType] = {
    name: _DType(name, stored, bf16=(name == "bfloat16")) for name, stored in _DTYPE_TABLE.items()
}
for _alias, _target in _DTYPE_ALIASES.items():
    _DTYPES[_alias] = _DTYPES[_target]

_LEGACY_STORAGES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}
_STORAGE_TYPES: dict[tuple[str, str], _StorageType] = {
    ("torch", name): _StorageType(f"torch.{name}", _DTYPES[dt]) for name, dt in _LEGACY_STORAGES.items()
}
for _module in ("torch.storage", "torch"):
    _STORAGE_TYPES[(_module, "UntypedStorage")] = _StorageType(f"{_module}.UntypedStorage", _DTYPES["uint8"])

_TENSOR_TYPE = _TypeMarker("torch.Tensor")
_PARAMETER_TYPE = _TypeMarker("torch.nn.parameter.Parameter")

# Opcodes that resolve a global without going through find_class (copyreg extension cache).
_FORBIDDEN_OPCODES = frozenset({"EXT1", "EXT2", "EXT4"})

# The first bytes of a pre-1.6 torch.save stream: protocol 2, then the pickled magic number.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")

_NATIVE_ORDER = sys.byteorder  # "little" or "big"


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: object, limit: int = 120) -> str:
    return _clip(repr(value), limit)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------
# The restricted unpickler.


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, reader: _Reader) -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self._reader = reader

    def find_class(self, module: str, name: str) -> Any:
        found = self._reader.allowed.get((module, name))
        if found is None:
            raise PickleSecurityError(
                f"{self._reader.path}: refused global {_clip(f'{module}.{name}', 160)}: "
                "a checkpoint may only reference the globals that "
                "rebuild tensors (torch._utils._rebuild_tensor_v2, torch.*Storage, torch dtypes, "
                "collections.OrderedDict); anything else could run code when unpickled"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        return self._reader.persistent_load(pid)


class _Reader:
    """State for one load: the zip, the mapped file, the storages seen so far."""

    def __init__(self, path: str, zf: zipfile.ZipFile, buf: mmap.mmap | bytes) -> None:
        self.path = path
        self.zf = zf
        self.buf = buf
        self.prefix = self._find_prefix()
        self.file_order = self._read_byteorder()
        self.storages: dict[str, _Storage] = {}
        self.typed: dict[tuple[str, str, bool, bool], np.ndarray[Any, Any]] = {}
        rebuilders = {
            "_rebuild_tensor": self._rebuild_tensor,
            "_rebuild_tensor_v2": self._rebuild_tensor_v2,
            "_rebuild_tensor_v3": self._rebuild_tensor_v3,
            "_rebuild_parameter": self._rebuild_parameter,
            "_rebuild_parameter_with_state": self._rebuild_parameter_with_state,
        }
        self.tensor_rebuilders: dict[tuple[str, str], _Callable] = {
            ("torch._utils", name): _Callable(f"torch._utils.{name}", fn) for name, fn in rebuilders.items()
        }
        from_type = _Callable("torch._tensor._rebuild_from_type_v2", self._rebuild_from_type_v2)
        self.allowed: dict[tuple[str, str], object] = {
            ("collections", "OrderedDict"): _Callable("collections.OrderedDict", _ordered_dict),
            ("torch._tensor", "_rebuild_from_type_v2"): from_type,
            ("torch.tensor", "_rebuild_from_type_v2"): from_type,
            ("torch", "Tensor"): _TENSOR_TYPE,
            ("torch._tensor", "Tensor"): _TENSOR_TYPE,
            ("torch.nn.parameter", "Parameter"): _PARAMETER_TYPE,
            **self.tensor_rebuilders,
            **_STORAGE_TYPES,
        }
        for name, dtype in _DTYPES.items():
            self.allowed[("torch", name)] = dtype

    # -- the container ------------------------------------------------------------------------

    def _find_prefix(self) -> str:
        names = self.zf.namelist()
        candidates = [n[: -len("/data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            first_top = names[0].split("/", 1)[0]
            if first_top in candidates:  # what torch itself does: the first record's folder
                return first_top
            raise CheckpointFormatError(
                f"{self.path}: expected one '<archive>/data.pkl' record, found "
                f"{len(candidates)}: {', '.join(c + '/data.pkl' for c in candidates[:5])}"
            )
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            what = "a TorchScript archive (torch.jit.save), which is not a state dict"
        else:
            what = f"{len(names)} records: {shown or 'none'}"
        raise CheckpointFormatError(
            f"{self.path}: expected a torch.save zip archive with an '<archive>/data.pkl' record; found {what}"
        )

    def read_member(self, name: str) -> bytes:
        try:
            return self.zf.read(name)
        except (PickleSecurityError, CheckpointFormatError):
            raise
        except MemoryError:
            raise
        except Exception as exc:
            raise CheckpointFormatError(
                f"{self.path}: record '{name}' could not be read: {type(exc).__name__}: {exc}"
            ) from exc

    def _read_byteorder(self) -> str:
        name = f"{self.prefix}/byteorder"
        if name not in self.zf.namelist():
            return "little"
        raw = self.read_member(name)
        order = raw.decode("ascii", "replace").strip()
        if order not in ("little", "big"):
            raise CheckpointFormatError(
                f"{self.path}: record '{name}' should say 'little' or 'big'; found {_short(raw)}"
            )
        return order

    def _storage_bytes(self, key: str, nbytes: int, what: str) -> np.ndarray[Any, Any]:
        name = f"{self.prefix}/data/{key}"
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise CheckpointFormatError(
                f"{self.path}: storage record '{name}' ({what}) is missing from the archive"
            ) from None
        if info.file_size < nbytes:
            raise CheckpointFormatError(
                f"{self.path}: storage record '{name}' should hold {what} = {nbytes} bytes; "
                f"found {info.file_size} bytes"
            )
        if nbytes == 0:
            empty = np.zeros(0, dtype=np.uint8)
            empty.flags.writeable = False
            return empty
        if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
            buf = self.buf
            off = info.header_offset
            if off < 0 or off + 30 > len(buf) or buf[off : off + 4] != b"PK\x03\x04":
                raise CheckpointFormatError(
                    f"{self.path}: record '{name}': expected a zip local header at byte {off}; "
                    "found none (the file is corrupt or truncated)"
                )
            name_len, extra_len = struct.unpack_from("<HH", buf, off + 26)
            start = off + 30 + name_len + extra_len
            if start + nbytes > len(buf):
                raise CheckpointFormatError(
                    f"{self.path}: record '{name}' should hold {nbytes} bytes from byte {start}; "
                    f"the file ends at byte {len(buf)} (truncated)"
                )
            return np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=start)
        data = self.read_member(name)
        if len(data) < nbytes:
            raise CheckpointFormatError(
                f"{self.path}: storage record '{name}' should hold {what} = {nbytes} bytes; found {len(data)} bytes"
            )
        return np.frombuffer(data, dtype=np.uint8, count=nbytes)

    # -- the pickle ---------------------------------------------------------------------------

    def unpickle(self) -> object:
        name = f"{self.prefix}/data.pkl"
        data = self.read_member(name)
        forbidden = None
        try:
            for opcode, _arg, pos in pickletools.genops(data):
                if opcode.name in _FORBIDDEN_OPCODES:
                    forbidden = (opcode.name, pos)
                    break
        except MemoryError:
            raise
        except Exception as exc:
            raise CheckpointFormatError(
                f"{self.path}: '{name}' should be a pickle stream; it is malformed: {exc}"
            ) from exc
        if forbidden is not None:
            raise PickleSecurityError(
                f"{self.path}: refused opcode {forbidden[0]} at byte {forbidden[1]} of '{name}': "
                "extension-registry globals are never allowed"
            )
        try:
            return _RestrictedUnpickler(data, self).load()
        except (PickleSecurityError, CheckpointFormatError, MemoryError):
            raise
        except Exception as exc:
            raise CheckpointFormatError(
                f"{self.path}: '{name}' is not a tensor state dict pickle: {type(exc).__name__}: {exc}"
            ) from exc

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise CheckpointFormatError(
                f"{self.path}: expected a persistent id ('storage', type, key, location, numel); found {_short(pid)}"
            )
        _, storage_type, key, _location, numel = pid
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise CheckpointFormatError(
                f"{self.path}: malformed storage persistent id {_short(pid)}: expected a storage "
                "class, a string key and a non-negative element count"
            )
        cached = self.storages.get(key)
        if cached is not None:
            return cached
        dtype = storage_type.dtype
        assert dtype.stored is not None
        itemsize = dtype.stored.itemsize
        what = f"{numel} x {itemsize}-byte {dtype.name}"
        storage = _Storage(key, dtype, self._storage_bytes(key, numel * itemsize, what))
        self.storages[key] = storage
        return storage

    # -- tensors ------------------------------------------------------------------------------

    def _typed(self, storage: _Storage, dtype: _DType, neg: bool, conj: bool) -> np.ndarray[Any, Any]:
        """The storage's elements as a flat, native-order, read-only array (cached)."""
        cache_key = (storage.key, dtype.name, neg, conj)
        arr = self.typed.get(cache_key)
        if arr is not None:
            return arr
        stored = dtype.stored
        if stored is None:
            raise CheckpointFormatError(
                f"{self.path}: a tensor in storage '{storage.key}' has dtype torch.{dtype.name}, "
                "which is not supported (supported: float32/64/16, bfloat16, int8/16/32/64, "
                "uint8/16/32/64, bool, complex64/128)"
            )
        raw = storage.raw
        if raw.size % stored.itemsize:
            raise CheckpointFormatError(
                f"{self.path}: storage '{storage.key}' holds {raw.size} bytes, not a whole number "
                f"of {stored.itemsize}-byte torch.{dtype.name} elements"
            )
        file_dtype = stored
        if stored.itemsize > 1 and self.file_order == "big":
            file_dtype = stored.newbyteorder(">")
        arr = raw.view(file_dtype)
        if dtype.bf16:
            widened = np.empty(arr.shape, dtype=np.uint32)
            np.left_shift(arr, 16, out=widened, dtype=np.uint32)  # exact: bf16 is f32's top half
            arr = widened.view(np.float32)
        elif self.file_order != _NATIVE_ORDER and stored.itemsize > 1:
            arr = arr.astype(file_dtype.newbyteorder("="))
        if neg:
            arr = np.negative(arr)
        if conj:
            arr = np.conjugate(arr)
        arr.flags.writeable = False
        self.typed[cache_key] = arr
        return arr

    def _make(
        self, storage: object, offset: object, size: object, stride: object, dtype: _DType | None, metadata: object
    ) -> _Tensor:
        if not isinstance(storage, _Storage):
            raise CheckpointFormatError(
                f"{self.path}: a tensor's storage should come from a persistent id; found {_short(storage)}"
            )
        shape = tuple(size) if isinstance(size, (tuple, list)) else None
        strides = tuple(stride) if isinstance(stride, (tuple, list)) else None
        if not (
            isinstance(offset, int)
            and not isinstance(offset, bool)
            and offset >= 0
            and shape is not None
            and strides is not None
            and len(shape) == len(strides)
            and all(_is_int(d) and d >= 0 for d in shape)
            and all(_is_int(s) and s >= 0 for s in strides)
        ):
            raise CheckpointFormatError(
                f"{self.path}: expected a tensor view (offset >= 0, size and stride tuples of "
                f"non-negative ints of equal length); found offset {_short(offset)}, size "
                f"{_short(size)}, stride {_short(stride)}"
            )
        neg = conj = False
        if metadata:
            if not isinstance(metadata, dict) or not set(metadata) <= {"neg", "conj"}:
                raise CheckpointFormatError(
                    f"{self.path}: expected tensor metadata with only 'neg'/'conj' bits; found {_short(metadata)}"
                )
            neg = bool(metadata.get("neg", False))
            conj = bool(metadata.get("conj", False))
        typed = self._typed(storage, storage.dtype if dtype is None else dtype, neg, conj)
        if 0 in shape:
            empty = np.zeros(shape, dtype=typed.dtype)
            empty.flags.writeable = False
            return _Tensor(empty)
        last = offset + sum((d - 1) * s for d, s in zip(shape, strides))
        if last >= typed.shape[0]:
            raise CheckpointFormatError(
                f"{self.path}: tensor view (offset {offset}, size {shape}, stride {strides}) "
                f"reaches element {last} of storage '{storage.key}', which holds only "
                f"{typed.shape[0]} elements"
            )
        view = np.lib.stride_tricks.as_strided(
            typed[offset:],
            shape=shape,
            strides=tuple(s * typed.itemsize for s in strides),
            writeable=False,
        )
        return _Tensor(view)

    def _rebuild_tensor(self, storage: object, offset: object, size: object, stride: object) -> _Tensor:
        return self._make(storage, offset, size, stride, None, None)

    def _rebuild_tensor_v2(
        self,
        storage: object,
        offset: object,
        size: object,
        stride: object,
        requires_grad: object,
        backward_hooks: object,
        metadata: object = None,
    ) -> _Tensor:
        return self._make(storage, offset, size, stride, None, metadata)

    def _rebuild_tensor_v3(
        self,
        storage: object,
        offset: object,
        size: object,
        stride: object,
        requires_grad: object,
        backward_hooks: object,
        dtype: object,
        metadata: object = None,
    ) -> _Tensor:
        if not isinstance(dtype, _DType):
            raise CheckpointFormatError(f"{self.path}: _rebuild_tensor_v3 expects a torch dtype; found {_short(dtype)}")
        return self._make(storage, offset, size, stride, dtype, metadata)

    def _rebuild_parameter(self, data: object, requires_grad: object, backward_hooks: object) -> _Tensor:
        if not isinstance(data, _Tensor):
            raise CheckpointFormatError(f"{self.path}: _rebuild_parameter expects a tensor; found {_short(data)}")
        return data

    def _rebuild_parameter_with_state(
        self, data: object, requires_grad: object, backward_hooks: object, state: object
    ) -> _Tensor:
        return self._rebuild_parameter(data, requires_grad, backward_hooks)

    def _rebuild_from_type_v2(self, func: object, new_type: object, args: object, state: object) -> _Tensor:
        if (
            func not in self.tensor_rebuilders.values()
            or not isinstance(args, tuple)
            or new_type not in (_TENSOR_TYPE, _PARAMETER_TYPE)
        ):
            raise CheckpointFormatError(
                f"{self.path}: _rebuild_from_type_v2 expects a tensor rebuild function, "
                f"torch.Tensor or torch.nn.Parameter and an argument tuple; found "
                f"{_short(func)}, {_short(new_type)}, {_short(args)}"
            )
        assert isinstance(func, _Callable)
        result = func(*args)
        assert isinstance(result, _Tensor)
        return result


def _ordered_dict(*args: object) -> OrderedDict[Any, Any]:
    if len(args) > 1 or (args and not isinstance(args[0], (dict, list, tuple))):
        raise CheckpointFormatError(
            f"collections.OrderedDict expects no argument or one dict/list/tuple; found {_short(args)}"
        )
    return OrderedDict(*args)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The public entry point.


def _describe_non_zip(path: str, head: bytes) -> str:
    if head.startswith(_LEGACY_MAGIC):
        return (
            f"{path}: this is the legacy (pre-1.6, non-zip) torch.save format, which is not "
            "supported; re-save it with torch>=1.6 (torch.save(torch.load(f), f)) to get the "
            "zip format"
        )
    if len(head) >= 262 and head[257:262] == b"ustar":
        return (
            f"{path}: this is a tar archive (the oldest torch.save format), which is not "
            "supported; expected a torch.save zip archive"
        )
    if head.startswith(b"PK\x03\x04"):
        return (
            f"{path}: starts like a zip archive but has no end-of-central-directory record; "
            "the file is truncated or corrupt"
        )
    if head[:1] == b"\x80":
        return (
            f"{path}: this is a bare pickle stream, not a torch.save zip archive; "
            "expected a zip archive (first bytes 'PK\\x03\\x04')"
        )
    return f"{path}: expected a torch.save zip archive (first bytes 'PK\\x03\\x04'); found first bytes {head[:16]!r}"


def _state_dict(obj: object, path: str) -> dict[str, np.ndarray[Any, Any]]:
    if not isinstance(obj, dict):
        raise CheckpointFormatError(
            f"{path}: expected data.pkl to hold a dict of tensors (a state dict); found a {type(obj).__name__}"
        )

    def tensor_dict(d: dict[Any, Any]) -> bool:
        return all(isinstance(k, str) and isinstance(v, _Tensor) for k, v in d.items())

    if tensor_dict(obj):
        return {k: v.array for k, v in obj.items()}
    inner = [k for k, v in obj.items() if isinstance(v, dict) and v and tensor_dict(v)]
    top_tensors = [k for k, v in obj.items() if isinstance(v, _Tensor)]
    if len(inner) == 1 and not top_tensors:
        return {k: v.array for k, v in obj[inner[0]].items()}
    others = [f"{_short(k, 40)}: {type(v).__name__}" for k, v in obj.items() if not isinstance(v, _Tensor)]
    raise CheckpointFormatError(
        f"{path}: expected a dict of tensors with string keys, or a dict holding exactly one "
        f"such dict; found {len(top_tensors)} tensors at the top level, {len(inner)} dicts of "
        f"tensors ({', '.join(_short(k, 40) for k in inner[:5]) or 'none'}) and other entries "
        f"{', '.join(others[:8])}"
    )


def load_pth(path: str | os.PathLike[str]) -> dict[str, np.ndarray[Any, Any]]:
    """Load a ``torch.save`` checkpoint as ``{name: numpy array}`` without PyTorch.

    Never executes code from the pickle. bfloat16 tensors come back as float32 (exact); every
    other supported dtype as the same NumPy dtype. Arrays are read-only and, where possible,
    zero-copy views of a memory map of the file. See the module docstring for what is accepted.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PickleSecurityError: the pickle references a global other than the tensor ones.
        CheckpointFormatError: the file is not a readable torch.save checkpoint.
    """
    fspath = os.fspath(path)
    with open(fspath, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise CheckpointFormatError(f"{fspath}: expected a torch.save zip archive; found an empty file")
        head = fh.read(512)
        fh.seek(0)
        try:
            is_zip = zipfile.is_zipfile(fh)
        except MemoryError:
            raise
        except Exception as exc:  # e.g. BadZipFile for a corrupt end-of-directory record
            raise CheckpointFormatError(
                f"{fspath}: expected a readable zip archive; its end-of-directory record is "
                f"corrupt: {type(exc).__name__}: {exc}"
            ) from exc
        if not is_zip:
            raise CheckpointFormatError(_describe_non_zip(fspath, head))
        fh.seek(0)
        buf: mmap.mmap | bytes
        try:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            buf = fh.read()
            fh.seek(0)
        try:
            zf = zipfile.ZipFile(fh)
        except MemoryError:
            raise
        except Exception as exc:
            raise CheckpointFormatError(
                f"{fspath}: expected a readable zip archive; its directory is corrupt: {type(exc).__name__}: {exc}"
            ) from exc
        with zf:
            obj = _Reader(fspath, zf, buf).unpickle()
    return _state_dict(obj, fspath)
