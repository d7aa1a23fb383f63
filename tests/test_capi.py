"""The C API (csrc/include/pyrnn.h): built with CMake, driven through ctypes and examples/c/generate.c,
compared exactly with the Python package (logits, states, state bytes, tokenizer, sampler)."""

from __future__ import annotations

import ctypes as C
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from concurrency import run_while_switching
from tiny_models import rwkv7_state_dict, save_safetensors, tiny_rwkv7_gguf

import pyrnn
from pyrnn import _core

ROOT = Path(__file__).resolve().parents[1]
OK, ERR_ARGUMENT, ERR_FILE, ERR_FORMAT, ERR_STATE, ERR_UNSUPPORTED = 0, -1, -2, -3, -4, -5
TARGETS = ["pyrnn", "pyrnn_generate", "pyrnn_generate_static"]


@pytest.fixture(scope="session")
def build_dir() -> Path:
    """The C library and examples, built once per session (and kept: a rebuild is a no-op)."""
    if shutil.which("cmake") is None:
        pytest.fail("cmake not found: it is a test dependency (pip install '.[test]')")
    build = Path(os.environ.get("PYRNN_CAPI_BUILD_DIR", ROOT / "build" / "capi-test"))
    if not (build / "CMakeCache.txt").exists():
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DPYRNN_CAPI=ON", "-DPYRNN_PYTHON=OFF",
              "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", str(build), "--config", "Release", "-j2", "--target", *TARGETS])
    return build


