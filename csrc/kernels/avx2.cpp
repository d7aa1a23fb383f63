// avx2.cpp — AVX2 + FMA + F16C overrides. Built with -mavx2 -mfma -mf16c; reached only through
// the table after dispatch has checked the CPU. No shared inline helpers here: code compiled with
// AVX2 must never be picked by the linker for a caller on an older CPU (hence malloc, not vector).
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

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

// ---- quantized weights × 8-bit activations (the reference twins are dot_q*_ in ref.cpp) --------

inline float half(uint16_t h) { return _cvtsh_ss(h); }

// Σ of 32 products of signed bytes, as 8 int32 lanes (as float): |a|·sign(b, a) keeps maddubs'
// unsigned×signed form exact.
inline __m256 dot_i8(__m256i a, __m256i b) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// Σ of 32 products unsigned (0..31) × signed bytes.
inline __m256 dot_u8_i8(__m256i u, __m256i s) {
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

// 16 bytes of nibbles → 32 bytes: low nibbles in bytes 0..15, high nibbles in bytes 16..31
// (ggml's element order within a block).
inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

// 32 bits → 32 bytes of 0x10 where the bit is set (bit j → byte j).
inline __m256i bits_to_0x10(const uint8_t* qh) {
    uint32_t v;
    std::memcpy(&v, qh, 4);
    // byte j takes byte j/8 of v, then tests bit j%8 of it
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(v)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

float dot_q8_0_avx2(const void* w, const block_q8_0* x, int64_t nb) {
    const auto* b = static_cast<const block_q8_0*>(w);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(half(b[i].d) * half(x[i].d));
        acc = _mm256_fmadd_ps(d, dot_i8(load32(b[i].qs), load32(x[i].qs)), acc);
    }
    return hsum(acc);
}

float dot_q4_0_avx2(const void* w, const block_q8_0* x, int64_t nb) {
    const auto* b = static_cast<const block_q4_0*>(w);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const __m256i q = _mm256_sub_epi8(unpack_nibbles(b[i].qs), _mm256_set1_epi8(8));
        const __m256 d = _mm256_set1_ps(half(b[i].d) * half(x[i].d));
        acc = _mm256_fmadd_ps(d, dot_i8(q, load32(x[i].qs)), acc);
    }
    return hsum(acc);
}

float dot_q4_1_avx2(const void* w, const block_q8_1* x, int64_t nb) {
    const auto* b = static_cast<const block_q4_1*>(w);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(half(b[i].d) * half(x[i].d));
        acc = _mm256_fmadd_ps(d, dot_u8_i8(unpack_nibbles(b[i].qs), load32(x[i].qs)), acc);
        mins += half(b[i].m) * half(x[i].s);
    }
    return hsum(acc) + mins;
}

float dot_q5_0_avx2(const void* w, const block_q8_0* x, int64_t nb) {
    const auto* b = static_cast<const block_q5_0*>(w);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const __m256i q5 = _mm256_or_si256(unpack_nibbles(b[i].qs), bits_to_0x10(b[i].qh));
        const __m256i q = _mm256_sub_epi8(q5, _mm256_set1_epi8(16));
        const __m256 d = _mm256_set1_ps(half(b[i].d) * half(x[i].d));
        acc = _mm256_fmadd_ps(d, dot_i8(q, load32(x[i].qs)), acc);
    }
    return hsum(acc);
}

float dot_q5_1_avx2(const void* w, const block_q8_1* x, int64_t nb) {
    const auto* b = static_cast<const block_q5_1*>(w);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m256i q = _mm256_or_si256(unpack_nibbles(b[i].qs), bits_to_0x10(b[i].qh));
        const __m256 d = _mm256_set1_ps(half(b[i].d) * half(x[i].d));
        acc = _mm256_fmadd_ps(d, dot_u8_i8(q, load32(x[i].qs)), acc);
        mins += half(b[i].m) * half(x[i].s);
    }
    return hsum(acc) + mins;
}

template <typename WBlock, typename XBlock, void (*quantize_x)(const float*, XBlock*, int64_t),
          float (*dot)(const void*, const XBlock*, int64_t)>
void matvec_quant_avx2(const void* w, const float* x, float* y, int64_t rows, int64_t cols) {
    const int64_t nb = cols / QK;
    auto* xq = static_cast<XBlock*>(std::malloc(sizeof(XBlock) * size_t(nb > 0 ? nb : 1)));
    if (xq == nullptr) std::abort();
    quantize_x(x, xq, cols);
    const auto* W = static_cast<const WBlock*>(w);
    for (int64_t r = 0; r < rows; r++) y[r] = dot(W + r * nb, xq, nb);
    std::free(xq);
}

} // namespace

void override_avx2(kernel_table& t) {
    t.isa = "avx2";
    t.dot_f32 = dot_f32_avx2;
    t.matvec[GGML_TYPE_F32] = matvec_f32_avx2;
    t.matvec[GGML_TYPE_F16] = matvec_f16_avx2;
    t.matvec[GGML_TYPE_BF16] = matvec_bf16_avx2;
    t.matvec[GGML_TYPE_Q8_0] = matvec_quant_avx2<block_q8_0, block_q8_0, quantize_row_q8_0, dot_q8_0_avx2>;
    t.matvec[GGML_TYPE_Q4_0] = matvec_quant_avx2<block_q4_0, block_q8_0, quantize_row_q8_0, dot_q4_0_avx2>;
    t.matvec[GGML_TYPE_Q4_1] = matvec_quant_avx2<block_q4_1, block_q8_1, quantize_row_q8_1, dot_q4_1_avx2>;
    t.matvec[GGML_TYPE_Q5_0] = matvec_quant_avx2<block_q5_0, block_q8_0, quantize_row_q8_0, dot_q5_0_avx2>;
    t.matvec[GGML_TYPE_Q5_1] = matvec_quant_avx2<block_q5_1, block_q8_1, quantize_row_q8_1, dot_q5_1_avx2>;
}

} // namespace pyrnn
