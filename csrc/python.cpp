// python.cpp — pybind11 bindings for pyrnn._core. Arguments are checked here, at the border;
// the GIL is released while C++ computes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "gguf.h"
#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "models/model.h"
#include "python_forward.h"
#include "quant.h"

namespace py = pybind11;
using namespace pyrnn;

void bind_tokenizer(py::module_& m); // python_tokenizer.cpp
void bind_bench(py::module_& m);     // python_bench.cpp
void bind_sampler(py::module_& m);   // python_sampler.cpp
void bind_cuda(py::module_& m);      // python_cuda.cpp (the optional CUDA backend)

namespace {

// A GGUF string: str when it is valid UTF-8, else bytes (RWKV World tokens are raw bytes).
py::object to_py_string(std::string_view s) {
    PyObject* u = PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "strict");
    if (u) return py::reinterpret_steal<py::object>(u);
    PyErr_Clear();
    return py::bytes(s.data(), s.size());
}

py::object scalar_to_py(gguf_type t, const uint8_t* p, const std::string& key) {
    gguf_value v;
    v.type = t;
    v.data = p;
    switch (t) {
    case gguf_type::FLOAT32: case gguf_type::FLOAT64: return py::float_(v.as_float(key));
    case gguf_type::BOOL: return py::bool_(*p != 0);
    case gguf_type::UINT64: return py::int_(v.as_uint(key));
    default: return py::int_(v.as_int(key));
    }
}

py::object value_to_py(const gguf_value& v, const std::string& key) {
    if (v.type == gguf_type::STRING) return to_py_string(v.strings[0]);
    if (!v.is_array()) return scalar_to_py(v.type, v.data, key);
    py::list out(v.count);
    if (v.elem_type == gguf_type::STRING) {
        for (uint64_t i = 0; i < v.count; i++) out[i] = to_py_string(v.strings[i]);
        return std::move(out);
    }
    const size_t step = gguf_scalar_size(v.elem_type);
    for (uint64_t i = 0; i < v.count; i++) out[i] = scalar_to_py(v.elem_type, v.data + i * step, key);
    return std::move(out);
}

// Shared ownership so that numpy views of tensor bytes keep the mapping alive.
using gguf_ptr = std::shared_ptr<gguf_file>;

py::dict tensor_info(const gguf_tensor& t) {
    py::dict d;
    d["name"] = t.name;
    py::list ne;
    for (uint32_t i = 0; i < t.n_dims; i++) ne.append(t.ne[i]);
    d["ne"] = py::tuple(ne);
    py::list shape; // numpy (row-major) order: reversed ne
    for (uint32_t i = t.n_dims; i-- > 0;) shape.append(t.ne[i]);
    d["shape"] = py::tuple(shape);
    d["type"] = t.type;
    d["type_name"] = find_type(t.type)->name;
    d["offset"] = t.offset;
    d["n_elements"] = t.n_elements;
    d["n_bytes"] = t.n_bytes;
    return d;
}

py::array tensor_bytes(const gguf_ptr& f, const std::string& name) {
    const gguf_tensor& t = f->tensor(name);
    py::capsule owner(new gguf_ptr(f), [](void* p) { delete static_cast<gguf_ptr*>(p); });
    py::array_t<uint8_t> a({py::ssize_t(t.n_bytes)}, {py::ssize_t(1)}, t.data, owner);
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return std::move(a);
}