def _run(cmd: list) -> None:
    """Run a build step; on failure show its output (the compiler's message) in the test report."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")


def _find(build: Path, stem: str) -> Path:
    for pattern in (stem, f"Release/{stem}"):
        found = sorted(build.glob(pattern))
        if found:
            return found[0]
    raise FileNotFoundError(f"{stem} in {build}")


def _exe(build: Path, name: str) -> Path:
    return _find(build, name + (".exe" if sys.platform == "win32" else ""))


@pytest.fixture(scope="session")
def lib(build_dir: Path) -> C.CDLL:
    names = {"win32": "pyrnn.dll", "darwin": "libpyrnn.dylib"}
    L = C.CDLL(str(_find(build_dir, names.get(sys.platform, "libpyrnn.so"))))
    vp, i32p, f32p = C.c_void_p, C.POINTER(C.c_int32), C.POINTER(C.c_float)
    sigs = {
        "pyrnn_version": (C.c_char_p, []), "pyrnn_last_error": (C.c_char_p, []), "pyrnn_last_status": (C.c_int, []),
        "pyrnn_status_name": (C.c_char_p, [C.c_int]),
        "pyrnn_model_load": (vp, [C.c_char_p]), "pyrnn_model_load_from_memory": (vp, [C.c_char_p, C.c_size_t]),
        "pyrnn_model_free": (None, [vp]), "pyrnn_model_set_threads": (C.c_int, [vp, C.c_int]),
        "pyrnn_model_threads": (C.c_int, [vp]),
        "pyrnn_model_arch": (C.c_char_p, [vp]), "pyrnn_model_fingerprint": (C.c_char_p, [vp]),
        "pyrnn_n_vocab": (C.c_int32, [vp]), "pyrnn_n_embd": (C.c_int32, [vp]), "pyrnn_n_layer": (C.c_int32, [vp]),
        "pyrnn_state_size": (C.c_size_t, [vp]),
        "pyrnn_eval": (C.c_int, [vp, vp, i32p, C.c_size_t, f32p]),
        "pyrnn_eval_all": (C.c_int, [vp, vp, i32p, C.c_size_t, f32p]),
        "pyrnn_state_new": (vp, [vp]), "pyrnn_state_clone": (vp, [vp]), "pyrnn_state_free": (None, [vp]),
        "pyrnn_state_reset": (C.c_int, [vp]), "pyrnn_state_copy": (C.c_int, [vp, vp]),
        "pyrnn_state_data": (f32p, [vp]),
        "pyrnn_state_serialized_size": (C.c_size_t, [vp]),
        "pyrnn_state_serialize": (C.c_int, [vp, C.c_char_p, C.c_size_t]),
        "pyrnn_state_deserialize": (C.c_int, [vp, C.c_char_p, C.c_size_t]),
        "pyrnn_tokenize": (C.c_int64, [vp, C.c_char_p, C.c_int64, i32p, C.c_size_t]),
        "pyrnn_detokenize": (C.c_int64, [vp, i32p, C.c_size_t, C.c_char_p, C.c_size_t]),
        "pyrnn_token_eos": (C.c_int32, [vp]),
        "pyrnn_sampler_new": (vp, [C.c_float, C.c_int32, C.c_float, C.c_uint64]),
        "pyrnn_sampler_free": (None, [vp]), "pyrnn_sampler_sample": (C.c_int32, [vp, f32p, C.c_int32]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(L, name)
        fn.restype, fn.argtypes = res, args
    return L


class CModel:
    """A thin ctypes face over one pyrnn_model handle (frees it with the object)."""

    def __init__(self, lib: C.CDLL, handle: int) -> None:
        assert handle, lib.pyrnn_last_error().decode()
        self.lib, self.h = lib, handle
        self.n_vocab = lib.pyrnn_n_vocab(handle)
        self.state_size = lib.pyrnn_state_size(handle)

    def __del__(self) -> None:
        self.lib.pyrnn_model_free(self.h)

    def new_state(self) -> int:
        return self.lib.pyrnn_state_new(self.h)

    def state_data(self, s: int) -> np.ndarray:
        return np.ctypeslib.as_array(self.lib.pyrnn_state_data(s), (self.state_size,)).copy()

    def eval(self, tokens: list[int], s: int, all_logits: bool = False) -> np.ndarray:
        ids = np.asarray(tokens, np.int32)
        out = np.zeros((len(tokens), self.n_vocab) if all_logits else self.n_vocab, np.float32)
        fn = self.lib.pyrnn_eval_all if all_logits else self.lib.pyrnn_eval
        rc = fn(self.h, s, ids.ctypes.data_as(C.POINTER(C.c_int32)), len(ids), out.ctypes.data_as(C.POINTER(C.c_float)))
        assert rc == OK, self.lib.pyrnn_last_error().decode()
        return out

    def serialize(self, s: int) -> bytes:
        n = self.lib.pyrnn_state_serialized_size(s)
        buf = C.create_string_buffer(n)
        assert self.lib.pyrnn_state_serialize(s, buf, n) == OK
        return buf.raw

    def tokenize(self, text: bytes) -> list[int]:
        n = self.lib.pyrnn_tokenize(self.h, text, len(text), None, 0)
        assert n >= 0, self.lib.pyrnn_last_error().decode()
        ids = (C.c_int32 * max(n, 1))()
        assert self.lib.pyrnn_tokenize(self.h, text, len(text), ids, n) == n
        return list(ids[:n])

    def detokenize(self, ids: list[int]) -> bytes:
        arr = (C.c_int32 * max(len(ids), 1))(*ids)
        n = self.lib.pyrnn_detokenize(self.h, arr, len(ids), None, 0)
        assert n >= 0, self.lib.pyrnn_last_error().decode()
        buf = C.create_string_buffer(n + 1)
        assert self.lib.pyrnn_detokenize(self.h, arr, len(ids), buf, n + 1) == n
        return buf.raw[:n]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_rwkv7_gguf(tmp_path_factory.mktemp("capi"))  # World vocabulary, first 300 ids


@pytest.fixture(scope="module")
def py_model(model_path: Path) -> pyrnn.Model:
    return pyrnn.load(model_path)


@pytest.fixture(scope="module")
def c_model(lib: C.CDLL, model_path: Path) -> CModel:
    return CModel(lib, lib.pyrnn_model_load(str(model_path).encode()))


def _error(lib: C.CDLL) -> tuple[int, str]:
    return lib.pyrnn_last_status(), lib.pyrnn_last_error().decode()


def test_identity_matches_python(lib: C.CDLL, c_model: CModel, py_model: pyrnn.Model, model_path: Path) -> None:
    """Version, arch, sizes and the model fingerprint (file and in-memory loads) equal Python's."""
    assert lib.pyrnn_version().decode() == pyrnn.__version__
    assert lib.pyrnn_model_arch(c_model.h).decode() == py_model.arch
    assert (c_model.n_vocab, lib.pyrnn_n_embd(c_model.h), lib.pyrnn_n_layer(c_model.h), c_model.state_size) == (
        py_model.n_vocab, py_model.n_embd, py_model.n_layer, py_model.state_size)
    assert lib.pyrnn_model_fingerprint(c_model.h).decode() == py_model.fingerprint
    blob = model_path.read_bytes()
    mem = CModel(lib, lib.pyrnn_model_load_from_memory(blob, len(blob)))
    assert lib.pyrnn_model_fingerprint(mem.h).decode() == py_model.fingerprint


