"""Builds GGUF bytes by hand, piece by piece, so tests can break any single field."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


def s(text: str | bytes) -> bytes:
    b = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


def kv_u32(key: str, v: int) -> bytes:
    return s(key) + struct.pack("<II", 4, v)


def kv_str(key: str, v: str) -> bytes:
    return s(key) + struct.pack("<I", 8) + s(v)


def kv_f32(key: str, v: float) -> bytes:
    return s(key) + struct.pack("<If", 6, v)


def tensor_info(name: str, ne: tuple[int, ...], type_id: int, offset: int, n_dims: int | None = None) -> bytes:
    n = len(ne) if n_dims is None else n_dims
    return s(name) + struct.pack("<I", n) + struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", type_id, offset)


@dataclass
class Craft:
    """A small valid file: two f32 tensors and a few keys. Change a field, then call build()."""

    magic: bytes = b"GGUF"
    version: int = 3
    kvs: list[bytes] = field(
        default_factory=lambda: [kv_str("general.architecture", "test"), kv_u32("test.block_count", 2)]
    )
    infos: list[bytes] = field(
        default_factory=lambda: [tensor_info("a", (4, 2), 0, 0), tensor_info("b", (3,), 0, 32)]
    )
    n_tensors: int | None = None
    n_kv: int | None = None
    alignment: int = 32
    data: bytes = bytes(range(32)) + bytes(12) + bytes(20)

    def build(self) -> bytes:
        n_t = len(self.infos) if self.n_tensors is None else self.n_tensors
        n_k = len(self.kvs) if self.n_kv is None else self.n_kv
        head = self.magic + struct.pack("<IQQ", self.version, n_t, n_k) + b"".join(self.kvs) + b"".join(self.infos)
        pad = (-len(head)) % self.alignment
        return head + b"\0" * pad + self.data
