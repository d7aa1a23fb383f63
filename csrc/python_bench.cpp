// python_bench.cpp — machine limits for `pyrnn bench`: memory read bandwidth and FMA peak.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/kernels.h"
#include "threads.h"

namespace py = pybind11;
using namespace pyrnn;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Median read bandwidth (bytes/s) of summing a `mib` MiB buffer, split over `threads` threads.
double read_bandwidth(int mib, int threads, int repeats) {
    const int64_t n = int64_t(mib) * (1 << 20) / 4;
    std::vector<float> buf(size_t(n), 1.0f); // touched: every page is resident before timing
    thread_pool pool(threads);
    const kernel_table& k = kernels();
    std::vector<double> times;
    volatile float sink = 0.0f;
    for (int r = 0; r < repeats; r++) {
        std::vector<float> part(static_cast<size_t>(threads));
        const auto t0 = std::chrono::steady_clock::now();
        pool.run(threads, [&](int i) {
            const int64_t a = n * i / threads, b = n * (i + 1) / threads;
            part[size_t(i)] = k.sum_f32(buf.data() + a, b - a);
        });
        times.push_back(seconds_since(t0));
        for (float p : part) sink = sink + p;
    }
    std::sort(times.begin(), times.end());
    return double(n) * 4.0 / times[times.size() / 2];
}

// FMA peak (FLOP/s) of the active ISA on `threads` threads.
double fma_peak(int threads) {
    thread_pool pool(threads);
    const kernel_table& k = kernels();
    const int64_t iters = 20'000'000;
    volatile float sink = 0.0f;
    double total = 0.0;
    for (int r = 0; r < 3; r++) {
        std::vector<int64_t> flops(static_cast<size_t>(threads), 0);
        const auto t0 = std::chrono::steady_clock::now();
        pool.run(threads, [&](int i) { sink = sink + k.fma_probe(iters, &flops[size_t(i)]); });
        const double dt = seconds_since(t0);
        int64_t f = 0;
        for (int64_t v : flops) f += v;
        total = std::max(total, double(f) / dt);
    }
    return total;
}

} // namespace

void bind_bench(py::module_& m) {
    m.def("read_bandwidth", [](int mib, int threads, int repeats) {
        if (mib < 1 || threads < 1 || repeats < 1) throw py::value_error("mib, threads, repeats: expected ≥ 1");
        py::gil_scoped_release nogil;
        return read_bandwidth(mib, threads, repeats);
    }, py::arg("mib") = 1024, py::arg("threads") = 1, py::arg("repeats") = 5,
       "Median memory read bandwidth in bytes/s (a buffer far larger than the caches).");
    m.def("fma_peak", [](int threads) {
        if (threads < 1) throw py::value_error("threads: expected ≥ 1");
        py::gil_scoped_release nogil;
        return fma_peak(threads);
    }, py::arg("threads") = 1, "Peak float32 FLOP/s of the active ISA's FMA units on `threads` threads.");
}