def test_logits_and_state_equal_python(lib: C.CDLL, c_model: CModel, py_model: pyrnn.Model) -> None:
    """pyrnn_eval / pyrnn_eval_all give Python's logits and state bit for bit, prefill and step by step,
    with 1 thread and the default."""
    tokens = [17, 3, 250, 99, 0, 42, 299, 7]
    ps = py_model.new_state()
    ref_all = py_model.forward(tokens, ps, all_logits=True)
    for threads in (1, 0):
        assert lib.pyrnn_model_set_threads(c_model.h, threads) == OK
        s = c_model.new_state()
        np.testing.assert_array_equal(c_model.eval(tokens, s, all_logits=True), ref_all)
        np.testing.assert_array_equal(c_model.state_data(s), ps.data)
        s2 = c_model.new_state()
        np.testing.assert_array_equal(c_model.eval(tokens[:5], s2), ref_all[4])
        for i, t in enumerate(tokens[5:], 5):
            np.testing.assert_array_equal(c_model.eval([t], s2), py_model.forward(tokens[:i + 1]))
        lib.pyrnn_state_free(s)
        lib.pyrnn_state_free(s2)


def test_set_threads_while_other_threads_evaluate(lib: C.CDLL, model_path: Path, py_model: pyrnn.Model) -> None:
    """pyrnn_model_set_threads may run while other threads evaluate the model (ctypes releases the
    GIL): every call succeeds and gives Python's logits bit for bit."""
    m = CModel(lib, lib.pyrnn_model_load(str(model_path).encode()))
    tokens = [int(t) for t in np.random.default_rng(9).integers(0, m.n_vocab, 40)]
    ref = py_model.forward(tokens, all_logits=True)
    failures: list[str] = []

    def run() -> None:
        for _ in range(8):
            s = m.new_state()
            try:
                if not np.array_equal(m.eval(tokens, s, all_logits=True), ref):
                    failures.append("logits differ")
            finally:
                lib.pyrnn_state_free(s)

    def switch(n: int) -> None:
        assert lib.pyrnn_model_set_threads(m.h, n % 4) == OK  # 0 = physical cores

    run_while_switching([run, run, run], switch)
    assert failures == []


def test_state_clone_copy_reset(lib: C.CDLL, c_model: CModel, py_model: pyrnn.Model) -> None:
    """A cloned or copied state continues like the original; reset returns to the initial state."""
    s = c_model.new_state()
    c_model.eval([5, 6, 7], s)
    fork, dst = lib.pyrnn_state_clone(s), c_model.new_state()
    assert lib.pyrnn_state_copy(dst, s) == OK
    a = c_model.eval([8], s)
    np.testing.assert_array_equal(c_model.eval([8], fork), a)
    np.testing.assert_array_equal(c_model.eval([8], dst), a)
    assert lib.pyrnn_state_reset(s) == OK
    np.testing.assert_array_equal(c_model.state_data(s), py_model.new_state().data)
    for h in (s, fork, dst):
        lib.pyrnn_state_free(h)


def test_state_bytes_move_between_c_and_python(lib: C.CDLL, c_model: CModel, py_model: pyrnn.Model) -> None:
    """C writes exactly Python's bytes for the same state; each side loads the other's and continues exactly."""
    tokens = [11, 12, 13, 200]
    ps = py_model.new_state()
    py_model.forward(tokens, ps)
    s = c_model.new_state()
    c_model.eval(tokens, s)
    c_blob = c_model.serialize(s)
    assert c_blob == bytes(ps)
    restored = pyrnn.State.from_bytes(py_model, c_blob)
    other = c_model.new_state()
    assert lib.pyrnn_state_deserialize(other, bytes(ps), len(bytes(ps))) == OK
    ref = py_model.forward([14], ps)
    np.testing.assert_array_equal(py_model.forward([14], restored), ref)
    np.testing.assert_array_equal(c_model.eval([14], other), ref)
    lib.pyrnn_state_free(s)
    lib.pyrnn_state_free(other)


