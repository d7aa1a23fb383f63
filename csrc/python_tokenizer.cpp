// pybind11 bindings of pyrnn::world_tokenizer as pyrnn._core.WorldTokenizer.
// Checks happen here, at the border; long encodes/decodes run with the GIL released.
// Errors: std::out_of_range -> IndexError, std::invalid_argument -> ValueError (pybind11's own
// translations, so nothing global is registered here).
#include <pybind11/pybind11.h>
#include <pybind11/typing.h>

#include <climits>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer.h"

namespace py = pybind11;

namespace {

using pyrnn::world_tokenizer;

// Below these sizes the work takes about as long as giving up and retaking the GIL.
constexpr size_t release_gil_bytes = size_t{1} << 14;
constexpr size_t release_gil_ids = size_t{1} << 12;

// Views stay valid while the GIL is released: bytes and str are immutable and the caller's
// argument keeps them alive.
std::string_view bytes_view(const py::handle& b) {
    char* data = nullptr;
    Py_ssize_t size = 0;
    if (PyBytes_AsStringAndSize(b.ptr(), &data, &size) != 0) throw py::error_already_set();
    return {data, static_cast<size_t>(size)};
}

std::string_view utf8_view(const py::handle& s) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(s.ptr(), &size);  // lone surrogates: UnicodeEncodeError
    if (data == nullptr) throw py::error_already_set();
    return {data, static_cast<size_t>(size)};
}

std::string type_name(const py::handle& h) {
    return Py_TYPE(h.ptr())->tp_name;
}

// An int (or anything with __index__, e.g. a NumPy integer) in [INT32_MIN, INT32_MAX]; else
// `out_of_int32` is called with the value's str().
template <typename F>
int32_t to_int32(const py::handle& h, F&& out_of_int32) {
    PyObject* index = PyNumber_Index(h.ptr());  // TypeError for float, str, ...
    if (index == nullptr) throw py::error_already_set();
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
    if (overflow != 0 || v < INT32_MIN || v > INT32_MAX) out_of_int32(std::string(py::str(h)));
    return static_cast<int32_t>(v);
}

py::typing::List<int> encode_view(const world_tokenizer& tok, std::string_view text) {
    std::vector<int32_t> ids;
    if (text.size() >= release_gil_bytes) {
        py::gil_scoped_release nogil;
        ids = tok.encode(text);
    } else {
        ids = tok.encode(text);
    }
    py::typing::List<int> out(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
        PyObject* v = PyLong_FromLong(ids[i]);
        if (v == nullptr) throw py::error_already_set();
        PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), v);  // steals v
    }
    return out;
}

py::bytes decode(const world_tokenizer& tok, const py::typing::Iterable<int>& ids) {
    std::vector<int32_t> v;
    if (PyList_Check(ids.ptr()) || PyTuple_Check(ids.ptr())) v.reserve(py::len(ids));
    for (const py::handle id : ids) {
        v.push_back(to_int32(id, [&](const std::string& text) {
            throw std::out_of_range("decode: token id " + text + " is out of range for vocabulary size " +
                                    std::to_string(tok.vocab_size()));
        }));
    }
    std::string out;
    if (v.size() >= release_gil_ids) {
        py::gil_scoped_release nogil;
        out = tok.decode(v.data(), v.size());
    } else {
        out = tok.decode(v.data(), v.size());
    }
    return py::bytes(out);
}

std::shared_ptr<world_tokenizer> from_bytes_list(const py::typing::Iterable<py::bytes>& tokens) {
    std::vector<std::string> bytes;
    for (const py::handle t : tokens) {
        if (!PyBytes_Check(t.ptr())) {
            throw py::type_error("WorldTokenizer: tokens[" + std::to_string(bytes.size()) +
                                 "] must be bytes, not " + type_name(t));
        }
        bytes.emplace_back(bytes_view(t));
    }
    py::gil_scoped_release nogil;  // building the trie of a 64K vocabulary takes milliseconds
    return std::make_shared<world_tokenizer>(std::move(bytes));
}

std::shared_ptr<world_tokenizer> from_gguf_tokens(
    const py::typing::Iterable<py::typing::Union<py::bytes, py::str>>& tokens,
    const py::typing::Iterable<int>& token_types) {
    std::vector<std::string> texts;
    for (const py::handle t : tokens) {
        if (PyBytes_Check(t.ptr())) {
            texts.emplace_back(bytes_view(t));
        } else if (PyUnicode_Check(t.ptr())) {
            texts.emplace_back(utf8_view(t));
        } else {
            throw py::type_error("from_gguf_tokens: tokens[" + std::to_string(texts.size()) +
                                 "] must be bytes or str, not " + type_name(t));
        }
    }
    std::vector<int32_t> types;
    for (const py::handle t : token_types) {
        const size_t i = types.size();
        types.push_back(to_int32(t, [&](const std::string& text) {
            throw std::invalid_argument("from_gguf_tokens: token_types[" + std::to_string(i) + "] = " + text +
                                        " does not fit int32");
        }));
    }
    const std::vector<std::string_view> views(texts.begin(), texts.end());
    py::gil_scoped_release nogil;
    return std::make_shared<world_tokenizer>(world_tokenizer::from_gguf_tokens(views, types));
}

}  // namespace

void bind_tokenizer(py::module_& m) {
    py::class_<world_tokenizer, std::shared_ptr<world_tokenizer>>(m, "WorldTokenizer", R"doc(
RWKV "World" tokenizer (rwkv_vocab_v20230424): greedy longest-prefix match over bytes; the same
ids as the official rwkv.rwkv_tokenizer.TRIE_TOKENIZER. No BOS/EOS is added. Immutable, so one
tokenizer can serve several threads.

    >>> from pyrnn.converters.rwkv_vocab import load_world_vocab
    >>> tok = WorldTokenizer(load_world_vocab("rwkv_vocab_v20230424.txt"))
    >>> tok.encode("Hello world")
    [33155, 40213]
    >>> tok.decode([33155, 40213])
    b'Hello world'
)doc")
        .def(py::init(&from_bytes_list), py::arg("tokens"),
             "tokens[id] = raw bytes of token id; tokens[0] (\"<s>\", end of text) is never produced\n"
             "by encode. ValueError if some byte value has no single-byte token.")
        .def_static("from_gguf_tokens", &from_gguf_tokens, py::arg("tokens"), py::arg("token_types"),
                    "From GGUF tokenizer.ggml.tokens (repr(bytes)[2:-1] texts, as llama.cpp writes\n"
                    "them) and tokenizer.ggml.token_type. Tokens typed CONTROL (3) or UNUSED (5), and\n"
                    "id 0, are never produced by encode. ValueError on a malformed escape.")
        .def(
            "encode",
            [](const world_tokenizer& tok, const py::bytes& data) {
                return encode_view(tok, bytes_view(data));
            },
            py::arg("data"), "Token ids of the bytes (never fails; b'' gives []).")
        .def(
            "encode",
            [](const world_tokenizer& tok, const py::str& data) { return encode_view(tok, utf8_view(data)); },
            py::arg("data"), "Token ids of the UTF-8 encoding of the text.")
        .def("decode", &decode, py::arg("ids"),
             "Concatenated bytes of the ids (may be incomplete UTF-8 mid-stream). IndexError for an\n"
             "id outside [0, len(self)).")
        .def("__len__", &world_tokenizer::vocab_size, "Vocabulary size (ids are 0 .. len - 1).");
}
