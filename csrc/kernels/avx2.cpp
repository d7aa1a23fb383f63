// avx2.cpp — AVX2 + FMA + F16C overrides. Built with -mavx2 -mfma -mf16c; reached only through
// the table after dispatch has checked the CPU. Code compiled with AVX2 must never be picked by
// the linker for a caller on an older CPU: everything here has internal linkage, and no standard
// library template is instantiated (hence malloc, not vector).
//
// GEMM tiles: a few weight rows × 4 tokens, so each vector loaded feeds several FMAs and the
// independent accumulators hide the FMA latency. A single token (decode, and the tokens left over)
// reads one row at a time: several rows side by side are several interleaved streams, which the
// hardware prefetchers follow badly (avx512.cpp, rows_for). Every tile accumulates a (row, token)
// cell in the same order, so a token's result does not depend on n.
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "packed.h"
#include "x86_common.h"

namespace pyrnn {

namespace {

constexpr int TILE = 4; // tokens per weight-row pass

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

// ---- float weights: 8 weights widened to f32 per step ------------------------------------------

struct load_f32 {
    using type = float;
    static __m256 v8(const float* p) { return _mm256_loadu_ps(p); }
    static float one(const float* p) { return *p; }
};
struct load_f16 {
    using type = uint16_t;
    static __m256 v8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static float one(const uint16_t* p) { return _cvtsh_ss(*p); }
};
struct load_bf16 {
    using type = uint16_t;
    static __m256 v8(const uint16_t* p) { // bf16 → f32: widen to 32 bits, shift into the top half
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    static float one(const uint16_t* p) {
        const uint32_t u = uint32_t(*p) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
};

// R weight rows × NT tokens: R·NT independent FMA chains (enough to hide the FMA latency when
// NT = 1, as in decode) and each loaded vector feeds several FMAs.
template <typename L, int R, int NT>
void tile_float(const typename L::type* w, const float* x, float* y, int64_t cols, int64_t ldy) {
    __m256 acc[R][NT];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NT; j++) acc[i][j] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 xv[NT];
        for (int j = 0; j < NT; j++) xv[j] = _mm256_loadu_ps(x + j * cols + c);
        for (int i = 0; i < R; i++) {
            const __m256 wv = L::v8(w + i * cols + c);
            for (int j = 0; j < NT; j++) acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < R; i++) {
        for (int j = 0; j < NT; j++) {
            float s = hsum(acc[i][j]);
            for (int64_t k = c; k < cols; k++) s += L::one(w + i * cols + k) * x[j * cols + k];
            y[j * ldy + i] = s;
        }
    }
}

// Rows in groups of R (then one at a time) for one group of NT tokens.
template <typename L, int R, int NT>
void rows_float(const typename L::type* W, const float* x, float* y, int64_t rows, int64_t cols, int64_t ldy) {
    int64_t r = 0;
    for (; r + R <= rows; r += R) tile_float<L, R, NT>(W + r * cols, x, y + r, cols, ldy);
    for (; r < rows; r++) tile_float<L, 1, NT>(W + r * cols, x, y + r, cols, ldy);
}

template <typename L>
void gemm_float_avx2(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const auto* W = static_cast<const typename L::type*>(w);
    int64_t t = 0;
    for (; t + TILE <= n; t += TILE) rows_float<L, 2, TILE>(W, x + t * cols, y + t * ldy, rows, cols, ldy);
    for (; t < n; t++) rows_float<L, 1, 1>(W, x + t * cols, y + t * ldy, rows, cols, ldy);
}

// ---- quantized weights × 8-bit activations (the reference twins are dot_q*_ in ref.cpp) --------

inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

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

// Block decoders: q() gives the 32 weights as bytes — signed for the symmetric types, unsigned
// (0..31) for the types with a minimum, whose m() joins the dot through x's s = d·Σq.
struct dec_q8_0 {
    using block = block_q8_0; using xblock = block_q8_0; static constexpr bool has_min = false;
    static __m256i q(const block& b) { return load32(b.qs); }
};
struct dec_q4_0 {
    using block = block_q4_0; using xblock = block_q8_0; static constexpr bool has_min = false;
    static __m256i q(const block& b) { return _mm256_sub_epi8(unpack_nibbles(b.qs), _mm256_set1_epi8(8)); }
};
struct dec_q5_0 {
    using block = block_q5_0; using xblock = block_q8_0; static constexpr bool has_min = false;
    static __m256i q(const block& b) {
        return _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles(b.qs), bits_to_0x10(b.qh)), _mm256_set1_epi8(16));
    }
};
struct dec_q4_1 {
    using block = block_q4_1; using xblock = block_q8_1; static constexpr bool has_min = true;
    static __m256i q(const block& b) { return unpack_nibbles(b.qs); }
};
struct dec_q5_1 {
    using block = block_q5_1; using xblock = block_q8_1; static constexpr bool has_min = true;
    static __m256i q(const block& b) { return _mm256_or_si256(unpack_nibbles(b.qs), bits_to_0x10(b.qh)); }
};

inline float min_term(const block_q4_1& b, const block_q8_1& x) { return half(b.m) * half(x.s); }
inline float min_term(const block_q5_1& b, const block_q8_1& x) { return half(b.m) * half(x.s); }
template <typename B, typename X> inline float min_term(const B&, const X&) { return 0.0f; }

// R weight rows (nb blocks each, row i at w + i*nb) × NT tokens of quantized x (token j at xq + j*nb).
template <typename D, int R, int NT>
void tile_quant(const typename D::block* w, const typename D::xblock* xq, float* y, int64_t nb, int64_t ldy) {
    __m256 acc[R][NT];
    float mins[R][NT];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NT; j++) { acc[i][j] = _mm256_setzero_ps(); mins[i][j] = 0.0f; }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        for (int i = 0; i < R; i++) {
            const typename D::block& wb = w[i * nb + b];
            const __m256i q = D::q(wb);
            const float dw = half(wb.d);
            // signed × signed via maddubs (unsigned × signed): |q| · sign(x, q)
            const __m256i aq = D::has_min ? q : _mm256_sign_epi8(q, q);
            for (int j = 0; j < NT; j++) {
                const typename D::xblock& xb = xq[j * nb + b];
                const __m256i xv = load32(xb.qs);
                const __m256i p16 = _mm256_maddubs_epi16(aq, D::has_min ? xv : _mm256_sign_epi8(xv, q));
                const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
                acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * half(xb.d)), p, acc[i][j]);
                if (D::has_min) mins[i][j] += min_term(wb, xb);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NT; j++) y[j * ldy + i] = hsum(acc[i][j]) + mins[i][j];
}