@pytest.mark.parametrize("text", ["Hello world", "", "  spaces\n\nand\ttabs", "héllo wörld ☃ 🐍", "\x00\xff"])
def test_tokenizer_matches_python(c_model: CModel, py_model: pyrnn.Model, text: str) -> None:
    """World trie encode and decode in C give the Python tokenizer's ids and bytes."""
    data = text.encode("utf-8")
    ids = c_model.tokenize(data)
    assert ids == py_model.tokenizer.encode(data)
    assert c_model.detokenize(ids) == py_model.tokenizer.decode(ids) == data


def test_tokenize_and_detokenize_report_needed_room(lib: C.CDLL, c_model: CModel) -> None:
    """Too small an output buffer: the full count comes back and only what fits is written (NUL-ended)."""
    text = b"abcdef"
    ids = (C.c_int32 * 2)(-7, -7)
    assert lib.pyrnn_tokenize(c_model.h, text, -1, ids, 1) == 6 and list(ids) == [text[0] + 1, -7]
    buf = C.create_string_buffer(b"\x7f" * 4, 4)
    arr = (C.c_int32 * 6)(*c_model.tokenize(text))
    assert lib.pyrnn_detokenize(c_model.h, arr, 6, buf, 4) == 6
    assert buf.raw == b"abc\0"


# Text for the BPE encoder: every branch of the GPT-2 pre-tokenizer regex (contractions, optional
# space + letters/numbers/other, white-space runs before a word and at the end), added tokens
# (<|endoftext|>, NeoX's runs of spaces), scripts and symbols outside Latin, and characters that
# Python's isspace() and Unicode's White_Space (what \s means to tokenizers) disagree on.
BPE_TEXTS = [
    "Hello world", "", " ", "\n", "  leading", "trailing   ", "tabs\tand\nnew\n\n\nlines \n x",
    "multiple     spaces  between   words", "I'm can't we'll they've she'd you're IT'S 'S 'Ll o'clock ''s",
    "numbers 12345 3.14159 1,000,000 ٣٤٥ ½ Ⅻ ²", "punctuation!!! ??? ... ---- (((x))) @#$%^&*", "a'sa 'll' ' '",
    "def f(x):\n    return x**2  # comment\n\tpass\r\n", "naïve café résumé Ångström", "e\u0301 combining n\u0303",
    "日本語のテキスト、中文文本。한국어", "Ελληνικά Русский текст", "العربية עברית", "हिन्दी देवनागरी ไทย",
    "👍🏽 family 👨‍👩‍👧 flags 🇫🇷 ☃", "\u00a0nbsp\u3000ideographic\u2028line\x85nel \x1cfs\x0bvt\x0cff\u200bzw",
    "<|endoftext|>between<|endoftext|>", "text<|endoftext|>", "<|endoftext|", "<|padding|><|endoftext|>x",
    "ＡＢＣ fullwidth 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ROMEO:\nBut soft, what light through yonder window breaks?\n", "a" * 3000,
    "ab " * 300 + "xyz" * 700, "  \t  \n\n  word  ", "x" + " " * 30 + "y" + "\t" * 5,
]


def _random_texts(n: int, seed: int) -> list[str]:
    """Strings drawn from pools of ASCII, Latin-1, combining marks, CJK, emoji and white space."""
    rng = np.random.default_rng(seed)
    pools = ["abcXYZ019 '.,!?-_\n\t", "àéîõüßÆ¿¡×", "\u0301\u0308\u0327", "中文日本語한국", "👍🐍🇫🇷\u200d",
             "\u00a0\u3000\u2009\x85\x0b", "'sllvedmtre"]
    out = []
    for _ in range(n):
        length = int(rng.integers(0, 40))
        out.append("".join(rng.choice(list(pools[int(rng.integers(len(pools)))])) for _ in range(length)))
    return out


def _bpe_model(tmp: Path, tokenizer_json: Path, n_vocab: int, seed: int) -> Path:
    from pyrnn.converters.convert import convert

    src = save_safetensors(rwkv7_state_dict(64, 1, n_vocab, (16, 16, 16, 16), seed), tmp / f"b{seed}.safetensors")
    path = tmp / f"bpe{seed}.gguf"
    convert(src, path, out_type="f32", vocab=tokenizer_json)
    return path


