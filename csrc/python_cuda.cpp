// python_cuda.cpp — bindings of the CUDA backend (csrc/cuda/backend.h): pyrnn._core.CudaModel and
// CudaState. Compiled in every build; in a CPU-only build cuda_built() is False and CudaModel(...)
// raises the backend's "this build has no CUDA backend" error.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "cuda/backend.h"
#include "gguf.h"
#include "python_forward.h"

namespace py = pybind11;
using namespace pyrnn;

namespace {

using state_ptr = std::shared_ptr<cuda::device_state>;
using model_ptr = std::shared_ptr<cuda::device_model>;

py::array_t<float> contiguous_state(const cuda::device_state& s, py::array_t<float, py::array::c_style | py::array::forcecast> a) {
    if (a.ndim() != 1 || size_t(a.shape(0)) != s.size()) {
        throw py::value_error("state data: expected " + std::to_string(s.size()) + " float32 values, found shape with " +
                              std::to_string(a.size()) + " values");
    }
    return a;
}

py::array_t<float> forward(cuda::device_model& m, const py::object& tokens, cuda::device_state& state, bool all_logits) {
    if (state.size() != m.state_size()) {
        throw py::value_error("state: expected " + std::to_string(m.state_size()) + " floats for this " + m.arch() +
                              " model, found " + std::to_string(state.size()));
    }
    const std::vector<int32_t> ids = checked_tokens(tokens, m.n_vocab());
    const size_t n = ids.size();
    py::array_t<float> logits = logits_array(n, m.n_vocab(), all_logits);
    float* lp = logits.mutable_data();
    {
        py::gil_scoped_release nogil;
        m.forward(ids.data(), n, state, lp, all_logits);
    }
    return logits;
}

} // namespace

void bind_cuda(py::module_& m) {
    static py::exception<cuda::cuda_error> cuda_exc(m, "CudaError", PyExc_RuntimeError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const cuda::cuda_error& e) {
            py::set_error(cuda_exc, e.what());
        }
    });
    m.def("cuda_built", &cuda::built, "Whether this build has the CUDA backend (-DPYRNN_CUDA=ON).");
    m.def("cuda_device_count", &cuda::device_count, "CUDA devices visible (0 without a driver or in a CPU-only build).");
    m.def("cuda_architectures", &cuda::architectures, "Architectures the CUDA backend runs (empty in a CPU-only build).");

    py::class_<cuda::device_state, state_ptr>(m, "CudaState", "A recurrent state held on the device (CPU layout).")
        .def_property_readonly("size", &cuda::device_state::size)
        .def("upload", [](cuda::device_state& s, py::array data) {
            auto a = contiguous_state(s, data);
            s.upload(a.data());
        }, py::arg("data"), "Replace the device state with these float32 values (exact copy).")
        .def("download", [](const cuda::device_state& s) {
            py::array_t<float> out(py::ssize_t(s.size()));
            s.download(out.mutable_data());
            return out;
        }, "A host copy of the device state (exact).")
        .def("copy_from", &cuda::device_state::copy_from, py::arg("other"));

    py::class_<cuda::device_model, model_ptr>(m, "CudaModel", "A model whose weights and states live on a CUDA device.")
        .def(py::init([](const std::string& path, int device) {
                 std::shared_ptr<const gguf_file> f(gguf_file::open(path));
                 try {
                     return model_ptr(cuda::load_model(f, device));
                 } catch (const format_error& e) {
                     throw format_error("'" + path + "': " + e.what());
                 }
             }),
             py::arg("path"), py::arg("device") = 0)
        .def_property_readonly("arch", &cuda::device_model::arch)
        .def_property_readonly("n_vocab", &cuda::device_model::n_vocab)
        .def_property_readonly("n_embd", &cuda::device_model::n_embd)
        .def_property_readonly("n_layer", &cuda::device_model::n_layer)
        .def_property_readonly("state_size", &cuda::device_model::state_size)
        .def_property_readonly("device_name", &cuda::device_model::device_name)
        .def("new_state", [](const cuda::device_model& mdl) { return state_ptr(mdl.new_state()); })
        .def("forward", &forward, py::arg("tokens"), py::arg("state"), py::arg("all_logits") = false,
             "Feed tokens, updating the device state in place; returns the last token's logits (or all).");
}
