// avx512.cpp — AVX-512 (F, BW, VL) + VNNI overrides, on top of the avx2 table. Built with
// -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c; reached only through the table after
// dispatch has checked the CPU (and that the OS saves the ZMM and opmask state). As in avx2.cpp,
// everything here has internal linkage and no standard library template is instantiated (hence
// malloc), so the linker can never hand AVX-512 code to a caller on an older CPU.
//
// Float weights: 16 lanes per FMA, the row tail (cols % 16) by masked loads, which read nothing
// past the row. Quantized weights: two 32-weight blocks per 512-bit register, and VNNI's
// vpdpbusd (unsigned bytes × signed bytes, 4 products summed into each int32 lane) replaces
// AVX2's maddubs + madd pair. A one-block-per-256-bit form was measured too: slower for Q8_0,
// Q4_0, Q5_0 prefill, faster for Q4_1/Q5_1 (docs/PERFORMANCE.md).
//
// GEMM tiles: R weight rows × NT tokens; the 32 vector registers allow R·NT = 16 accumulators. The
// tokens left after the full tiles go in one more pass (NT = the remainder), so each weight row is
// read ⌈n / TILE⌉ times, never once per token.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers warn about their own `__m256d __Y = __Y;` (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "x86_common.h"

namespace pyrnn {

namespace {

constexpr int TILE = 8; // tokens per weight-row pass

// Rows per tile for NT tokens: up to 16 accumulators, and at least 4 independent FMA chains.
constexpr int rows_for(int nt) { return nt <= 4 ? 4 : 2; }

inline __mmask16 first_lanes(int64_t k) { return __mmask16((1u << k) - 1); } // k in 0..15

float dot_f32_avx512(const float* a, const float* b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) { // four independent chains hide the FMA latency
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        const __mmask16 m = first_lanes(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// ---- float weights: 16 weights widened to f32 per step ------------------------------------------

struct load_f32 {
    using type = float;
    static __m512 v16(const float* p) { return _mm512_loadu_ps(p); }
    static __m512 part(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct load_f16 {
    using type = uint16_t;
    static __m512 v16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    static __m512 part(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};
struct load_bf16 {
    using type = uint16_t;
    static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
    static __m512 v16(const uint16_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    static __m512 part(const uint16_t* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};

// One 16-column step of an R × NT tile; Tail: only the columns in m (the row's last 1..15).
template <typename L, int R, int NT, bool Tail>
inline void step_float(__m512 (&acc)[R][NT], const typename L::type* w, const float* x, int64_t cols, int64_t c,
                       __mmask16 m) {
    __m512 xv[NT];
    for (int j = 0; j < NT; j++) xv[j] = Tail ? _mm512_maskz_loadu_ps(m, x + j * cols + c) : _mm512_loadu_ps(x + j * cols + c);
    for (int i = 0; i < R; i++) {
        const __m512 wv = Tail ? L::part(w + i * cols + c, m) : L::v16(w + i * cols + c);
        for (int j = 0; j < NT; j++) acc[i][j] = _mm512_fmadd_ps(wv, xv[j], acc[i][j]);
    }
}

template <typename L, int R, int NT>
void tile_float(const typename L::type* w, const float* x, float* y, int64_t cols, int64_t ldy) {
    __m512 acc[R][NT];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NT; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) step_float<L, R, NT, false>(acc, w, x, cols, c, 0);
    if (c < cols) step_float<L, R, NT, true>(acc, w, x, cols, c, first_lanes(cols - c));
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NT; j++) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
}

// All rows (in groups of R, then one at a time) for one group of NT tokens.
template <typename L, int NT>
void rows_float(const typename L::type* W, const float* x, float* y, int64_t rows, int64_t cols, int64_t ldy) {
    constexpr int R = rows_for(NT);
    int64_t r = 0;
    for (; r + R <= rows; r += R) tile_float<L, R, NT>(W + r * cols, x, y + r, cols, ldy);
    for (; r < rows; r++) tile_float<L, 1, NT>(W + r * cols, x, y + r, cols, ldy);
}

// The last k < TILE tokens in one pass (NT = k, found by counting down from TILE − 1).
template <typename L, int NT>
void rest_float(int64_t k, const typename L::type* W, const float* x, float* y, int64_t rows, int64_t cols,
                int64_t ldy) {
    if (k == NT) {
        rows_float<L, NT>(W, x, y, rows, cols, ldy);
    } else if constexpr (NT > 1) {
        rest_float<L, NT - 1>(k, W, x, y, rows, cols, ldy);
    }
}

template <typename L>
void gemm_float_avx512(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const auto* W = static_cast<const typename L::type*>(w);
    int64_t t = 0;
    for (; t + TILE <= n; t += TILE) rows_float<L, TILE>(W, x + t * cols, y + t * ldy, rows, cols, ldy);
    rest_float<L, TILE - 1>(n - t, W, x + t * cols, y + t * ldy, rows, cols, ldy);
}

// ---- quantized weights × 8-bit activations (the reference twins are dot_q*_ in ref.cpp) --------
//
// Two consecutive 32-weight blocks fill one 512-bit register (a row's odd last block pairs with a
// zero block). vpdpbusd multiplies unsigned bytes by signed bytes; the block sums stay exact
// integers, as the reference's, by choosing the unsigned side per type:
//   q4_1, q5_1: the weights' q (0..15, 0..31) × x's q.
//   q4_0, q5_0: the stored q (0..15, 0..31) × x's q, from an accumulator that starts at
//               −off·Σx (off = 8, 16; per 4-byte lane, computed once per activation block).
//   q8_0:       x's q + 128 (0..255, stored once per call) × the weights' q, from an accumulator
//               that starts at −128·Σq_w (once per weight block pair, shared by the NT tokens).
// Lanes 0..7 of a product belong to the first block, 8..15 to the second, each scaled by its own
// d_w·d_x. The q*_1 minimum's share m_w·s_x is spread over the block's 8 lanes as m_w·(s_x / 8)
// (exact: a power of two), one FMA per block pair instead of two scalar ones.

// The activations of one call, quantized once for all weight rows. Each token has nbp blocks (nb
// rounded up to even; the padding block is all zero), so block pair p of token t is at index
// t·nbp/2 + p, and block k = t·nbp + b.
struct xprep {
    int8_t* qs;     // 32 bytes per block, 64-byte aligned: x's q (q + 128 as unsigned for q8_0 weights)
    __m256i* init;  // per block: −off·Σ of each 4-byte lane of x's q (offset types only)
    __m512* d;      // per block pair: the two blocks' scales, 8 lanes each
    __m512* s;      // per block pair: q8_1's d·Σq / 8, 8 lanes each (types with a minimum only)
    int64_t nbp;
};

// Bit j of qh adds 16 to weight j (q5_0, q5_1).
inline __m256i add_fifth_bit(__m256i nibbles, const uint8_t* qh) {
    uint32_t v;
    std::memcpy(&v, qh, 4);
    return _mm256_mask_add_epi8(nibbles, __mmask32(v), nibbles, _mm256_set1_epi8(0x10));
}

// Block decoders: q() gives the 32 stored weights as bytes (ggml's element order).
struct dec_q8_0 {
    using block = block_q8_0; using xblock = block_q8_0;
    static constexpr bool has_min = false, signed_q = true; static constexpr int off = 0;
    static __m256i q(const block& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
};
struct dec_q4_0 {
    using block = block_q4_0; using xblock = block_q8_0;
    static constexpr bool has_min = false, signed_q = false; static constexpr int off = 8;
    static __m256i q(const block& b) { return unpack_nibbles(b.qs); }
};
struct dec_q5_0 {
    using block = block_q5_0; using xblock = block_q8_0;
    static constexpr bool has_min = false, signed_q = false; static constexpr int off = 16;
    static __m256i q(const block& b) { return add_fifth_bit(unpack_nibbles(b.qs), b.qh); }
};
struct dec_q4_1 {
    using block = block_q4_1; using xblock = block_q8_1;
    static constexpr bool has_min = true, signed_q = false; static constexpr int off = 0;
    static __m256i q(const block& b) { return unpack_nibbles(b.qs); }
};
struct dec_q5_1 {
    using block = block_q5_1; using xblock = block_q8_1;
    static constexpr bool has_min = true, signed_q = false; static constexpr int off = 0;
    static __m256i q(const block& b) { return add_fifth_bit(unpack_nibbles(b.qs), b.qh); }
};

// R weight rows (nb blocks each, row i at w + i*nb) × NT tokens of prepared x (tokens t0..t0+NT−1).
template <typename D, int R, int NT>
void tile_quant(const typename D::block* w, const xprep& xp, int64_t t0, float* y, int64_t nb, int64_t ldy) {
    __m512 acc[R][NT];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NT; j++) acc[i][j] = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t b = 0; b < nb; b += 2) {
        const bool pair = b + 1 < nb; // false only for an odd row's last block
        for (int i = 0; i < R; i++) {
            const typename D::block* wb = w + i * nb + b;
            __m512i q;
            __m512 dw, mw = _mm512_setzero_ps();
            if (pair) {
                q = _mm512_inserti64x4(_mm512_castsi256_si512(D::q(wb[0])), D::q(wb[1]), 1);
                dw = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(half(wb[0].d)), _mm512_set1_ps(half(wb[1].d)));
                if constexpr (D::has_min) {
                    mw = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(half(wb[0].m)), _mm512_set1_ps(half(wb[1].m)));
                }
            } else {
                q = _mm512_zextsi256_si512(D::q(wb[0]));
                dw = _mm512_maskz_mov_ps(0x00ff, _mm512_set1_ps(half(wb[0].d)));
                if constexpr (D::has_min) mw = _mm512_maskz_mov_ps(0x00ff, _mm512_set1_ps(half(wb[0].m)));
            }
            __m512i start = zero;
            if constexpr (D::signed_q) start = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(char(0x80)), q));
            for (int j = 0; j < NT; j++) {
                const int64_t k = (t0 + j) * xp.nbp + b;
                const __m512i xv = _mm512_load_si512(xp.qs + 32 * k);
                __m512i p;
                if constexpr (D::signed_q) {
                    p = _mm512_dpbusd_epi32(start, xv, q);
                } else if constexpr (D::off != 0) {
                    p = _mm512_dpbusd_epi32(_mm512_load_si512(xp.init + k), q, xv);
                } else {
                    p = _mm512_dpbusd_epi32(zero, q, xv);
                }
                acc[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(dw, xp.d[k / 2]), _mm512_cvtepi32_ps(p), acc[i][j]);
                if constexpr (D::has_min) acc[i][j] = _mm512_fmadd_ps(mw, xp.s[k / 2], acc[i][j]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NT; j++) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
}

template <typename D, int NT>
void rows_quant(const typename D::block* W, const xprep& xp, int64_t t0, float* y, int64_t rows, int64_t nb,
                int64_t ldy) {
    constexpr int R = rows_for(NT);
    int64_t r = 0;
    for (; r + R <= rows; r += R) tile_quant<D, R, NT>(W + r * nb, xp, t0, y + r, nb, ldy);
    for (; r < rows; r++) tile_quant<D, 1, NT>(W + r * nb, xp, t0, y + r, nb, ldy);
}

template <typename D, int NT>
void rest_quant(int64_t k, const typename D::block* W, const xprep& xp, int64_t t0, float* y, int64_t rows,
                int64_t nb, int64_t ldy) {
    if (k == NT) {
        rows_quant<D, NT>(W, xp, t0, y, rows, nb, ldy);
    } else if constexpr (NT > 1) {
        rest_quant<D, NT - 1>(k, W, xp, t0, y, rows, nb, ldy);
    }
}

// Quantizes the n tokens with the reference quantizer (the spec) and lays them out for tile_quant.
// One allocation; the caller frees xp.qs with _mm_free.
template <typename D, void (*quantize_x)(const float*, typename D::xblock*, int64_t)>
xprep prepare_x(const float* x, int64_t n, int64_t cols) {
    const int64_t nb = cols / QK, nbp = nb + (nb & 1);
    using xblock = typename D::xblock;
    const size_t count = size_t(n * nbp > 0 ? n * nbp : 2); // blocks, even
    auto* tmp = static_cast<xblock*>(std::malloc(sizeof(xblock) * count));
    const size_t bytes = count * (32 + 32 + 32 + 32);
    auto* mem = static_cast<char*>(_mm_malloc(bytes, 64));
    if (tmp == nullptr || mem == nullptr) std::abort();
    std::memset(mem, 0, bytes); // the padding blocks
    xprep xp;
    xp.qs = reinterpret_cast<int8_t*>(mem);
    xp.init = reinterpret_cast<__m256i*>(mem + count * 32);
    xp.d = reinterpret_cast<__m512*>(mem + count * 64);
    xp.s = reinterpret_cast<__m512*>(mem + count * 96);
    xp.nbp = nbp;
    // Block k's scale (and s / 8) fills lanes 8·(k % 2) .. +7 of pair k / 2.
    float* dk = reinterpret_cast<float*>(xp.d);
    float* sk = reinterpret_cast<float*>(xp.s);
    for (int64_t t = 0; t < n; t++) {
        quantize_x(x + t * cols, tmp, cols);
        for (int64_t b = 0; b < nb; b++) {
            const int64_t k = t * nbp + b;
            __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tmp[b].qs));
            if constexpr (D::signed_q) q = _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80)));
            _mm256_store_si256(reinterpret_cast<__m256i*>(xp.qs + 32 * k), q);
            if constexpr (D::off != 0) { // Σ per lane of 4 bytes, times −off
                const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q);
                xp.init[k] = _mm256_mullo_epi32(sums, _mm256_set1_epi32(-D::off));
            }
            _mm256_storeu_ps(dk + 8 * k, _mm256_set1_ps(half(tmp[b].d)));
            if constexpr (D::has_min) _mm256_storeu_ps(sk + 8 * k, _mm256_set1_ps(half(tmp[b].s) * 0.125f));
        }
    }
    std::free(tmp);
    return xp;
}

