// kernels.h — the one table of compute kernels, chosen once for the CPU that runs us.
//
//   const kernel_table& k = kernels();                  // best ISA this CPU runs (or PYRNN_ISA)
//   k.gemm[GGML_TYPE_F16](w, x, y, rows, cols, n, rows); // Y = X·Wᵀ for n tokens (n = 1: y = W·x)
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

// Y[t][r] = Σ_c W[r, c] · X[t][c] for t < n, r < rows. W is `rows` rows of `cols` elements of the
// entry's type, row-major (ggml: ne0 = cols); X is n rows of `cols` floats; Y has row stride `ldy`
// (≥ rows), so a thread can fill a slice of columns. Each weight row is read once for all n tokens.
// Quantized types first quantize X to 8 bits per block, as llama.cpp does.
using gemm_fn = void (*)(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n,
                         int64_t ldy);

struct kernel_table {
    const char* isa = "ref";
    gemm_fn gemm[GGML_TYPE_COUNT] = {}; // nullptr: type not computable
    // The same product with W in packed.h's 16-row layout (w: the packed bytes of `rows` rows, a
    // multiple of 16), for the types this ISA has a packed kernel for; nullptr: gemm on the file's bytes.
    gemm_fn packed[GGML_TYPE_COUNT] = {};
    float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
    // n floats → n / 32 q8_0 blocks, the bytes quantize_row_q8_0 writes: how the gemm kernels of
    // this table quantize activations (an entry of its own so that tests can hold it to the reference).
    void (*quantize_q8_0)(const float* x, block_q8_0* y, int64_t n) = nullptr;
    // One channel of Mamba-1's selective scan over T tokens, N = d_state (h: N floats, kept between calls):
    //   for t < T:  h ← exp(dt_t·a) ⊙ h + (dt_t·B_t)·u_t ;  y_t = Σ_k h_k·C_t,k
    // dt_t = dt[t·stride], u_t = u[t·stride], y_t → y[t·stride]; B_t = bc + t·bc_stride (N floats),
    // C_t = B_t + N. The SIMD twins differ from the reference by their exp (a few ulp) and the order of
    // y_t's sum.
    void (*ssm_scan)(float* h, const float* a, int64_t N, const float* dt, const float* u, float* y, int64_t stride,
                     const float* bc, int64_t bc_stride, int64_t T) = nullptr;
    // One head of RWKV-7's recurrence over T tokens; S (N × N, row i = value channel, column j = key
    // channel, kept between calls) and for each token t the N-float vectors r, w, k, v, kk, ka at
    // offset t·stride (y_t written there too):
    //   sa_i = −Σ_j S[i][j]·kk_j ;  S[i][j] ← S[i][j]·w_j + sa_i·ka_j + v_i·k_j ;  y_i = Σ_j S[i][j]·r_j
    // The SIMD twins sum in another order (float rounding only).
    void (*wkv7)(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v, const float* kk,
                 const float* ka, float* y, int64_t stride, int64_t T) = nullptr;
    // Activations over n floats (y may alias x), as torch computes them in float32:
    //   silu:     y = x·σ(x) = x / (1 + e^−x)
    //   softplus: y = x above 20 (torch's threshold), else log1p(e^x)
    //   sigmoid:  y = 1 / (1 + e^−x);   exp: y = e^x
    // The SIMD twins differ from the reference (std::exp, std::log1p) by a few ulp; non-finite
    // inputs give the reference's values.
    void (*silu)(const float* x, float* y, int64_t n) = nullptr;
    void (*softplus)(const float* x, float* y, int64_t n) = nullptr;
    void (*sigmoid)(const float* x, float* y, int64_t n) = nullptr;
    void (*exp)(const float* x, float* y, int64_t n) = nullptr;
    // Benchmark probes (models never call them): read n floats once; run iters rounds of 16
    // independent vector-wide FMAs (the reference runs scalar ones) and return a value that depends on all.
    float (*sum_f32)(const float* a, int64_t n) = nullptr;
    float (*fma_probe)(int64_t iters, int64_t* flops) = nullptr;
};

// The reference twins that SIMD kernels hand their uncommon cases (ref.cpp): non-finite inputs,
// a head size or state size that is not a multiple of the vector width.
void ssm_scan_ref(float* h, const float* a, int64_t N, const float* dt, const float* u, float* y, int64_t stride,
                  const float* bc, int64_t bc_stride, int64_t T);
void wkv7_ref(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v, const float* kk,
              const float* ka, float* y, int64_t stride, int64_t T);
void silu_ref(const float* x, float* y, int64_t n);
void softplus_ref(const float* x, float* y, int64_t n);
void sigmoid_ref(const float* x, float* y, int64_t n);
void exp_ref(const float* x, float* y, int64_t n);

// Fill / override entry points, one per kernel file.
void fill_ref(kernel_table& t);
void override_avx2(kernel_table& t); // x86-64 builds only (PYRNN_HAVE_AVX2)
void override_avx512(kernel_table& t); // x86-64, on top of the avx2 table (PYRNN_HAVE_AVX512)
void override_neon(kernel_table& t); // AArch64 builds only (PYRNN_HAVE_NEON)
void override_neon_dotprod(kernel_table& t); // AArch64, on top of the neon table (PYRNN_HAVE_NEON_DOTPROD)

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
