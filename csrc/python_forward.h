// python_forward.h — the border checks every forward() binding shares (CPU model in python.cpp,
// CUDA model in python_cuda.cpp): token ids checked against the vocabulary, and the logits array.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyrnn {

// tokens_in: any 1-d sequence of integers, at least one, each in [0, n_vocab). Read as int64 first,
// so that ids beyond int32 are reported rather than wrapped.
inline std::vector<int32_t> checked_tokens(const pybind11::object& tokens_in, int64_t n_vocab) {
    namespace py = pybind11;
    auto tokens64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(tokens_in);
    if (!tokens64 || tokens64.ndim() != 1) {
        PyErr_Clear();
        throw py::value_error("tokens: expected a 1-d sequence of integers");
    }
    const size_t n = size_t(tokens64.shape(0));
    if (n == 0) throw py::value_error("tokens: expected at least one token, found none");
    std::vector<int32_t> ids(n);
    const int64_t* t64 = tokens64.data();
    for (size_t i = 0; i < n; i++) {
        if (t64[i] < 0 || t64[i] >= n_vocab) {
            throw py::value_error("tokens[" + std::to_string(i) + "]: expected an id in [0, " + std::to_string(n_vocab) +
                                  "), found " + std::to_string(t64[i]));
        }
        ids[i] = int32_t(t64[i]);
    }
    return ids;
}

// The logits forward() returns: [n][n_vocab] with all_logits, else the last token's [n_vocab].
inline pybind11::array_t<float> logits_array(size_t n, int64_t n_vocab, bool all_logits) {
    namespace py = pybind11;
    return all_logits ? py::array_t<float>({py::ssize_t(n), py::ssize_t(n_vocab)}) : py::array_t<float>(py::ssize_t(n_vocab));
}

} // namespace pyrnn
