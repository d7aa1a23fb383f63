// python_bench.cpp — machine limits for `pyrnn bench`: memory read bandwidth and FMA peak.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "kernels/kernels.h"
#include "threads.h"

namespace py = pybind11;
using namespace pyrnn;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs fn(i) on `threads` threads at once — one each, unlike a pool, whose caller may take every
// task — and returns the seconds from the common start to the last finish.
double run_on_threads(int threads, const std::function<void(int)>& fn) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int i = 1; i < threads; i++) {
        ts.emplace_back([&, i] {
            ready.fetch_add(1);
            while (!go.load()) std::this_thread::yield();
            fn(i);
        });
    }
    while (ready.load() != threads - 1) std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true);
    fn(0);
    for (std::thread& t : ts) t.join();
    return seconds_since(t0);
}

// Median read bandwidth (bytes/s) of summing a `mib` MiB buffer, split over `threads` threads.
double read_bandwidth(int mib, int threads, int repeats) {
    const int64_t n = int64_t(mib) * (1 << 20) / 4;
    std::vector<float> buf(size_t(n), 1.0f); // touched: every page is resident before timing
    const kernel_table& k = kernels();
    std::vector<double> times;
    volatile float sink = 0.0f;
    for (int r = 0; r < repeats; r++) {
        std::vector<float> part(static_cast<size_t>(threads));
        times.push_back(run_on_threads(threads, [&](int i) {
            const int64_t a = n * i / threads, b = n * (i + 1) / threads;
            part[size_t(i)] = k.sum_f32(buf.data() + a, b - a);
        }));
        for (float p : part) sink = sink + p;
    }
    std::sort(times.begin(), times.end());
    return double(n) * 4.0 / times[times.size() / 2];
}

// FMA peak (FLOP/s) of the active ISA on `threads` threads.
double fma_peak(int threads) {
    const kernel_table& k = kernels();
    const int64_t iters = 20'000'000;
    volatile float sink = 0.0f;
    double total = 0.0;
    for (int r = 0; r < 3; r++) {
        std::vector<int64_t> flops(static_cast<size_t>(threads), 0);
        std::vector<float> part(static_cast<size_t>(threads));
        const double dt = run_on_threads(threads, [&](int i) { part[size_t(i)] = k.fma_probe(iters, &flops[size_t(i)]); });
        for (float p : part) sink = sink + p;
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
