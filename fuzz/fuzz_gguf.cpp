// fuzz_gguf.cpp — libFuzzer target: GGUF parse → model construction → one forward step.
//
//   cmake -S . -B build/fuzz -DPYRNN_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ && cmake --build build/fuzz
//   build/fuzz/fuzz_gguf fuzz/corpus/gguf -dict=fuzz/gguf.dict      # or: tools/fuzz.sh 60
//
// Contract under test: any byte string either loads and runs, or throws format_error/file_error.
// Any other exception, a crash, a leak or a sanitizer report is a bug in the loader.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <vector>

#include "gguf.h"
#include "models/model.h"

using namespace pyrnn;

namespace {

// A fuzzed file may describe a valid but large model (a long vocabulary of tiny rows, a wide
// state from a hyperparameter no tensor bounds). Python would allocate it; the fuzzer's RSS
// limit would report it as a false leak, so the harness skips the run step past these sizes.
constexpr size_t k_max_state_floats = size_t(16) << 20; // 64 MiB of state
constexpr int64_t k_max_vocab = int64_t(1) << 22;

[[noreturn]] void unexpected(const char* what, const char* msg) {
    std::fprintf(stderr, "fuzz_gguf: %s escaped the loader: %s\n", what, msg);
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        std::shared_ptr<const gguf_file> f(gguf_file::from_memory(data, size));
        std::unique_ptr<model> m = load_model(f);
        if (m->n_vocab() <= 0 || m->n_vocab() > k_max_vocab || m->state_size() > k_max_state_floats) return 0;
        std::vector<float> state(m->state_size());
        m->init_state(state.data());
        std::vector<float> logits(size_t(m->n_vocab()));
        const int32_t token = 0;
        m->forward(&token, 1, state.data(), logits.data(), false);
    } catch (const format_error&) {
    } catch (const file_error&) {
    } catch (const std::bad_alloc& e) {
        unexpected("std::bad_alloc", e.what());
    } catch (const std::exception& e) {
        unexpected("std::exception", e.what());
    } catch (...) {
        unexpected("a non-std exception", "?");
    }
    return 0;
}