@pytest.fixture(scope="module")
def neox_gpt2_pre(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full GPT-NeoX vocabulary (50,277 ids, 50,009 merges, 25 added tokens) with its NFC normalizer
    taken out, so the file says tokenizer.ggml.pre "gpt-2": the largest real merge table we have."""
    import json

    from pyrnn.converters.bpe_vocab import bundled_neox_tokenizer

    tmp = tmp_path_factory.mktemp("neox")
    doc = json.loads(bundled_neox_tokenizer().read_text(encoding="utf-8"))
    doc["normalizer"] = None
    (tmp / "tokenizer.json").write_text(json.dumps(doc), encoding="utf-8")
    return _bpe_model(tmp, tmp / "tokenizer.json", 50277, 3)


@pytest.mark.parametrize("which", ["default", "neox"])
def test_bpe_encode_matches_tokenizers(lib: C.CDLL, neox_gpt2_pre: Path, which: str) -> None:
    """pyrnn_tokenize on byte-level BPE files ("gpt-2" pre-tokenizer) gives exactly the ids of the Python
    tokenizer (the `tokenizers` library on the tokenizer.json rebuilt from the file), on hand-picked and
    random text; pyrnn_detokenize gives the text back. The default model has 1,024 ids of which one is
    added; the NeoX file exercises 50,009 merges and user-defined added tokens (runs of spaces)."""
    path = pyrnn.default_model_path() if which == "default" else neox_gpt2_pre
    py = pyrnn.load(path)
    assert py.metadata.value("tokenizer.ggml.model") == "gpt2" and py.metadata.value("tokenizer.ggml.pre") == "gpt-2"
    cm = CModel(lib, lib.pyrnn_model_load(str(path).encode()))
    for text in BPE_TEXTS + _random_texts(300, 11):
        ids = cm.tokenize(text.encode("utf-8"))
        assert ids == py.tokenizer.encode(text), repr(text)
        assert cm.detokenize(ids) == text.encode("utf-8"), repr(text)
    if which == "neox":  # the json file itself (not rebuilt from the GGUF) agrees too
        from tokenizers import Tokenizer

        direct = Tokenizer.from_file(str(neox_gpt2_pre.parent / "tokenizer.json"))
        for text in BPE_TEXTS:
            assert cm.tokenize(text.encode("utf-8")) == direct.encode(text, add_special_tokens=False).ids, repr(text)


def test_bpe_encode_of_a_shakespeare_chunk(lib: C.CDLL) -> None:
    """The default model's own kind of text (its docs' prompt, repeated with variations), a long input at once."""
    py = pyrnn.load(pyrnn.default_model_path())
    cm = CModel(lib, lib.pyrnn_model_load(str(pyrnn.default_model_path()).encode()))
    text = "".join(f"KING RICHARD {'I' * (i % 4)}:\nWhat say'st thou, {i}? 'Tis done;--   I'll\n\n" for i in range(200))
    assert cm.tokenize(text.encode()) == py.tokenizer.encode(text)


@pytest.mark.parametrize("bad,offset", [(b"abc\xff", 3), (b"\xc0\x80", 0), (b"ok\xed\xa0\x80", 2),
                                        (b"\xf4\x90\x80\x80", 0), (b"\xe3\x81", 0), (b"a\x80b", 1)])
def test_bpe_encode_refuses_invalid_utf8(lib: C.CDLL, bad: bytes, offset: int) -> None:
    """Invalid UTF-8 (stray continuation, overlong, surrogate, above U+10FFFF, truncated) is an argument error
    that names the byte, not a guess."""
    cm = CModel(lib, lib.pyrnn_model_load(str(pyrnn.default_model_path()).encode()))
    assert lib.pyrnn_tokenize(cm.h, bad, len(bad), None, 0) == ERR_ARGUMENT
    assert _error(lib) == (ERR_ARGUMENT, f"text: expected UTF-8, found an invalid sequence at byte {offset}")


def test_bpe_nfc_vocabulary_encodes_ascii_only(lib: C.CDLL, tmp_path: Path) -> None:
    """tokenizer.ggml.pre "mpt" (GPT-NeoX with its NFC normalizer): ASCII, which NFC leaves alone, encodes
    as in Python; other text is refused (the C API does not normalize) rather than tokenized differently.
    Decoding works for any ids."""
    from pyrnn.converters.bpe_vocab import bundled_neox_tokenizer

    path = _bpe_model(tmp_path, Path(bundled_neox_tokenizer()), 300, 5)
    py = pyrnn.load(path)
    assert py.metadata.value("tokenizer.ggml.pre") == "mpt"
    cm = CModel(lib, lib.pyrnn_model_load(str(path).encode()))
    ids = list(range(0, 300, 7))
    assert cm.detokenize(ids) == py.tokenizer.decode(ids)
    assert lib.pyrnn_token_eos(cm.h) == py.metadata.value("tokenizer.ggml.eos_token_id")
    for text in [t for t in BPE_TEXTS if t.isascii()]:
        assert cm.tokenize(text.encode()) == py.tokenizer.encode(text), repr(text)
    assert lib.pyrnn_tokenize(cm.h, "café".encode(), -1, None, 0) == ERR_UNSUPPORTED
    assert "NFC normalization is not implemented" in _error(lib)[1]


@pytest.mark.parametrize("temp,top_k,top_p,seed", [(0.0, 0, 1.0, 1), (1.0, 0, 1.0, 7), (0.7, 20, 1.0, 8),
                                                  (1.3, 0, 0.9, 9), (0.9, 50, 0.5, 2**64 - 1)])
def test_sampler_is_pythons_sampler(lib: C.CDLL, temp: float, top_k: int, top_p: float, seed: int) -> None:
    """pyrnn_sampler_sample picks exactly the tokens of Python's sampler (one C++ sampler) for the same seed."""
    rng = np.random.default_rng(seed % 1000)
    sampler = lib.pyrnn_sampler_new(temp, top_k, top_p, seed)
    params = _core.SamplerParams(temperature=temp, top_k=top_k, top_p=top_p)
    py_rng = _core.Rng(seed)
    for _ in range(30):
        logits = (rng.standard_normal(257) * 3).astype(np.float32)
        logits[rng.integers(0, 257)] = logits.max()  # a tie: the lower id comes first
        got = lib.pyrnn_sampler_sample(sampler, logits.ctypes.data_as(C.POINTER(C.c_float)), 257)
        assert got == _core.sample(logits, params, py_rng)
    lib.pyrnn_sampler_free(sampler)


