// kernels.h — the one table of compute kernels, chosen once for the CPU that runs us.
//
//   const kernel_table& k = kernels();                  // best ISA this CPU runs (or PYRNN_ISA)
//   k.matvec[GGML_TYPE_F16](w, x, y, rows, cols);       // y = W·x
//
// ref.cpp fills every entry with the scalar reference (the spec that tests compare against);
// each ISA file (avx2.cpp, ...) overrides only what it speeds up, so every other entry falls back
// to the reference. Models call kernels only through this table and never contain intrinsics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../quant.h"

namespace pyrnn {

// y[r] = Σ_c W[r, c] · x[c] for r < rows. W is `rows` rows of `cols` elements of the entry's type,
// row-major (ggml: ne0 = cols); x and y are float32; y must not alias x.
using matvec_fn = void (*)(const void* w, const float* x, float* y, int64_t rows, int64_t cols);

struct kernel_table {
    const char* isa = "ref";
    matvec_fn matvec[GGML_TYPE_COUNT] = {}; // nullptr: type not computable
    float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
};

// Fill / override entry points, one per kernel file.
void fill_ref(kernel_table& t);
void override_avx2(kernel_table& t); // x86-64 builds only (PYRNN_HAVE_AVX2)

// The active table: the best ISA this CPU supports, or the one PYRNN_ISA names (ref|avx2|avx512|
// neon|neon_dotprod). Chosen on first call; throws std::runtime_error if PYRNN_ISA names an ISA
// that was not built or that this CPU cannot run.
const kernel_table& kernels();

// ISAs this build has and this CPU runs, "ref" first, best last.
std::vector<std::string> available_isas();

// The table for one ISA (for tests and benchmarks); nullptr if not available here.
const kernel_table* kernels_for(const std::string& isa);

// A one-line description of the CPU features that dispatch saw, e.g. "avx2 fma f16c".
std::string cpu_features();

} // namespace pyrnn