// Y = X·Wᵀ with the kernel of one ISA ("" = the active one): W as raw bytes of `type`, X (n, cols);
// with `packed`, W is what pack() made and the ISA's packed kernel runs.
py::array_t<float> gemm(py::array w, uint32_t type, int64_t rows, int64_t cols,
                        py::array_t<float, py::array::c_style | py::array::forcecast> x, std::string isa, bool packed) {
    const type_traits* tt = find_type(type);
    if (tt == nullptr) throw py::value_error("type: expected a ggml type id, found " + std::to_string(type));
    if (x.ndim() != 1 && x.ndim() != 2) throw py::value_error("x: expected 1 or 2 dimensions, found " + std::to_string(x.ndim()));
    const kernel_table* k = isa.empty() ? &kernels() : kernels_for(isa);
    if (k == nullptr) throw py::value_error("isa: expected one of the available ISAs, found '" + isa + "'");
    if (k->gemm[type] == nullptr) throw py::value_error(std::string("type: no kernel for ") + tt->name);
    if (packed && k->packed[type] == nullptr) {
        throw py::value_error(std::string("packed: ") + k->isa + " has no packed kernel for " + tt->name);
    }
    if (rows < 0 || cols < 0) throw py::value_error("rows, cols: expected non-negative sizes");
    if (packed && rows % PACK_ROWS != 0) {
        throw py::value_error("rows: expected a multiple of " + std::to_string(PACK_ROWS) + " (packed), found " + std::to_string(rows));
    }
    const int64_t n = x.ndim() == 2 ? x.shape(0) : 1;
    if (x.shape(x.ndim() - 1) != cols) {
        throw py::value_error("x: expected " + std::to_string(cols) + " elements per row, found " +
                              std::to_string(x.shape(x.ndim() - 1)));
    }
    if (cols % tt->block_size != 0) {
        throw py::value_error("cols: expected a multiple of " + std::to_string(tt->block_size) + ", found " + std::to_string(cols));
    }
    const uint64_t need = packed ? uint64_t(rows / PACK_ROWS) * packed_group_bytes(type, cols)
                                 : uint64_t(rows) * row_bytes(type, uint64_t(cols));
    if (!(w.flags() & py::array::c_style)) throw py::value_error("w: expected a C-contiguous array");
    if (uint64_t(w.nbytes()) != need) {
        throw py::value_error("w: expected " + std::to_string(need) + " bytes, found " + std::to_string(w.nbytes()));
    }
    py::array_t<float> y = x.ndim() == 2 ? py::array_t<float>({py::ssize_t(n), py::ssize_t(rows)}) : py::array_t<float>(rows);
    const void* wp = w.data();
    const float* xp = x.data();
    float* yp = y.mutable_data();
    {
        py::gil_scoped_release nogil;
        (packed ? k->packed : k->gemm)[type](wp, xp, yp, rows, cols, n, rows);
    }
    return y;
}

// W (rows × cols of `type`, the file's layout) in packed.h's 16-row layout, for gemm(packed=True).
py::array_t<uint8_t> pack(py::array w, uint32_t type, int64_t rows, int64_t cols) {
    if (!packable(type)) {
        throw py::value_error("type: expected q4_0, q8_0, f32, f16 or bf16 (the packed types), found " + std::to_string(type));
    }
    if (rows <= 0 || rows % PACK_ROWS != 0) {
        throw py::value_error("rows: expected a positive multiple of " + std::to_string(PACK_ROWS) + ", found " + std::to_string(rows));
    }
    const int64_t bs = find_type(type)->block_size;
    if (cols <= 0 || cols % bs != 0) {
        throw py::value_error("cols: expected a positive multiple of " + std::to_string(bs) + ", found " + std::to_string(cols));
    }
    const uint64_t need = uint64_t(rows) * row_bytes(type, uint64_t(cols));
    if (!(w.flags() & py::array::c_style) || uint64_t(w.nbytes()) != need) {
        throw py::value_error("w: expected " + std::to_string(need) + " C-contiguous bytes, found " + std::to_string(w.nbytes()));
    }
    const packed_matrix p = pack_rows(type, w.data(), rows, cols);
    const uint64_t bytes = uint64_t(rows / PACK_ROWS) * packed_group_bytes(type, cols);
    py::array_t<uint8_t> out(static_cast<py::ssize_t>(bytes));
    std::memcpy(out.mutable_data(), p.data(), bytes);
    return out;
}

using model_ptr = std::shared_ptr<model>;

void check_state(const model& m, const py::array& state) {
    if (!py::isinstance<py::array_t<float>>(state) || state.ndim() != 1) {
        throw py::value_error("state: expected a 1-d float32 array, found dtype " +
                              std::string(py::str(state.dtype())) + " with " + std::to_string(state.ndim()) + " dims");
    }
    if (size_t(state.shape(0)) != m.state_size()) {
        throw py::value_error("state: expected " + std::to_string(m.state_size()) + " floats for this " + m.arch() +
                              " model, found " + std::to_string(state.shape(0)));
    }
    if (!(state.flags() & py::array::c_style) || !state.writeable()) {
        throw py::value_error("state: expected a writable contiguous array");
    }
}