def _greedy_python(model: pyrnn.Model, prompt: str, n: int) -> bytes:
    s = model.new_state()
    logits = model.forward(model.tokenizer.encode(prompt), s)
    out = b""
    for _ in range(n):
        tok = int(np.argmax(logits))
        if tok == 0:  # eos of the World vocabulary
            break
        out += model.tokenizer.decode([tok])
        logits = model.forward([tok], s)
    return out


def test_generate_example(build_dir: Path, model_path: Path, py_model: pyrnn.Model, tmp_path: Path) -> None:
    """examples/c/generate.c (shared and static builds) prints Python's greedy continuation, samples the same
    text in both builds for a seed, and saves a state Python loads and recognises."""
    shared, static = _exe(build_dir, "pyrnn_generate"), _exe(build_dir, "pyrnn_generate_static")
    prompt = "Hello world"
    greedy = subprocess.run([shared, model_path, prompt, "-n", "24", "--temp", "0"], capture_output=True, check=True)
    assert greedy.stdout.replace(b"\r\n", b"\n") == prompt.encode() + _greedy_python(py_model, prompt, 24) + b"\n"
    assert b"rwkv7" in greedy.stderr
    args = [model_path, prompt, "-n", "24", "--temp", "0.8", "--top-k", "40", "--top-p", "0.95", "--seed", "5"]
    runs = [subprocess.run([exe, *args], capture_output=True, check=True).stdout for exe in (shared, static)]
    assert runs[0] == runs[1] and runs[0].startswith(prompt.encode()) and len(runs[0]) > len(prompt) + 1
    state_file = tmp_path / "prompt.state"
    subprocess.run([shared, model_path, prompt, "-n", "0", "--state-out", state_file], capture_output=True, check=True)
    ref = py_model.new_state()
    py_model.forward(py_model.tokenizer.encode(prompt), ref)
    np.testing.assert_array_equal(pyrnn.State.load(py_model, state_file).data, ref.data)


def test_generate_example_with_the_default_model(build_dir: Path) -> None:
    """The C program on the packaged model (a BPE vocabulary): the prompt is tokenized in C and the greedy
    continuation is Python's."""
    path = pyrnn.default_model_path()
    prompt = "ROMEO:\nBut soft, what light"
    run = subprocess.run([_exe(build_dir, "pyrnn_generate"), path, prompt, "-n", "32", "--temp", "0"],
                         capture_output=True, check=True)
    expected = prompt.encode() + _greedy_python(pyrnn.load(path), prompt, 32) + b"\n"
    assert run.stdout.replace(b"\r\n", b"\n") == expected