template <typename D, void (*quantize_x)(const float*, typename D::xblock*, int64_t)>
void gemm_quant_avx512(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const int64_t nb = cols / QK;
    const xprep xp = prepare_x<D, quantize_x>(x, n, cols);
    const auto* W = static_cast<const typename D::block*>(w);
    int64_t t = 0;
    for (; t + TILE <= n; t += TILE) rows_quant<D, TILE>(W, xp, t, y + t * ldy, rows, nb, ldy);
    rest_quant<D, TILE - 1>(n - t, W, xp, t, y + t * ldy, rows, nb, ldy);
    _mm_free(xp.qs);
}

// ---- benchmark probes -----------------------------------------------------------------------

float sum_f32_avx512(const float* a, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + i + 48));
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
    if (i < n) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(first_lanes(n - i), a + i));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float fma_probe_avx512(int64_t iters, int64_t* flops) {
    __m512 acc[16];
    for (int j = 0; j < 16; j++) acc[j] = _mm512_set1_ps(float(j) * 1e-3f);
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; i++) {
        for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(acc[j], m, c);
    }
    *flops = iters * 16 * 16 * 2;
    __m512 s = acc[0];
    for (int j = 1; j < 16; j++) s = _mm512_add_ps(s, acc[j]);
    return _mm512_reduce_add_ps(s);
}

} // namespace

void override_avx512(kernel_table& t) {
    t.isa = "avx512";
    t.dot_f32 = dot_f32_avx512;
    t.sum_f32 = sum_f32_avx512;
    t.fma_probe = fma_probe_avx512;
    t.gemm[GGML_TYPE_F32] = gemm_float_avx512<load_f32>;
    t.gemm[GGML_TYPE_F16] = gemm_float_avx512<load_f16>;
    t.gemm[GGML_TYPE_BF16] = gemm_float_avx512<load_bf16>;
    t.gemm[GGML_TYPE_Q8_0] = gemm_quant_avx512<dec_q8_0, quantize_row_q8_0>;
    t.gemm[GGML_TYPE_Q4_0] = gemm_quant_avx512<dec_q4_0, quantize_row_q8_0>;
    t.gemm[GGML_TYPE_Q4_1] = gemm_quant_avx512<dec_q4_1, quantize_row_q8_1>;
    t.gemm[GGML_TYPE_Q5_0] = gemm_quant_avx512<dec_q5_0, quantize_row_q8_0>;
    t.gemm[GGML_TYPE_Q5_1] = gemm_quant_avx512<dec_q5_1, quantize_row_q8_1>;
}

} // namespace pyrnn