template <typename D, int R, int NT>
void rows_quant(const typename D::block* W, const typename D::xblock* xq, float* y, int64_t rows, int64_t nb,
                int64_t ldy) {
    int64_t r = 0;
    for (; r + R <= rows; r += R) tile_quant<D, R, NT>(W + r * nb, xq, y + r, nb, ldy);
    for (; r < rows; r++) tile_quant<D, 1, NT>(W + r * nb, xq, y + r, nb, ldy);
}

template <typename D, void (*quantize_x)(const float*, typename D::xblock*, int64_t)>
void gemm_quant_avx2(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const int64_t nb = cols / QK;
    using xblock = typename D::xblock;
    auto* xq = static_cast<xblock*>(std::malloc(sizeof(xblock) * size_t(n * nb > 0 ? n * nb : 1)));
    if (xq == nullptr) std::abort();
    for (int64_t t = 0; t < n; t++) quantize_x(x + t * cols, xq + t * nb, cols);
    const auto* W = static_cast<const typename D::block*>(w);
    int64_t t = 0;
    for (; t + TILE <= n; t += TILE) rows_quant<D, 1, TILE>(W, xq + t * nb, y + t * ldy, rows, nb, ldy);
    for (; t < n; t++) rows_quant<D, 1, 1>(W, xq + t * nb, y + t * ldy, rows, nb, ldy);
    std::free(xq);
}

// ---- weights in packed.h's 16-row layout: rows 8h..8h+7 of a group in the int32 lanes of half h --
//
// A 64-byte chunk is two 256-bit halves of 8 rows × 4 bytes. maddubs multiplies the unsigned weight
// bytes by x's word k broadcast (signed; elements 4k..4k+3) and adds neighbours to int16, madd adds
// those pairs to int32: each lane gets its row's 4 products, no shuffle and no horizontal sum. The
// halves of a group are done one after another over all blocks (the group stays in L1), so 8 weight
// vectors, the accumulators and x fit the 16 registers.
//   Q4_0: nibbles (0..15); a pair is at most 2·15·128, so the 8 words' int16 sums (≤ 30720) add
//         before one madd; the block sum starts at −8·Σq_x.
//   Q8_0: the stored q + 128 would overflow an int16 pair; one XOR gives q back, and |q| × sign(x, q)
//         (llama.cpp's sign trick) pairs to at most 2·127·127, widened word by word.

constexpr int PTILE = 4; // tokens per pass over a packed half-group

inline __m256i word(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

struct pk_q4_0 {
    static constexpr uint32_t type = GGML_TYPE_Q4_0;
    static constexpr int chunks = 4, off = 8;
    static void weights(const uint8_t* qs, int h, __m256i (&w)[8]) { // w[k] pairs with x's word k
        const __m256i m = _mm256_set1_epi8(0x0f);
        for (int i = 0; i < 4; i++) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 64 * i + 32 * h));
            w[i] = _mm256_and_si256(v, m);
            w[4 + i] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
        }
    }
    static __m256i dot(const __m256i (&w)[8], const int8_t* xq, __m256i start) {
        __m256i s = _mm256_maddubs_epi16(w[0], word(xq));
        for (int k = 1; k < 8; k++) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w[k], word(xq + 4 * k)));
        return _mm256_add_epi32(start, _mm256_madd_epi16(s, _mm256_set1_epi16(1)));
    }
};
struct pk_q8_0 {
    static constexpr uint32_t type = GGML_TYPE_Q8_0;
    static constexpr int chunks = 8, off = 0;
    static void weights(const uint8_t* qs, int h, __m256i (&w)[8]) {
        for (int i = 0; i < 8; i++) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 64 * i + 32 * h));
            w[i] = _mm256_xor_si256(v, _mm256_set1_epi8(char(0x80)));
        }
    }
    static __m256i dot(const __m256i (&w)[8], const int8_t* xq, __m256i start) {
        for (int k = 0; k < 8; k++) {
            const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(w[k]), _mm256_sign_epi8(word(xq + 4 * k), w[k]));
            start = _mm256_add_epi32(start, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
        }
        return start;
    }
};

