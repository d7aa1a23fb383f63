"""Models and states: the Python face of pyrnn.

    import pyrnn
    model = pyrnn.load("rwkv7-0.1b.gguf")         # threads=N: matrix-product threads (default: physical cores)
    state = model.new_state()
    logits = model.forward(model.tokenizer.encode("Once upon a time"), state)   # last token's logits
    fork = state.copy()                          # the whole memory of the text so far
    blob = bytes(state)                          # header (model identity) + float32 data
    same = pyrnn.State.from_bytes(model, blob)   # refuses a state of another model
    gpu = pyrnn.load("rwkv7-0.1b.gguf", device="cuda")  # a -DPYRNN_CUDA=ON build (docs/CUDA.md)
    on_gpu = state.to(gpu)                       # the same floats, now on the device

A Model is immutable and may be shared by threads; a State belongs to one sequence and is used by
one thread at a time (a second concurrent use raises instead of corrupting it).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _core
from .atomic import atomic_output
from .generate import Generation, Prompt
from .tokenizer import Tokenizer, load_tokenizer

STATE_MAGIC = b"PYRNNST\0"
STATE_FORMAT = 1
_PREFIX = struct.Struct("<8sII")  # magic, format version, header JSON length

Tokens = Union[Sequence[int], np.ndarray]


def _fingerprint(f: _core.GGUFFile) -> str:
    """Identity of a model file: its header (metadata, tensor list) plus samples of tensor data.

    Cheap (reads a few KiB however large the model) and different for different weights of the
    same shape."""
    h = hashlib.sha256()
    with open(f.path, "rb") as fh:
        h.update(fh.read(f.data_offset))
    tensors = f.tensors
    step = max(1, len(tensors) // 16)
    for t in tensors[::step]:
        data = f.tensor_bytes(t["name"])
        h.update(bytes(data[:2048]))
        h.update(bytes(data[-2048:]))
    return h.hexdigest()


def _parse_device(device: str) -> tuple[str, int]:
    """'cpu', 'cuda' or 'cuda:N' → (kind, index)."""
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return "cpu", 0
    if kind == "cuda" and (not index or index.isdigit()):
        return "cuda", int(index or 0)
    raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', found {device!r}")


class Model:
    """A loaded model (memory-mapped GGUF). Use pyrnn.load(path, device=...)."""

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu", threads: int | None = None) -> None:
        self.path = os.fspath(path)
        kind, index = _parse_device(device)
        self.device = "cpu" if kind == "cpu" else f"cuda:{index}"
        if threads is not None:
            _check_threads(threads, self.device)  # before the (slow) load
        self._file = _core.GGUFFile(self.path)
        # The CUDA model keeps weights and states on the device (csrc/cuda, docs/CUDA.md); it raises
        # _core.CudaError in a CPU-only build, without a device, or for an architecture it lacks.
        self._core = _core.Model(self.path) if kind == "cpu" else _core.CudaModel(self.path, index)
        self.fingerprint = _fingerprint(self._file)
        self._tokenizer: Tokenizer | None = None
        if threads is not None:
            self._core.threads = threads  # checked above

    @property
    def arch(self) -> str:
        return self._core.arch

    @property
    def n_vocab(self) -> int:
        return self._core.n_vocab

    @property
    def n_embd(self) -> int:
        return self._core.n_embd

    @property
    def n_layer(self) -> int:
        return self._core.n_layer

    @property
    def state_size(self) -> int:
        """Floats in a state (the same at token 10 and token 100,000)."""
        return self._core.state_size

    @property
    def metadata(self) -> _core.GGUFFile:
        return self._file

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer stored in the model file."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self._file)
        return self._tokenizer

    @property
    def threads(self) -> int | None:
        """Threads that split the matrix products of every forward call (CPU; None on a CUDA device).

        The default is the number of physical cores; any count gives the same logits, bit for bit.
        Set it between calls; calls running at that moment finish with the count they started with."""
        return None if self.on_device else self._core.threads

    @threads.setter
    def threads(self, n: int) -> None:
        _check_threads(n, self.device)
        self._core.threads = n

    @property
    def on_device(self) -> bool:
        """Whether weights and states live on a CUDA device."""
        return self.device != "cpu"

    def new_state(self) -> State:
        if self.on_device:
            return State._wrap_device(self, self._core.new_state())
        data = np.empty(self.state_size, np.float32)
        self._core.init_state(data)
        return State(self, data)

    def forward(self, tokens: Tokens, state: State | None = None, all_logits: bool = False) -> np.ndarray:
        """Feed tokens (updating `state` in place; a fresh state if None) → float32 logits of the last
        token, shape (n_vocab,), or of every token, shape (n, n_vocab), when all_logits."""
        if state is None:
            state = self.new_state()
        if state.model_fingerprint != self.fingerprint:
            raise ValueError("state: expected a state of this model, found one of another model")
        if state.device != self.device:
            raise ValueError(f"state: expected a state on {self.device}, found one on {state.device} "
                             "(state.to(model) moves it)")
        with state._use():
            if state._dev is not None:
                return self._core.forward(tokens, state._dev, all_logits)
            return self._core.forward(tokens, state.data, all_logits)

    def generate(self, prompt: Prompt, **options: Any) -> Generation:
        """An iterator of text pieces; options and behaviour: pyrnn.generate.Generation (pyrnn/generate.py)."""
        return Generation(self, prompt, **options)

    def __repr__(self) -> str:
        where = "" if self.device == "cpu" else f" on {self.device}"
        return (f"<pyrnn.Model {self.arch} {self.path!r}{where}: {self.n_layer} layers, C={self.n_embd}, "
                f"V={self.n_vocab}>")


class State:
    """The recurrent state of one sequence: plain float32 data plus the identity of its model.

    A state of a model on a CUDA device lives on that device (its `data` is then a read-only host
    copy); the floats and their layout are the same on every device, so bytes(state) and state.to()
    move states between devices exactly."""

    def __init__(self, model: Model, data: np.ndarray) -> None:
        if data.dtype != np.float32 or data.shape != (model.state_size,):
            raise ValueError(f"state data: expected float32[{model.state_size}], found {data.dtype}{list(data.shape)}")
        self._set_identity(model.fingerprint, model.arch, model.device, model._core if model.on_device else None)
        if self._device_model is not None:
            self._dev = self._device_model.new_state()
            self._dev.upload(np.ascontiguousarray(data))
        else:
            self._host = np.ascontiguousarray(data)

    def _set_identity(self, fingerprint: str, arch: str, device: str, device_model: Any) -> None:
        """The model's identity and an empty body: exactly one of _host / _dev is set afterwards."""
        self.model_fingerprint, self.arch, self.device = fingerprint, arch, device
        self._device_model = device_model  # the _core.CudaModel that allocates device copies; None on the CPU
        self._host: np.ndarray | None = None
        self._dev: Any = None  # _core.CudaState on a device
        self._lock = threading.Lock()

    @classmethod
    def _wrap_device(cls, model: Model, dev: Any) -> State:
        s = cls.__new__(cls)
        s._set_identity(model.fingerprint, model.arch, model.device, model._core)
        s._dev = dev
        return s

    @property
    def data(self) -> np.ndarray:
        """The floats: on the CPU the state's own array; on a device a read-only host copy."""
        if self._host is not None:
            return self._host
        out = self._dev.download()
        out.flags.writeable = False
        return out

    def _use(self) -> _Guard:
        return _Guard(self._lock)

    def copy(self) -> State:
        s = State.__new__(State)
        s._set_identity(self.model_fingerprint, self.arch, self.device, self._device_model)
        with self._use():
            if self._dev is not None:
                s._dev = self._device_model.new_state()
                s._dev.copy_from(self._dev)  # device to device
            else:
                s._host = self._host.copy()
        return s

    def to(self, model: Model) -> State:
        """This state for `model` — the same file, loaded on any device: an exact copy of the floats."""
        if model.fingerprint != self.model_fingerprint:
            raise ValueError("state: expected a model loaded from this state's model file, found another model")
        with self._use():
            return State(model, np.array(self.data, dtype=np.float32))

    def __bytes__(self) -> bytes:
        header = json.dumps({
            "arch": self.arch,
            "state_size": int(self.data.size),
            "model_fingerprint": self.model_fingerprint,
            "dtype": "float32",
        }).encode()
        with self._use():
            payload = self.data.astype("<f4").tobytes()
        return _PREFIX.pack(STATE_MAGIC, STATE_FORMAT, len(header)) + header + payload

    @classmethod
    def from_bytes(cls, model: Model, blob: bytes) -> State:
        """A state saved by bytes(state); refuses a state of another model or a damaged one."""
        if len(blob) < _PREFIX.size:
            raise ValueError(f"state: expected at least {_PREFIX.size} bytes, found {len(blob)}")
        magic, version, n = _PREFIX.unpack_from(blob)
        if magic != STATE_MAGIC:
            raise ValueError(f"state magic: expected {STATE_MAGIC!r}, found {magic!r}")
        if version != STATE_FORMAT:
            raise ValueError(f"state format version: expected {STATE_FORMAT}, found {version}")
        if n > len(blob) - _PREFIX.size:
            raise ValueError(f"state header length: expected at most {len(blob) - _PREFIX.size}, found {n}")
        try:
            header = json.loads(blob[_PREFIX.size:_PREFIX.size + n])
            arch, size, fp = header["arch"], int(header["state_size"]), header["model_fingerprint"]
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as e:  # inf size, deep nesting
            raise ValueError(f"state header: expected JSON with arch, state_size, model_fingerprint ({e})") from None
        if arch != model.arch or size != model.state_size:
            raise ValueError(f"state: expected a {model.arch} state of {model.state_size} floats, "
                             f"found a {arch} state of {size}")
        if fp != model.fingerprint:
            raise ValueError("state: expected a state saved with this model, found one of another model file "
                             f"(fingerprint {str(fp)[:12]}..., model {model.fingerprint[:12]}...)")
        payload = blob[_PREFIX.size + n:]
        if len(payload) != 4 * size:
            raise ValueError(f"state data: expected {4 * size} bytes, found {len(payload)}")
        return cls(model, np.frombuffer(payload, dtype="<f4").astype(np.float32))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to a temporary file and rename: an interrupted save leaves the old file intact."""
        with atomic_output(path) as f:
            f.write(bytes(self))

    @classmethod
    def load(cls, model: Model, path: str | os.PathLike[str]) -> State:
        return cls.from_bytes(model, Path(path).read_bytes())


class _Guard:
    """Holds a state's lock for one call; a state used by two threads at once is an error, not a race."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("state: already in use by another thread (give each thread its own state.copy())")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def load(path: str | os.PathLike[str], device: str = "cpu", threads: int | None = None) -> Model:
    """Load a GGUF model: validated, memory-mapped, ready to share between threads.

    threads: how many threads split the matrix products (default: the physical cores; CPU only).
    device="cuda" (or "cuda:N") uploads the weights to a CUDA device and keeps states there; it needs a
    build with -DPYRNN_CUDA=ON and a GPU, and says which is missing (docs/CUDA.md)."""
    return Model(path, device, threads)


MAX_THREADS: int = _core.max_threads  # csrc/threads.h, the one limit of Python, the C API and the CLI


def _check_threads(n: object, device: str) -> None:
    """threads must be an int in 1..MAX_THREADS, and only a CPU model has them."""
    if device != "cpu":
        raise ValueError(f"threads: applies to device 'cpu' only, found device {device!r}")
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"threads: expected an int, found {type(n).__name__} {n!r}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"threads: expected 1..{MAX_THREADS}, found {n}")


def default_model_path() -> Path:
    """The small RWKV-7 shipped in the package (pyrnn/data/default.gguf; docs/DEFAULT_MODEL.md), or a
    clear error when this install has none."""
    from importlib import resources

    path = Path(str(resources.files("pyrnn") / "data" / "default.gguf"))
    if not path.is_file():
        raise ValueError(f"no default model is installed ({path} is absent); give a model file: "
                         "pyrnn generate MODEL PROMPT")
    return path