def test_generate_example_reports_errors(build_dir: Path, tmp_path: Path) -> None:
    """A missing model file: exit status 1 and the library's message, no crash."""
    run = subprocess.run([_exe(build_dir, "pyrnn_generate"), tmp_path / "missing.gguf", "hi"], capture_output=True)
    assert run.returncode == 1 and b"missing.gguf" in run.stderr


def test_load_errors(lib: C.CDLL, model_path: Path, tmp_path: Path) -> None:
    """Missing file, garbage, a truncated model and a NULL path: NULL, a status and a message naming the problem."""
    assert not lib.pyrnn_model_load(str(tmp_path / "nope.gguf").encode())
    status, msg = _error(lib)
    assert status == ERR_FILE and "nope.gguf" in msg
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOTGGUF" + bytes(100))
    assert not lib.pyrnn_model_load(str(bad).encode())
    status, msg = _error(lib)
    assert status == ERR_FORMAT and "magic" in msg and "bad.gguf" in msg
    blob = model_path.read_bytes()[:5000]
    assert not lib.pyrnn_model_load_from_memory(blob, len(blob))
    status, msg = _error(lib)
    assert status == ERR_FORMAT and msg.startswith("model in memory: ")
    assert not lib.pyrnn_model_load(None)
    assert _error(lib) == (ERR_ARGUMENT, "path: expected a pointer, found NULL")
    assert lib.pyrnn_status_name(ERR_FORMAT) == b"PYRNN_ERR_FORMAT"


@pytest.mark.parametrize("damage,message", [
    (lambda b: b[:10], "expected at least"),
    (lambda b: b"XXXXXXXX" + b[8:], "state magic"),
    (lambda b: b[:8] + (2).to_bytes(4, "little") + b[12:], "format version"),
    (lambda b: b[:-4], "state data: expected"),
    (lambda b: b + b"\0\0\0\0", "state data: expected"),
    (lambda b: b[:12] + (10**9).to_bytes(4, "little") + b[16:], "header length"),
    (lambda b: b[:16] + b"x" + b[17:], "state header"),
    (lambda b: b.replace(b'"rwkv7"', b'"rwkv6"'), "expected a rwkv7 state"),
])
def test_damaged_state_bytes(lib: C.CDLL, c_model: CModel, py_model: pyrnn.Model, damage, message: str) -> None:
    """Damaged state bytes: PYRNN_ERR_STATE with the message Python gives, and the state is left unchanged
    (Python refuses the same bytes)."""
    s = c_model.new_state()
    c_model.eval([1, 2], s)
    before = c_model.state_data(s)
    bad = damage(c_model.serialize(s))
    assert lib.pyrnn_state_deserialize(s, bad, len(bad)) == ERR_STATE
    assert message in lib.pyrnn_last_error().decode()
    np.testing.assert_array_equal(c_model.state_data(s), before)
    with pytest.raises(ValueError):
        pyrnn.State.from_bytes(py_model, bad)
    lib.pyrnn_state_free(s)


def test_state_of_another_model_is_refused(lib: C.CDLL, c_model: CModel, tmp_path: Path) -> None:
    """Bytes or a state handle of another model file (same shapes, other weights) are refused by name."""
    other = CModel(lib, lib.pyrnn_model_load(str(tiny_rwkv7_gguf(tmp_path, seed=1)).encode()))
    foreign = other.new_state()
    blob = other.serialize(foreign)
    s = c_model.new_state()
    assert lib.pyrnn_state_deserialize(s, blob, len(blob)) == ERR_STATE
    assert "another model" in lib.pyrnn_last_error().decode()
    ids = (C.c_int32 * 1)(1)
    assert lib.pyrnn_eval(c_model.h, foreign, ids, 1, None) == ERR_STATE
    assert lib.pyrnn_state_copy(s, foreign) == ERR_STATE
    lib.pyrnn_state_free(foreign)
    lib.pyrnn_state_free(s)


