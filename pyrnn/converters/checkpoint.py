"""Read the checkpoints people have into {name: numpy array}, without PyTorch.

    tensors, config = read_checkpoint("RWKV-x070-World-0.1B.pth")   # config is None for a .pth
    tensors, config = read_checkpoint("hf-folder/")                    # config.json as a dict

Supported: a torch `.pth`/`.bin` (zip format, read by the restricted unpickler in torch_pickle),
a `.safetensors` file, and a Hugging Face folder (config.json + model.safetensors,
pytorch_model.bin, or a sharded *.index.json of either). bf16 becomes float32 exactly.
safetensors is parsed here rather than with the `safetensors` package because its numpy API
cannot represent bf16, the dtype most checkpoints are stored in.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .torch_pickle import CheckpointFormatError, load_pth

_ST_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"), "BF16": np.dtype("<u2"),
}


def _json_int(v: Any) -> int:
    """An integer from a JSON header; ValueError for anything else (floats, bools, strings, inf)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, found {v!r:.40}")
    return v


def load_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file; header and offsets checked against the file size."""
    p = os.fspath(path)
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise CheckpointFormatError(f"{p}: expected a safetensors header, found a file of {size} bytes")
        (n,) = struct.unpack("<Q", f.read(8))
        if n > size - 8:
            raise CheckpointFormatError(f"{p}: header length: expected at most {size - 8}, found {n}")
        try:
            header = json.loads(f.read(n))
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError; nesting too deep
            raise CheckpointFormatError(f"{p}: header: expected JSON, found {type(e).__name__}: {e}") from None
        if not isinstance(header, dict):
            raise CheckpointFormatError(f"{p}: header: expected a JSON object")
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size > 8 + n else b""
    data_start = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _ST_DTYPES[info["dtype"]]
            shape = tuple(_json_int(d) for d in info["shape"])
            begin, end = (_json_int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointFormatError(f"{p}: tensor {name!r}: expected dtype, shape, data_offsets; "
                                        f"found {info!r:.200}") from None
        if any(d < 0 for d in shape):
            raise CheckpointFormatError(f"{p}: tensor {name!r}: shape: expected sizes >= 0, found {list(shape)}")
        if not 0 <= begin <= end <= size - data_start:
            raise CheckpointFormatError(f"{p}: tensor {name!r}: offsets [{begin}, {end}) outside the data")
        count = math.prod(shape)  # Python ints: a hostile shape cannot overflow
        if end - begin != count * dtype.itemsize:
            raise CheckpointFormatError(f"{p}: tensor {name!r}: expected {count * dtype.itemsize} bytes for "
                                        f"{info['dtype']}{list(shape)}, found {end - begin}")
        try:
            if count == 0:  # the map may be empty (b"") when every tensor is
                out[name] = np.zeros(shape, dtype)
                continue
            arr = np.frombuffer(buf, dtype=dtype, count=count, offset=data_start + begin).reshape(shape)
        except ValueError as e:  # a shape numpy cannot represent (a dimension past int64, too many dims)
            raise CheckpointFormatError(f"{p}: tensor {name!r}: shape {list(shape)}: {e}") from None
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr
    return out


def _load_weights_file(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    return load_pth(path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError; nesting too deep
        raise CheckpointFormatError(f"{path}: expected JSON, found {type(e).__name__}: {e}") from None


def _shard_path(folder: Path, index: Path, shard: str) -> Path:
    """A shard named by an index: a file name in the folder, never a path that leaves it."""
    name = Path(shard)
    if not shard or name.is_absolute() or name.name != shard or shard in (".", ".."):
        raise CheckpointFormatError(f"{index}: shard: expected a file name inside {folder}, found {shard!r:.200}")
    try:
        exists = (folder / name).is_file()
    except OSError as e:  # a name too long for the file system, ...
        raise CheckpointFormatError(f"{index}: shard: expected a usable file name, found {shard!r:.200} "
                                    f"({e.strerror})") from None
    if not exists:
        raise CheckpointFormatError(f"{index}: shard: expected {folder / name} to exist, found no such file")
    return folder / name


def _shard_name(index: Path, value: Any) -> str:
    if not isinstance(value, str):
        raise CheckpointFormatError(f"{index}: weight_map: expected file names, found {value!r:.200}")
    return value


def read_hf_folder(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise CheckpointFormatError(f"{folder}: expected a Hugging Face folder with config.json, found none")
    config = _read_json(cfg_path)
    if not isinstance(config, dict):
        raise CheckpointFormatError(f"{cfg_path}: expected a JSON object, found {type(config).__name__}")
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            weight_map = _read_json(index)
            weight_map = weight_map.get("weight_map") if isinstance(weight_map, dict) else None
            if not isinstance(weight_map, dict):
                raise CheckpointFormatError(f"{index}: expected an object with a \"weight_map\" object, found none")
            tensors: dict[str, np.ndarray] = {}
            for shard in sorted({_shard_name(index, v) for v in weight_map.values()}):
                tensors.update(_load_weights_file(_shard_path(folder, index, shard)))
            return tensors, config
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (folder / single).is_file():
            return _load_weights_file(folder / single), config
    raise CheckpointFormatError(f"{folder}: expected model.safetensors or pytorch_model.bin, found neither")


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """(tensors, config): config is the HF config.json, or None for a bare weights file."""
    p = Path(path)
    if p.is_dir():
        return read_hf_folder(p)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    return _load_weights_file(p), None