py::array_t<float> forward(const model& m, py::object tokens_in, py::array state, bool all_logits) {
    check_state(m, state);
    const std::vector<int32_t> ids = checked_tokens(tokens_in, m.n_vocab());
    const size_t n = ids.size();
    const int32_t* tp = ids.data();
    py::array_t<float> logits = logits_array(n, m.n_vocab(), all_logits);
    float* sp = static_cast<float*>(state.mutable_data());
    float* lp = logits.mutable_data();
    {
        py::gil_scoped_release nogil;
        const std::shared_ptr<thread_pool> pool = m.threads_pool(); // kept alive past a set_threads
        pool_scope threads(pool.get());
        m.forward(tp, n, sp, lp, all_logits);
    }
    return logits;
}

} // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "pyrnn C++ core";

    static py::exception<format_error> format_exc(m, "FormatError", PyExc_ValueError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const format_error& e) {
            py::set_error(format_exc, e.what());
        } catch (const file_error& e) {
            PyObject* type = e.code == ENOENT   ? PyExc_FileNotFoundError
                             : e.code == EACCES ? PyExc_PermissionError
                             : e.code == EISDIR ? PyExc_IsADirectoryError
                                                : PyExc_OSError;
            PyErr_SetString(type, e.what());
        }
    });

    py::class_<gguf_file, gguf_ptr>(m, "GGUFFile", "A validated, memory-mapped GGUF file.")
        .def(py::init([](const std::string& path) { return gguf_ptr(gguf_file::open(path)); }), py::arg("path"))
        .def_property_readonly("path", &gguf_file::path)
        .def_property_readonly("version", &gguf_file::version)
        .def_property_readonly("alignment", &gguf_file::alignment)
        .def_property_readonly("data_offset", &gguf_file::data_offset)
        .def_property_readonly("file_size", &gguf_file::file_size)
        .def_property_readonly("keys", &gguf_file::keys)
        .def("value", [](const gguf_file& f, const std::string& key) { return value_to_py(f.get(key), key); },
             py::arg("key"), "The value of one metadata key (KeyError-like FormatError if absent).")
        .def("value_type", [](const gguf_file& f, const std::string& key) {
            const gguf_value& v = f.get(key);
            if (v.is_array()) return std::string("array[") + gguf_type_name(v.elem_type) + "]";
            return std::string(gguf_type_name(v.type));
        }, py::arg("key"))
        .def("__contains__", [](const gguf_file& f, const std::string& key) { return f.find(key) != nullptr; })
        .def_property_readonly("tensors", [](const gguf_file& f) {
            py::list out;
            for (const gguf_tensor& t : f.tensors()) out.append(tensor_info(t));
            return out;
        })
        .def("tensor_bytes", &tensor_bytes, py::arg("name"),
             "The raw bytes of one tensor as a read-only uint8 array (a view of the mapping).");

    py::class_<model, model_ptr>(m, "Model", "A loaded model (immutable; share it between threads).")
        .def(py::init([](const std::string& path) {
                 std::shared_ptr<const gguf_file> f(gguf_file::open(path));
                 try {
                     model_ptr m = load_model(f);
                     m->set_threads(default_threads());
                     return m;
                 } catch (const format_error& e) {
                     throw format_error("'" + path + "': " + e.what());
                 }
             }),
             py::arg("path"))
        .def_property_readonly("arch", &model::arch)
        .def_property_readonly("n_vocab", &model::n_vocab)
        .def_property_readonly("n_embd", &model::n_embd)
        .def_property_readonly("n_layer", &model::n_layer)
        .def_property_readonly("state_size", &model::state_size)
        .def_property("threads", &model::threads, [](model& mdl, int n) {
            if (n < 1 || n > max_threads)
                throw py::value_error("threads: expected 1.." + std::to_string(max_threads) + ", found " + std::to_string(n));
            mdl.set_threads(n);
        }, "Threads that split the matrix products (default: physical cores).")
        .def("init_state", [](const model& mdl, py::array state) {
            check_state(mdl, state);
            mdl.init_state(static_cast<float*>(state.mutable_data()));
        }, py::arg("state"))
        .def("forward", &forward, py::arg("tokens"), py::arg("state"), py::arg("all_logits") = false,
             "Feed tokens, updating state in place; returns the last token's logits (or all).");
    m.def("model_architectures", &model_architectures);
    bind_tokenizer(m);
    bind_bench(m);
    bind_sampler(m);
    bind_cuda(m);

    m.def("ggml_types", [] {
        py::list out;
        for (uint32_t id = 0; id < GGML_TYPE_COUNT; id++) {
            if (const type_traits* t = find_type(id)) out.append(py::make_tuple(id, t->name, t->block_size, t->type_size));
        }
        return out;
    }, "All ggml tensor types: (id, name, block_size, type_size).");

    m.def("isa", [] { return std::string(kernels().isa); }, "The ISA whose kernels run (honours PYRNN_ISA).");
    m.def("available_isas", &available_isas, "ISAs built in and supported by this CPU, reference first.");
    m.def("cpu_features", &cpu_features);
    m.def("default_threads", &default_threads, "Physical cores (the default thread count).");
    m.attr("max_threads") = max_threads;
    m.def("gemm", &gemm, py::arg("w"), py::arg("type"), py::arg("rows"), py::arg("cols"), py::arg("x"),
          py::arg("isa") = "", py::arg("packed") = false,
          "Y = X·Wᵀ (x 1-d: y = W·x) with the kernel of one ISA (\"\" = active); W as raw bytes, or as pack() made "
          "them with packed=True (the ISA's packed kernel).");
    m.def("pack", &pack, py::arg("w"), py::arg("type"), py::arg("rows"), py::arg("cols"),
          "W (raw bytes, rows a multiple of 16) in the 16-row layout of the packed kernels (kernels/packed.h).");
    m.def("quantize", [](py::array_t<float, py::array::c_style | py::array::forcecast> x, uint32_t type) {
        if (x.ndim() != 2) throw py::value_error("x: expected a 2-d float array (rows, cols), found " + std::to_string(x.ndim()) + " dims");
        const type_traits* tt = find_type(type);
        const int64_t rows = x.shape(0), cols = x.shape(1);
        if (tt == nullptr) throw py::value_error("type: expected a ggml type id, found " + std::to_string(type));
        if (cols % tt->block_size != 0) {
            throw py::value_error("x: expected rows of a multiple of " + std::to_string(tt->block_size) + " (" + tt->name +
                                  " block), found " + std::to_string(cols));
        }
        py::array_t<uint8_t> out(py::ssize_t(uint64_t(rows) * row_bytes(type, uint64_t(cols))));
        const float* src = x.data();
        uint8_t* dst = out.mutable_data();
        bool ok;
        {
            py::gil_scoped_release nogil;
            ok = quantize(type, src, dst, rows, cols);
        }
        if (!ok) throw py::value_error(std::string("type: pyrnn does not write ") + tt->name);
        return out;
    }, py::arg("x"), py::arg("type"), "Rows of floats → the bytes of ggml type `type` (ggml's reference rounding).");
    m.def("dequantize", [](py::array_t<uint8_t, py::array::c_style> data, uint32_t type, int64_t n) {
        const type_traits* tt = find_type(type);
        if (tt == nullptr) throw py::value_error("type: expected a ggml type id, found " + std::to_string(type));
        if (n < 0 || n % tt->block_size != 0) throw py::value_error("n: expected a multiple of the block size");
        if (uint64_t(data.size()) != row_bytes(type, uint64_t(n))) {
            throw py::value_error("data: expected " + std::to_string(row_bytes(type, uint64_t(n))) + " bytes, found " +
                                  std::to_string(data.size()));
        }
        py::array_t<float> out(n);
        if (!to_f32(type, data.data(), out.mutable_data(), n)) throw py::value_error(std::string("type: pyrnn does not read ") + tt->name);
        return out;
    }, py::arg("data"), py::arg("type"), py::arg("n"), "The bytes of n elements of ggml type `type` → floats.");
    m.def("fp32_to_fp16", [](float f) { return fp32_to_fp16(f); });
    m.def("fp16_to_fp32", [](uint16_t h) { return fp16_to_fp32(h); });
}
