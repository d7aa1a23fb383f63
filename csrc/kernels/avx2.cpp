// avx2.cpp — AVX2 + FMA + F16C overrides. Built with -mavx2 -mfma -mf16c; reached only through
// the table after dispatch has checked the CPU. No shared inline helpers here: code compiled with
// AVX2 must never be picked by the linker for a caller on an older CPU.
#include <immintrin.h>

#include "kernels.h"

namespace pyrnn {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

float dot_f32_avx2(const float* a, const float* b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) { // four independent chains hide the FMA latency
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void matvec_f32_avx2(const void* w, const float* x, float* y, int64_t rows, int64_t cols) {
    const float* W = static_cast<const float*>(w);
    for (int64_t r = 0; r < rows; r++) y[r] = dot_f32_avx2(W + r * cols, x, cols);
}

void matvec_f16_avx2(const void* w, const float* x, float* y, int64_t rows, int64_t cols) {
    const uint16_t* W = static_cast<const uint16_t*>(w);
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t* row = W + r * cols;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int64_t c = 0;
        for (; c + 16 <= cols; c += 16) {
            const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c)));
            const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c + 8)));
            s0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + c), s0);
            s1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + c + 8), s1);
        }
        float s = hsum(_mm256_add_ps(s0, s1));
        for (; c < cols; c++) s += _cvtsh_ss(row[c]) * x[c];
        y[r] = s;
    }
}

void matvec_bf16_avx2(const void* w, const float* x, float* y, int64_t rows, int64_t cols) {
    const uint16_t* W = static_cast<const uint16_t*>(w);
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t* row = W + r * cols;
        __m256 s0 = _mm256_setzero_ps();
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) { // bf16 → f32: widen to 32 bits and shift into the top half
            const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c));
            const __m256 wv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
            s0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + c), s0);
        }
        float s = hsum(s0);
        for (; c < cols; c++) {
            const __m128i h = _mm_cvtsi32_si128(int(uint32_t(row[c]) << 16));
            s += _mm_cvtss_f32(_mm_castsi128_ps(h)) * x[c];
        }
        y[r] = s;
    }
}

} // namespace

void override_avx2(kernel_table& t) {
    t.isa = "avx2";
    t.dot_f32 = dot_f32_avx2;
    t.matvec[GGML_TYPE_F32] = matvec_f32_avx2;
    t.matvec[GGML_TYPE_F16] = matvec_f16_avx2;
    t.matvec[GGML_TYPE_BF16] = matvec_bf16_avx2;
}

} // namespace pyrnn