// Rows 8h..8h+7 of one group (nb blocks; quant bytes from byte sb) × NT tokens of quantized x
// (token j's blocks at xq + j·nb, scales at xd, block sums' starts at xs); y: row 0 of the first token.
template <typename P, int NT>
void half_packed(const uint8_t* g, uint64_t sb, int h, const block_q8_0* xq, const float* xd, const int32_t* xs,
                 int64_t nb, float* y, int64_t ldy) {
    const auto* d = reinterpret_cast<const uint16_t*>(g);
    __m256 acc[NT];
    for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i w[8];
        P::weights(g + sb + uint64_t(b) * P::chunks * 64, h, w);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + b * 16 + 8 * h)));
        for (int j = 0; j < NT; j++) {
            const int64_t k = j * nb + b;
            const __m256i p = P::dot(w, xq[k].qs, _mm256_set1_epi32(xs[k]));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, _mm256_set1_ps(xd[k])), acc[j]);
        }
    }
    for (int j = 0; j < NT; j++) _mm256_storeu_ps(y + j * ldy + 8 * h, acc[j]);
}

template <typename P>
void gemm_packed_avx2(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const int64_t nb = cols / QK;
    void* mem = std::malloc(packed_x_bytes(n, cols));
    if (mem == nullptr) std::abort();
    const packed_x px = prepare_packed_x(mem, x, n, cols, P::off, quantize_row_q8_0);
    const auto* W = static_cast<const uint8_t*>(w);
    const uint64_t gb = packed_group_bytes(P::type, cols);
    const uint64_t sb = packed_scale_bytes(nb);
    for (int64_t r = 0; r < rows; r += PACK_ROWS) {
        const uint8_t* g = W + uint64_t(r / PACK_ROWS) * gb;
        for (int h = 0; h < 2; h++) {
            int64_t t = 0;
            for (; t + PTILE <= n; t += PTILE) {
                half_packed<P, PTILE>(g, sb, h, px.blocks + t * nb, px.d + t * nb, px.start + t * nb, nb, y + t * ldy + r, ldy);
            }
            for (; t < n; t++) half_packed<P, 1>(g, sb, h, px.blocks + t * nb, px.d + t * nb, px.start + t * nb, nb, y + t * ldy + r, ldy);
        }
    }
    std::free(mem);
}

// ---- benchmark probes -----------------------------------------------------------------------

float sum_f32_avx2(const float* a, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
    }
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i];
    return s;
}

float fma_probe_avx2(int64_t iters, int64_t* flops) {
    __m256 acc[16];
    for (int j = 0; j < 16; j++) acc[j] = _mm256_set1_ps(float(j) * 1e-3f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; i++) { // 16 chains cover FMA latency × 2 ports
        for (int j = 0; j < 16; j++) acc[j] = _mm256_fmadd_ps(acc[j], m, c);
    }
    *flops = iters * 16 * 8 * 2;
    __m256 s = acc[0];
    for (int j = 1; j < 16; j++) s = _mm256_add_ps(s, acc[j]);
    return hsum(s);
}

} // namespace

void override_avx2(kernel_table& t) {
    t.isa = "avx2";
    t.dot_f32 = dot_f32_avx2;
    t.sum_f32 = sum_f32_avx2;
    t.fma_probe = fma_probe_avx2;
    t.gemm[GGML_TYPE_F32] = gemm_float_avx2<load_f32>;
    t.gemm[GGML_TYPE_F16] = gemm_float_avx2<load_f16>;
    t.gemm[GGML_TYPE_BF16] = gemm_float_avx2<load_bf16>;
    t.gemm[GGML_TYPE_Q8_0] = gemm_quant_avx2<dec_q8_0, quantize_row_q8_0>;
    t.gemm[GGML_TYPE_Q4_0] = gemm_quant_avx2<dec_q4_0, quantize_row_q8_0>;
    t.gemm[GGML_TYPE_Q4_1] = gemm_quant_avx2<dec_q4_1, quantize_row_q8_1>;
    t.gemm[GGML_TYPE_Q5_0] = gemm_quant_avx2<dec_q5_0, quantize_row_q8_0>;
    t.gemm[GGML_TYPE_Q5_1] = gemm_quant_avx2<dec_q5_1, quantize_row_q8_1>;
    t.packed[GGML_TYPE_Q8_0] = gemm_packed_avx2<pk_q8_0>;
    t.packed[GGML_TYPE_Q4_0] = gemm_packed_avx2<pk_q4_0>;
}

} // namespace pyrnn
