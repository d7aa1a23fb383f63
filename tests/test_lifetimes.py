"""The model file's mapping lives as long as anything that views it: deleting a Model (or its
GGUFFile) while a State, a tensor_bytes view or a bare core model still exists is safe, and the
views keep their bytes. Run under ASan by tools/ci_reliability.sh, a use-after-unmap would abort."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np

import pyrnn
from pyrnn import _core

SEED = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "gguf" / "rwkv4-q4_0.gguf"


def test_tensor_bytes_view_outlives_model_and_file() -> None:
    """A tensor_bytes view stays readable, with the same bytes, after its Model and GGUFFile are gone."""
    model = pyrnn.load(SEED)
    view = model.metadata.tensor_bytes("token_embd.weight")
    want = bytes(view)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    assert bytes(view) == want
    assert not view.flags.writeable


def test_state_outlives_model() -> None:
    """A State keeps working (bytes, copy) after its Model is deleted, and loads into a new Model."""
    model = pyrnn.load(SEED)
    state = model.new_state()
    model.forward([1, 2, 3], state)
    blob = bytes(state)
    del model
    gc.collect()
    fork = state.copy()
    assert bytes(fork) == blob
    again = pyrnn.load(SEED)
    logits = again.forward([4], pyrnn.State.from_bytes(again, blob))
    assert np.isfinite(logits).all()


def test_core_model_outlives_its_file_object() -> None:
    """A core Model holds the mapping itself: it runs after every other reference to the file is gone."""
    core = _core.Model(str(SEED))
    gc.collect()
    state = np.empty(core.state_size, np.float32)
    core.init_state(state)
    first = core.forward([0], state.copy())
    f = _core.GGUFFile(str(SEED))
    del f
    gc.collect()
    assert np.array_equal(core.forward([0], state.copy()), first)
