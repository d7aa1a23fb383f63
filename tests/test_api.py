"""The Python API: load, states (copy, bytes, save/load, identity checks), forward's border checks."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from concurrency import run_while_switching
from tiny_models import tiny_rwkv7_gguf

import pyrnn


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_rwkv7_gguf(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def model(model_path: Path) -> pyrnn.Model:
    return pyrnn.load(model_path)


def test_forward_updates_state_and_returns_logits(model: pyrnn.Model) -> None:
    """forward returns (V,) logits by default, (n, V) with all_logits; the last rows agree."""
    s1, s2 = model.new_state(), model.new_state()
    last = model.forward([1, 2, 3], s1)
    every = model.forward([1, 2, 3], s2, all_logits=True)
    assert last.shape == (model.n_vocab,) and every.shape == (3, model.n_vocab)
    np.testing.assert_array_equal(last, every[-1])
    assert not np.array_equal(s1.data, model.new_state().data)


def test_state_copy_forks(model: pyrnn.Model) -> None:
    """A copied state continues exactly like the original and independently of it."""
    s = model.new_state()
    model.forward([5, 6, 7], s)
    fork = s.copy()
    a = model.forward([8, 9], s)
    b = model.forward([8, 9], fork)
    np.testing.assert_array_equal(a, b)
    model.forward([10], s)
    assert not np.array_equal(s.data, fork.data)


def test_state_bytes_round_trip_and_file(model: pyrnn.Model, tmp_path: Path) -> None:
    """bytes(state) → State.from_bytes, and save/load, continue bit-exactly."""
    s = model.new_state()
    model.forward([11, 12, 13], s)
    restored = pyrnn.State.from_bytes(model, bytes(s))
    path = tmp_path / "s.state"
    s.save(path)
    loaded = pyrnn.State.load(model, path)
    ref = model.forward([14], s.copy())
    np.testing.assert_array_equal(model.forward([14], restored), ref)
    np.testing.assert_array_equal(model.forward([14], loaded), ref)
    assert [p.name for p in tmp_path.iterdir()] == ["s.state"]  # no temporary left behind


def test_state_of_another_model_is_refused(model: pyrnn.Model, tmp_path: Path) -> None:
    """A state saved with a different model (same shapes, other weights) is refused by name."""
    other = pyrnn.load(tiny_rwkv7_gguf(tmp_path, seed=1))
    blob = bytes(other.new_state())
    with pytest.raises(ValueError, match="another model"):
        pyrnn.State.from_bytes(model, blob)
    with pytest.raises(ValueError, match="another model"):
        model.forward([1], other.new_state())


@pytest.mark.parametrize("damage,message", [
    (lambda b: b[:10], "expected at least"),
    (lambda b: b"XXXXXXXX" + b[8:], "state magic"),
    (lambda b: b[:8] + (2).to_bytes(4, "little") + b[12:], "format version"),
    (lambda b: b[:-4], "state data: expected"),
    (lambda b: b + b"\0\0\0\0", "state data: expected"),
    (lambda b: b[:12] + (10**9).to_bytes(4, "little") + b[16:], "header length"),
    (lambda b: b[:16] + b"x" + b[17:], "state header"),
])
def test_damaged_state_bytes(model: pyrnn.Model, damage, message: str) -> None:
    """Each damaged state blob raises one ValueError naming what is wrong."""
    blob = bytes(model.new_state())
    with pytest.raises(ValueError, match=message):
        pyrnn.State.from_bytes(model, damage(blob))


@pytest.mark.parametrize("tokens,message", [
    ([], "at least one token"),
    ([-1], r"tokens\[0\]: expected an id in \[0, 300\), found -1"),
    ([1, 300], r"tokens\[1\]: expected an id in \[0, 300\), found 300"),
    ([2**40], "found 1099511627776"),
    ([[1, 2]], "1-d sequence"),
    ("abc", "1-d sequence"),
])
def test_bad_tokens(model: pyrnn.Model, tokens, message: str) -> None:
    """Bad token input gives ValueError naming the index and the range, and leaves the state untouched."""
    s = model.new_state()
    before = s.data.copy()
    with pytest.raises(ValueError, match=message):
        model.forward(tokens, s)
    np.testing.assert_array_equal(s.data, before)


def test_bad_state_array(model: pyrnn.Model) -> None:
    """The core refuses a state array of the wrong size or dtype (the border check)."""
    with pytest.raises(ValueError, match="state: expected"):
        model._core.forward([1], np.zeros(model.state_size + 1, np.float32), False)
    with pytest.raises(ValueError, match="state: expected a 1-d float32"):
        model._core.forward([1], np.zeros(model.state_size, np.float64), False)


def test_missing_and_bad_model_files(tmp_path: Path) -> None:
    """A missing file is FileNotFoundError; a non-GGUF file is FormatError naming the path."""
    with pytest.raises(FileNotFoundError):
        pyrnn.load(tmp_path / "missing.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(pyrnn.FormatError, match="bad.gguf"):
        pyrnn.load(bad)


def test_concurrent_states_match_serial(model: pyrnn.Model) -> None:
    """4 threads with 4 states on one model give exactly what each gives alone (GIL released)."""
    rng = np.random.default_rng(3)
    seqs = [rng.integers(0, model.n_vocab, 40).tolist() for _ in range(4)]
    serial = [model.forward(t, model.new_state(), all_logits=True) for t in seqs]
    results: list[np.ndarray | None] = [None] * 4

    def run(i: int) -> None:
        s = model.new_state()
        results[i] = np.stack([model.forward([t], s) for t in seqs[i]])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r, ref in zip(results, serial):
        np.testing.assert_allclose(r, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_threads_is_public_validated_and_changes_no_bits(model_path: Path) -> None:
    """load(threads=N) and Model.threads set the matrix-product threads (default: physical cores);
    1 and 3 threads give the same logits bit for bit; bad counts and a thread count for a CUDA
    model are refused before anything is loaded."""
    assert pyrnn.load(model_path).threads == pyrnn._core.default_threads()
    one, three = pyrnn.load(model_path, threads=1), pyrnn.load(model_path, threads=3)
    assert (one.threads, three.threads) == (1, 3)
    tokens = np.random.default_rng(5).integers(0, one.n_vocab, 37).tolist()
    ref = one.forward(tokens, all_logits=True)
    np.testing.assert_array_equal(three.forward(tokens, all_logits=True), ref)
    three.threads = 2
    assert three.threads == 2
    np.testing.assert_array_equal(three.forward(tokens, all_logits=True), ref)
    for bad, err, msg in [(0, ValueError, "expected 1..1024, found 0"), (1025, ValueError, "found 1025"),
                          (-2, ValueError, "found -2"), (2.0, TypeError, "expected an int, found float"),
                          (True, TypeError, "found bool")]:
        with pytest.raises(err, match=msg):
            three.threads = bad  # type: ignore[assignment]
        with pytest.raises(err, match=msg):
            pyrnn.load(model_path, threads=bad)  # type: ignore[arg-type]
    assert three.threads == 2  # a refused count leaves the old one
    with pytest.raises(ValueError, match="threads: applies to device 'cpu' only, found device 'cuda:0'"):
        pyrnn.load(model_path, device="cuda", threads=2)


def test_threads_change_while_other_threads_run(model_path: Path) -> None:
    """Setting Model.threads while 3 threads run prefill and decode on one model: no call fails
    (each finishes on the pool it started with, which outlives the switch) and every result equals
    the serial one bit for bit, since the thread count changes no sum."""
    m = pyrnn.load(model_path, threads=2)
    rng = np.random.default_rng(8)
    seqs = [rng.integers(0, m.n_vocab, 48).tolist() for _ in range(3)]
    serial = [m.forward(t, all_logits=True) for t in seqs]
    results: list[list[np.ndarray]] = [[] for _ in seqs]

    def run(i: int) -> None:
        for _ in range(6):
            s = m.new_state()
            prefix = m.forward(seqs[i][:40], s, all_logits=True)
            results[i].append(np.concatenate([prefix, np.stack([m.forward([t], s) for t in seqs[i][40:]])]))

    def switch(n: int) -> None:
        m.threads = 1 + n % 3

    run_while_switching([lambda i=i: run(i) for i in range(3)], switch)
    for got, ref in zip(results, serial):
        assert len(got) == 6
        for g in got:
            np.testing.assert_array_equal(g, ref)


def test_one_state_in_two_threads_is_an_error(model: pyrnn.Model) -> None:
    """Using one state from two threads at once raises instead of silently corrupting it."""
    s = model.new_state()
    errors: list[Exception] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            for _ in range(50):
                model.forward(list(range(64)), s)
        except RuntimeError as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors and "already in use" in str(errors[0])


def test_tokenizer_round_trip(model: pyrnn.Model) -> None:
    """The tokenizer stored in the file encodes and decodes (World vocabulary cut to the model's 300)."""
    ids = model.tokenizer.encode("Hello, world\n\n")
    assert all(0 < i < model.n_vocab for i in ids)
    assert model.tokenizer.decode(ids) == b"Hello, world\n\n"
