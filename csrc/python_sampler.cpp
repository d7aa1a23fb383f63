// pybind11 bindings of sampler.h: pyrnn._core.SamplerParams, Rng, sample, sample_probs, apply_penalties.
// Arguments are checked here (shapes, id ranges) and in check_params (values); std::invalid_argument
// becomes ValueError. The GIL is released while a vocabulary's worth of logits is processed.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "sampler.h"

namespace py = pybind11;
using pyrnn::sampler_params;

namespace {

using logits_array = py::array_t<float, py::array::c_style | py::array::forcecast>;

const float* logits_data(const logits_array& a) {
    if (a.ndim() != 1) throw std::invalid_argument("logits: expected a 1-D array, found " +
                                                   std::to_string(a.ndim()) + " dimensions");
    return a.data();
}

// History as int32 ids; values outside int32 are reported here, outside the vocabulary by the sampler.
std::vector<int32_t> history_ids(const py::object& h) {
    std::vector<int32_t> out;
    if (h.is_none()) return out;
    auto a = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(h);
    if (!a || a.ndim() != 1) throw std::invalid_argument("history: expected a 1-D sequence of token ids");
    out.reserve(size_t(a.size()));
    for (py::ssize_t i = 0; i < a.size(); i++) {
        const int64_t v = a.data()[i];
        if (v < 0 || v > std::numeric_limits<int32_t>::max())
            throw std::invalid_argument("history[" + std::to_string(i) + "]: expected a token id >= 0, found " +
                                        std::to_string(v));
        out.push_back(int32_t(v));
    }
    return out;
}

uint64_t seed_value(const py::int_& seed) {
    if (seed < py::int_(0) || seed > py::int_(std::numeric_limits<uint64_t>::max()))
        throw std::invalid_argument("seed: expected an integer in 0..2^64-1, found " + std::string(py::str(seed)));
    return seed.cast<uint64_t>();
}

} // namespace

void bind_sampler(py::module_& m) {
    py::class_<sampler_params>(m, "SamplerParams", "Sampling settings; see csrc/sampler.h for the chain order.")
        .def(py::init([](float temperature, int32_t top_k, float top_p, float min_p, float repeat_penalty,
                         float presence_penalty, float frequency_penalty, int32_t penalty_window) {
                 sampler_params p{temperature, top_k, top_p, min_p, repeat_penalty, presence_penalty,
                                  frequency_penalty, penalty_window};
                 pyrnn::check_params(p);
                 return p;
             }),
             py::kw_only(), py::arg("temperature") = 1.0f, py::arg("top_k") = 0, py::arg("top_p") = 1.0f,
             py::arg("min_p") = 0.0f, py::arg("repeat_penalty") = 1.0f, py::arg("presence_penalty") = 0.0f,
             py::arg("frequency_penalty") = 0.0f, py::arg("penalty_window") = 64)
        .def_readonly("temperature", &sampler_params::temperature)
        .def_readonly("top_k", &sampler_params::top_k)
        .def_readonly("top_p", &sampler_params::top_p)
        .def_readonly("min_p", &sampler_params::min_p)
        .def_readonly("repeat_penalty", &sampler_params::repeat_penalty)
        .def_readonly("presence_penalty", &sampler_params::presence_penalty)
        .def_readonly("frequency_penalty", &sampler_params::frequency_penalty)
        .def_readonly("penalty_window", &sampler_params::penalty_window)
        .def("__repr__", [](const sampler_params& p) {
            return "SamplerParams(temperature=" + std::to_string(p.temperature) + ", top_k=" +
                   std::to_string(p.top_k) + ", top_p=" + std::to_string(p.top_p) + ", min_p=" +
                   std::to_string(p.min_p) + ", repeat_penalty=" + std::to_string(p.repeat_penalty) +
                   ", presence_penalty=" + std::to_string(p.presence_penalty) + ", frequency_penalty=" +
                   std::to_string(p.frequency_penalty) + ", penalty_window=" + std::to_string(p.penalty_window) +
                   ")";
        });

    py::class_<pyrnn::rng>(m, "Rng", "xoshiro256** seeded by splitmix64: the same seed, the same stream everywhere.")
        .def(py::init([](const py::int_& seed) { return pyrnn::rng_seeded(seed_value(seed)); }), py::arg("seed"))
        .def("next_u64", &pyrnn::rng_next)
        .def("uniform", &pyrnn::rng_uniform, "A double in [0, 1) from the top 53 bits of next_u64().")
        .def("copy", [](const pyrnn::rng& r) { return r; });

    m.def("sample", [](const logits_array& logits, const sampler_params& p, pyrnn::rng& r, const py::object& history) {
        const float* l = logits_data(logits);
        const std::vector<int32_t> h = history_ids(history);
        py::gil_scoped_release nogil;
        return pyrnn::sample(l, size_t(logits.size()), h.data(), h.size(), p, r);
    }, py::arg("logits"), py::arg("params"), py::arg("rng"), py::arg("history") = py::none(),
       "One token id drawn from float32 logits (n_vocab,) after the chain of csrc/sampler.h.");

    m.def("sample_probs", [](const logits_array& logits, const sampler_params& p, const py::object& history) {
        const float* l = logits_data(logits);
        const std::vector<int32_t> h = history_ids(history);
        py::array_t<float> probs(logits.size());
        float* out = probs.mutable_data();
        {
            py::gil_scoped_release nogil;
            pyrnn::sample_probs(l, size_t(logits.size()), h.data(), h.size(), p, out);
        }
        return probs;
    }, py::arg("logits"), py::arg("params"), py::arg("history") = py::none(),
       "The distribution sample() draws from (0 for removed tokens).");

    m.def("apply_penalties", [](const logits_array& logits, const sampler_params& p, const py::object& history) {
        const float* l = logits_data(logits);
        const std::vector<int32_t> h = history_ids(history);
        pyrnn::check_params(p);
        py::array_t<float> out(logits.size());
        std::copy(l, l + logits.size(), out.mutable_data());
        pyrnn::apply_penalties(out.mutable_data(), size_t(logits.size()), h.data(), h.size(), p);
        return out;
    }, py::arg("logits"), py::arg("params"), py::arg("history") = py::none(),
       "A copy of the logits with the penalties of the last penalty_window history tokens applied.");
}