def test_argument_errors(lib: C.CDLL, c_model: CModel) -> None:
    """Out-of-range tokens, empty input, NULL handles and short buffers: an error code and message, no crash,
    the state unchanged."""
    s = c_model.new_state()
    before = c_model.state_data(s)
    V = c_model.n_vocab
    for bad in ([1, V], [-1]):
        ids = (C.c_int32 * len(bad))(*bad)
        assert lib.pyrnn_eval(c_model.h, s, ids, len(bad), None) == ERR_ARGUMENT
        pos = len(bad) - 1
        assert lib.pyrnn_last_error().decode() == f"tokens[{pos}]: expected an id in [0, {V}), found {bad[pos]}"
    ids = (C.c_int32 * 1)(1)
    assert lib.pyrnn_eval(c_model.h, s, ids, 0, None) == ERR_ARGUMENT
    assert lib.pyrnn_eval_all(c_model.h, s, ids, 1, None) == ERR_ARGUMENT
    assert lib.pyrnn_eval(None, s, ids, 1, None) == ERR_ARGUMENT
    assert lib.pyrnn_eval(c_model.h, None, ids, 1, None) == ERR_ARGUMENT
    np.testing.assert_array_equal(c_model.state_data(s), before)
    assert lib.pyrnn_model_set_threads(c_model.h, -1) == ERR_ARGUMENT
    assert lib.pyrnn_model_threads(c_model.h) >= 1
    assert lib.pyrnn_state_serialize(s, C.create_string_buffer(8), 8) == ERR_ARGUMENT
    bad_ids = (C.c_int32 * 1)(V)
    assert lib.pyrnn_detokenize(c_model.h, bad_ids, 1, None, 0) == ERR_ARGUMENT
    assert str(V) in lib.pyrnn_last_error().decode()
    sampler = lib.pyrnn_sampler_new(1.0, 0, 1.0, 1)
    nan = np.array([0.0, np.nan], np.float32)
    assert lib.pyrnn_sampler_sample(sampler, nan.ctypes.data_as(C.POINTER(C.c_float)), 2) == ERR_ARGUMENT
    assert lib.pyrnn_sampler_sample(None, nan.ctypes.data_as(C.POINTER(C.c_float)), 2) == ERR_ARGUMENT
    lib.pyrnn_sampler_free(sampler)
    assert (lib.pyrnn_n_vocab(None), lib.pyrnn_state_size(None), lib.pyrnn_state_new(None)) == (-1, 0, None)
    lib.pyrnn_state_free(s)
    lib.pyrnn_model_free(None)
    lib.pyrnn_state_free(None)


def _jdk_include() -> Path | None:
    javac = shutil.which("javac")
    if javac is None or shutil.which("java") is None:
        return None
    home = Path(os.environ.get("JAVA_HOME") or Path(os.path.realpath(javac)).parents[1])
    return home / "include" if (home / "include" / "jni.h").exists() else None


@pytest.mark.skipif(_jdk_include() is None or sys.platform != "linux",
                    reason="a JDK (javac, java, jni.h) is optional: without one the Android JNI glue is not checked")
def test_android_jni_glue_on_a_desktop_jvm(build_dir: Path, model_path: Path, py_model: pyrnn.Model,
                                           tmp_path: Path) -> None:
    """examples/android compiles warning-free against jni.h and, on a desktop JVM, generates Python's greedy
    text; a missing model becomes a Java RuntimeException with pyrnn's message."""
    inc, android = _jdk_include(), ROOT / "examples" / "android"
    lib_dir = _find(build_dir, "libpyrnn.so").parent
    _run([os.environ.get("CC", "cc"), "-std=c99", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-pedantic",
          f"-I{inc}", f"-I{inc}/linux", f"-I{ROOT}/csrc/include", android / "pyrnn_jni.c",
          f"-L{lib_dir}", "-lpyrnn", f"-Wl,-rpath,{lib_dir}", "-o", tmp_path / "libpyrnn_jni.so"])
    _run(["javac", "-Xlint:all", "-Werror", "-d", tmp_path, android / "PyrnnJni.java"])
    java = ["java", f"-Djava.library.path={tmp_path}", "-cp", str(tmp_path), "org.pyrnn.PyrnnJni"]
    run = subprocess.run([*java, model_path, "Hello world", "24"], capture_output=True, check=True)
    assert run.stdout == b"Hello world" + _greedy_python(py_model, "Hello world", 24) + b"\n"
    run = subprocess.run([*java, tmp_path / "missing.gguf", "Hello"], capture_output=True)
    assert run.returncode == 1 and b"RuntimeException: cannot open" in run.stderr
