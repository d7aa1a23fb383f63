// check.h — the few lines every C++ test here shares: count checks, print the first failures, and
// turn the tally into the exit status. Thread-safe (test_threads checks from several threads).
//
//   check(y == expected, "gemm q8_0 rows=7");
//   return report("test_kernels");     // "test_kernels: N passed, M failed"; 0 when M == 0
#pragma once

#include <atomic>
#include <cstdio>
#include <string>

namespace {

std::atomic<int> g_passed{0}, g_failed{0};

void check(bool ok, const std::string& what) {
    if (ok) {
        g_passed++;
    } else if (g_failed++ < 50) { // the first failures say enough; thousands would bury them
        std::fprintf(stderr, "FAIL: %s\n", what.c_str());
    }
}

int report(const char* name) {
    std::printf("%s: %d passed, %d failed\n", name, g_passed.load(), g_failed.load());
    return g_failed == 0 ? 0 : 1;
}

} // namespace
