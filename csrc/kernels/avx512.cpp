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
// read ⌈n / TILE⌉ times, never once per token. Matrices the loader repacked (packed.h: Q4_0, Q8_0,
// F32, F16, BF16) run the packed kernels further down instead, 16 rows per register, which is
// what models mostly use; the row kernels serve the other types and the rows past the last group.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers warn about their own `__m256d __Y = __Y;` (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "cephes.h"
#include "kernels.h"
#include "packed.h"
#include "x86_common.h"

namespace pyrnn {

namespace {

constexpr int TILE = 8; // tokens per weight-row pass

// Rows per tile for NT tokens: up to 16 accumulators, and at least 4 independent FMA chains — but
// one row for one token. A tile reads R rows side by side: R interleaved streams, which Zen 4's
// prefetchers follow badly (F16 65536×768 GEMV, one thread: 11 GB/s with R = 4, 31 GB/s reading
// the rows one after another, as numpy's sum of the same bytes). At n = 1 (decode) the weights come
// from memory once and x sits in L1, so the tile saves nothing there. Every tile accumulates a
// (row, token) cell in the same order, so a token's result does not depend on n.
constexpr int rows_for(int nt) { return nt == 1 ? 1 : nt <= 4 ? 4 : 2; }

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

// Two consecutive blocks' nibbles as 64 bytes, block 0's 32 weights first (ggml's element order):
// one load of both 16-byte halves, one shift, one mask, one lane shuffle.
inline __m512i unpack_nibbles2(const uint8_t* qs0, const uint8_t* qs1) {
    const __m256i v = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(qs1), reinterpret_cast<const __m128i*>(qs0));
    const __m512i n = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1),
                                       _mm512_set1_epi8(0x0f)); // 128-bit lanes: lo0 lo1 hi0 hi1
    return _mm512_shuffle_i64x2(n, n, _MM_SHUFFLE(3, 1, 2, 0));  // lo0 hi0 lo1 hi1
}

// Bit j of block 0's qh, then of block 1's, adds 16 to weight j of the pair (q5_0, q5_1).
inline __m512i add_fifth_bits2(__m512i nibbles, const uint8_t* qh0, const uint8_t* qh1) {
    uint32_t v0, v1;
    std::memcpy(&v0, qh0, 4);
    std::memcpy(&v1, qh1, 4);
    return _mm512_mask_add_epi8(nibbles, __mmask64(v0 | uint64_t(v1) << 32), nibbles, _mm512_set1_epi8(0x10));
}

// Two fp16 values as floats: h0 in lanes 0..7, h1 in lanes 8..15 (one permute of 16-bit lanes).
inline __m512 halves2(uint16_t h0, uint16_t h1) {
    const __m256i idx = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    return _mm512_cvtph_ps(_mm256_permutexvar_epi16(idx, _mm256_castsi128_si256(_mm_cvtsi32_si128(int(h0 | uint32_t(h1) << 16)))));
}

// Block decoders: q() gives one block's 32 stored weights as bytes (ggml's element order), q2() a
// pair's 64.
struct dec_q8_0 {
    using block = block_q8_0; using xblock = block_q8_0;
    static constexpr bool has_min = false, signed_q = true; static constexpr int off = 0;
    static __m256i q(const block& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
    static __m512i q2(const block* b) { return _mm512_inserti64x4(_mm512_castsi256_si512(q(b[0])), q(b[1]), 1); }
};
struct dec_q4_0 {
    using block = block_q4_0; using xblock = block_q8_0;
    static constexpr bool has_min = false, signed_q = false; static constexpr int off = 8;
    static __m256i q(const block& b) { return unpack_nibbles(b.qs); }
    static __m512i q2(const block* b) { return unpack_nibbles2(b[0].qs, b[1].qs); }
};
struct dec_q5_0 {
    using block = block_q5_0; using xblock = block_q8_0;
    static constexpr bool has_min = false, signed_q = false; static constexpr int off = 16;
    static __m256i q(const block& b) { return add_fifth_bit(unpack_nibbles(b.qs), b.qh); }
    static __m512i q2(const block* b) { return add_fifth_bits2(unpack_nibbles2(b[0].qs, b[1].qs), b[0].qh, b[1].qh); }
};
struct dec_q4_1 {
    using block = block_q4_1; using xblock = block_q8_1;
    static constexpr bool has_min = true, signed_q = false; static constexpr int off = 0;
    static __m256i q(const block& b) { return unpack_nibbles(b.qs); }
    static __m512i q2(const block* b) { return unpack_nibbles2(b[0].qs, b[1].qs); }
};
struct dec_q5_1 {
    using block = block_q5_1; using xblock = block_q8_1;
    static constexpr bool has_min = true, signed_q = false; static constexpr int off = 0;
    static __m256i q(const block& b) { return add_fifth_bit(unpack_nibbles(b.qs), b.qh); }
    static __m512i q2(const block* b) { return add_fifth_bits2(unpack_nibbles2(b[0].qs, b[1].qs), b[0].qh, b[1].qh); }
};

// One weight block pair (or an odd row's last block, paired with zeros), ready for any token.
struct wpair {
    __m512i q;       // the 64 stored weights as bytes
    __m512 dw, mw;   // d_w (and m_w) of each block, 8 lanes each
    __m512i start;   // q8_0: −128·Σq_w per lane (the product's start, see above); else 0
};

template <typename D>
inline wpair load_pair(const typename D::block* wb, bool pair) {
    wpair p;
    p.mw = _mm512_setzero_ps();
    if (pair) {
        p.q = D::q2(wb);
        p.dw = halves2(wb[0].d, wb[1].d);
        if constexpr (D::has_min) p.mw = halves2(wb[0].m, wb[1].m);
    } else {
        p.q = _mm512_zextsi256_si512(D::q(wb[0]));
        p.dw = _mm512_maskz_mov_ps(0x00ff, _mm512_set1_ps(half(wb[0].d)));
        if constexpr (D::has_min) p.mw = _mm512_maskz_mov_ps(0x00ff, _mm512_set1_ps(half(wb[0].m)));
    }
    p.start = _mm512_setzero_si512();
    if constexpr (D::signed_q) {
        p.start = _mm512_sub_epi32(p.start, _mm512_dpbusd_epi32(p.start, _mm512_set1_epi8(char(0x80)), p.q));
    }
    return p;
}

// acc + the pair's products with prepared activation block k (k even: the pair's first block).
template <typename D>
inline __m512 pair_dot(const wpair& p, const xprep& xp, int64_t k, __m512 acc) {
    const __m512i xv = _mm512_load_si512(xp.qs + 32 * k);
    __m512i prod;
    if constexpr (D::signed_q) {
        prod = _mm512_dpbusd_epi32(p.start, xv, p.q);
    } else if constexpr (D::off != 0) {
        prod = _mm512_dpbusd_epi32(_mm512_load_si512(xp.init + k), p.q, xv);
    } else {
        prod = _mm512_dpbusd_epi32(_mm512_setzero_si512(), p.q, xv);
    }
    acc = _mm512_fmadd_ps(_mm512_mul_ps(p.dw, xp.d[k >> 1]), _mm512_cvtepi32_ps(prod), acc);
    if constexpr (D::has_min) acc = _mm512_fmadd_ps(p.mw, xp.s[k >> 1], acc);
    return acc;
}

// R weight rows (nb blocks each, row i at w + i*nb) × NT tokens of prepared x (tokens t0..t0+NT−1).
template <typename D, int R, int NT>
void tile_quant(const typename D::block* w, const xprep& xp, int64_t t0, float* y, int64_t nb, int64_t ldy) {
    __m512 acc[R][NT];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NT; j++) acc[i][j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        for (int i = 0; i < R; i++) {
            const wpair p = load_pair<D>(w + i * nb + b, b + 1 < nb);
            for (int j = 0; j < NT; j++) acc[i][j] = pair_dot<D>(p, xp, (t0 + j) * xp.nbp + b, acc[i][j]);
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

// x → q8_0 blocks, byte for byte what quantize_row_q8_0 (the reference twin) writes: the same
// amax, d and x·(1/d), and roundf (halves away from zero) as truncation plus one step where the
// dropped part is ≥ ½. A block holding inf or NaN goes to the reference, which makes its scale NaN.
void quantize_q8_0_avx512(const float* x, block_q8_0* y, int64_t n) {
    const __m512 inf = _mm512_set1_ps(__builtin_inff()), half_ = _mm512_set1_ps(0.5f);
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512i sign_bit = _mm512_set1_epi32(int(0x80000000u)), one = _mm512_castps_si512(_mm512_set1_ps(1.0f));
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        const __m512 v[2] = {_mm512_loadu_ps(x), _mm512_loadu_ps(x + 16)};
        const __m512 a0 = _mm512_abs_ps(v[0]), a1 = _mm512_abs_ps(v[1]);
        if (_mm512_cmp_ps_mask(a0, inf, _CMP_NLT_UQ) | _mm512_cmp_ps_mask(a1, inf, _CMP_NLT_UQ)) { // inf or NaN
            quantize_row_q8_0(x, y + b, QK);
            continue;
        }
        const float d = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1)) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        for (int h = 0; h < 2; h++) {
            const __m512 s = _mm512_mul_ps(v[h], _mm512_set1_ps(id));
            const __m512 t = _mm512_roundscale_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(s, t)), half_, _CMP_GE_OQ);
            const __m512 step = _mm512_castsi512_ps( // ±1 with s's sign
                _mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(s), sign_bit), one));
            const __m512 r = _mm512_min_ps(_mm512_max_ps(_mm512_mask_add_ps(t, up, t, step), lo), hi);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16 * h), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
        }
    }
}

// prepare_x's memory, one per thread (each pool thread quantizes x for its own slice of rows).
thread_local scratch x_scratch;

// Quantizes the n tokens (quantize_x: the reference quantizer, the spec, or its twin above) and lays
// them out for tile_quant, in this thread's scratch (valid until its next call).
template <typename D, void (*quantize_x)(const float*, typename D::xblock*, int64_t)>
xprep prepare_x(const float* x, int64_t n, int64_t cols) {
    const int64_t nb = cols / QK, nbp = nb + (nb & 1);
    using xblock = typename D::xblock;
    const size_t count = size_t(n * nbp > 0 ? n * nbp : 2); // blocks, even
    const size_t tmp_bytes = (sizeof(xblock) * size_t(nb) + 63) / 64 * 64;
    char* mem = x_scratch.get(count * (32 + 32 + 32 + 32) + tmp_bytes);
    xprep xp;
    xp.qs = reinterpret_cast<int8_t*>(mem);
    xp.init = reinterpret_cast<__m256i*>(mem + count * 32);
    xp.d = reinterpret_cast<__m512*>(mem + count * 64);
    xp.s = reinterpret_cast<__m512*>(mem + count * 96);
    xp.nbp = nbp;
    auto* tmp = reinterpret_cast<xblock*>(mem + count * 128);
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
        if (nb < nbp) { // the padding block: zero, so that it adds exactly 0 against the zero weight block
            const int64_t k = t * nbp + nb;
            _mm256_store_si256(reinterpret_cast<__m256i*>(xp.qs + 32 * k), _mm256_setzero_si256());
            xp.init[k] = _mm256_setzero_si256();
            _mm256_storeu_ps(dk + 8 * k, _mm256_setzero_ps());
            _mm256_storeu_ps(sk + 8 * k, _mm256_setzero_ps());
        }
    }
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
}

// ---- weights in packed.h's 16-row layout: row r of a group in int32 lane r ---------------------
//
// For each block, 8 weight vectors w[i] hold the 16 rows' bytes for elements 4i..4i+3 (as
// unsigned: Q4_0's stored nibbles, Q8_0's q + 128); x's 4 bytes for those elements are broadcast
// (x's q, signed), and vpdpbusd adds the 16 rows' 4 products at once. The block's integer sum
// starts at −off·Σq_x (off = 8, 128: the stored offset, once per token block, shared by all rows)
// and is scaled by d_w·d_x, 16 rows per FMA. No lane shuffle and no horizontal sum.

// One block's 8 weight vectors, from its chunks of 64 bytes (packed.h).
struct pk_q4_0 {
    static constexpr uint32_t type = GGML_TYPE_Q4_0;
    static constexpr int chunks = 4, off = 8;
    static void weights(const uint8_t* qs, __m512i (&w)[8]) {
        const __m512i m = _mm512_set1_epi8(0x0f);
        for (int i = 0; i < 4; i++) {
            const __m512i v = _mm512_loadu_si512(qs + 64 * i);
            w[i] = _mm512_and_si512(v, m);                          // elements 4i..4i+3
            w[4 + i] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m); // elements 16+4i..16+4i+3
        }
    }
};
struct pk_q8_0 {
    static constexpr uint32_t type = GGML_TYPE_Q8_0;
    static constexpr int chunks = 8, off = 128;
    static void weights(const uint8_t* qs, __m512i (&w)[8]) {
        for (int i = 0; i < 8; i++) w[i] = _mm512_loadu_si512(qs + 64 * i);
    }
};

inline __m512i broadcast_word(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// One group of 16 rows (nb blocks; its quant bytes from byte sb on) × NT tokens t0.. of prepared x;
// y: row 0 of token t0.
template <typename P, int NT>
void group_packed(const uint8_t* g, uint64_t sb, const packed_x& xp, int64_t t0, float* y, int64_t nb, int64_t ldy) {
    const auto* d = reinterpret_cast<const __m256i*>(g);
    const uint8_t* qs = g + sb;
    __m512 acc[NT];
    for (int j = 0; j < NT; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i w[8];
        P::weights(qs + b * P::chunks * 64, w);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(d + b));
        for (int j = 0; j < NT; j++) {
            const int64_t k = (t0 + j) * nb + b;
            const int8_t* xq = xp.blocks[k].qs;
            __m512i p0 = _mm512_set1_epi32(xp.start[k]), p1 = _mm512_setzero_si512(); // two chains
            for (int i = 0; i < 8; i += 2) {
                p0 = _mm512_dpbusd_epi32(p0, w[i], broadcast_word(xq + 4 * i));
                p1 = _mm512_dpbusd_epi32(p1, w[i + 1], broadcast_word(xq + 4 * i + 4));
            }
            const __m512 dwx = _mm512_mul_ps(dw, _mm512_set1_ps(xp.d[k]));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(p0, p1)), dwx, acc[j]);
        }
    }
    for (int j = 0; j < NT; j++) _mm512_storeu_ps(y + j * ldy, acc[j]);
}

template <typename P, int NT>
void groups_packed(const uint8_t* W, const packed_x& xp, int64_t t0, float* y, int64_t rows, int64_t nb, uint64_t gb,
                   int64_t ldy) {
    const uint64_t sb = packed_scale_bytes(nb);
    for (int64_t r = 0; r < rows; r += PACK_ROWS) {
        group_packed<P, NT>(W + uint64_t(r / PACK_ROWS) * gb, sb, xp, t0, y + r, nb, ldy);
    }
}

template <typename P, int NT>
void rest_packed(int64_t k, const uint8_t* W, const packed_x& xp, int64_t t0, float* y, int64_t rows, int64_t nb,
                 uint64_t gb, int64_t ldy) {
    if (k == NT) {
        groups_packed<P, NT>(W, xp, t0, y, rows, nb, gb, ldy);
    } else if constexpr (NT > 1) {
        rest_packed<P, NT - 1>(k, W, xp, t0, y, rows, nb, gb, ldy);
    }
}

template <typename P>
void gemm_packed_avx512(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const int64_t nb = cols / QK;
    const packed_x xp = prepare_packed_x(x_scratch.get(packed_x_bytes(n, cols)), x, n, cols, P::off, quantize_q8_0_avx512);
    const auto* W = static_cast<const uint8_t*>(w);
    const uint64_t gb = packed_group_bytes(P::type, cols);
    int64_t t = 0;
    for (; t + TILE <= n; t += TILE) groups_packed<P, TILE>(W, xp, t, y + t * ldy, rows, nb, gb, ldy);
    rest_packed<P, TILE - 1>(n - t, W, xp, t, y + t * ldy, rows, nb, gb, ldy);
}

// Float weights packed column by column (packed.h): column c of a group is 16 rows' weights, added
// to 16 outputs at once times x_c broadcast. Two accumulators per token (even and odd columns), for
// every NT alike, so a cell's order, and its bits, do not depend on n.
template <typename L, int NT>
void group_packed_float(const typename L::type* g, const float* x, float* y, int64_t cols, int64_t ldy) {
    __m512 acc[NT][2];
    for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 2 <= cols; c += 2) { // unrolled, so that acc stays in registers
        const __m512 w0 = L::v16(g + c * PACK_ROWS), w1 = L::v16(g + (c + 1) * PACK_ROWS);
        for (int j = 0; j < NT; j++) {
            acc[j][0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[j * cols + c]), acc[j][0]);
            acc[j][1] = _mm512_fmadd_ps(w1, _mm512_set1_ps(x[j * cols + c + 1]), acc[j][1]);
        }
    }
    if (c < cols) {
        const __m512 w0 = L::v16(g + c * PACK_ROWS);
        for (int j = 0; j < NT; j++) acc[j][0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[j * cols + c]), acc[j][0]);
    }
    for (int j = 0; j < NT; j++) _mm512_storeu_ps(y + j * ldy, _mm512_add_ps(acc[j][0], acc[j][1]));
}

// Group g starts at element g·ge (ge: a group's elements, with its padding).
template <typename L, int NT>
void rest_packed_float(int64_t k, const typename L::type* W, int64_t ge, const float* x, float* y, int64_t rows,
                       int64_t cols, int64_t ldy) {
    if (k == NT) {
        for (int64_t r = 0; r < rows; r += PACK_ROWS) group_packed_float<L, NT>(W + r / PACK_ROWS * ge, x, y + r, cols, ldy);
    } else if constexpr (NT > 1) {
        rest_packed_float<L, NT - 1>(k, W, ge, x, y, rows, cols, ldy);
    }
}

template <typename L, uint32_t type>
void gemm_packed_float_avx512(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n,
                              int64_t ldy) {
    const auto* W = static_cast<const typename L::type*>(w);
    const auto ge = int64_t(packed_group_bytes(type, cols) / sizeof(typename L::type));
    int64_t t = 0;
    for (; t + TILE <= n; t += TILE) {
        for (int64_t r = 0; r < rows; r += PACK_ROWS) {
            group_packed_float<L, TILE>(W + r / PACK_ROWS * ge, x + t * cols, y + t * ldy + r, cols, ldy);
        }
    }
    rest_packed_float<L, TILE - 1>(n - t, W, ge, x + t * cols, y + t * ldy, rows, cols, ldy);
}

// ---- Mamba-1's selective scan (ssm_scan_ref in ref.cpp is the twin) -----------------------------

// e^x, 16 lanes: 2^n · e^r with n = round(x·log₂e) and r = x − n·ln 2 (ln 2 in two parts, so r is
// exact to float precision), |r| ≤ ln2/2, e^r ≈ 1 + r + r²·P(r) (Cephes expf's degree-5 P): within
// 2 ulp of std::exp on the normal range. x is clamped to [−104, 89] (e^−104 rounds to 0, 2^128 to
// inf) in the operand order that lets a NaN through; scalef applies 2^n without overflowing an
// exponent field.
inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(cephes::exp_hi), _mm512_max_ps(_mm512_set1_ps(cephes::exp_lo), x)); // NaN stays NaN
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(cephes::log2e)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(cephes::ln2_hi), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(cephes::ln2_lo), r);
    __m512 p = _mm512_set1_ps(cephes::exp_p[0]);
    for (int i = 1; i < 6; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(cephes::exp_p[i]));
    const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(e, n);
}

// ln x for finite x ≥ 1 (softplus's 1 + e^x): x = m·2^k with m in [√½, √2], ln x = k·ln 2 + ln m,
// ln m from Cephes logf's degree-8 polynomial in f = m − 1 (ln 2 in two parts, as exp16).
inline __m512 log16(__m512 x) {
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src); // [1, 2)
    __m512 k = _mm512_getexp_ps(x);
    const __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(cephes::sqrt2), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
    k = _mm512_mask_add_ps(k, big, k, _mm512_set1_ps(1.0f));
    const __m512 f = _mm512_sub_ps(m, _mm512_set1_ps(1.0f)), z = _mm512_mul_ps(f, f);
    __m512 p = _mm512_set1_ps(cephes::log_p[0]);
    for (int i = 1; i < 9; i++) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(cephes::log_p[i]));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(f, z), p);
    y = _mm512_fmadd_ps(k, _mm512_set1_ps(cephes::ln2_lo), y);
    y = _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, y);
    return _mm512_fmadd_ps(k, _mm512_set1_ps(cephes::ln2_hi), _mm512_add_ps(f, y));
}

// log1p(u) for u ≥ 0: ln w · u / (w − 1) with w = 1 + u rounded (the quotient cancels w's rounding
// error, so tiny u keep full relative precision); u itself where w rounds to 1.
inline __m512 log1p16(__m512 u) {
    const __m512 w = _mm512_add_ps(u, _mm512_set1_ps(1.0f));
    const __mmask16 one = _mm512_cmp_ps_mask(w, _mm512_set1_ps(1.0f), _CMP_EQ_OQ);
    const __m512 r = _mm512_mul_ps(log16(w), _mm512_div_ps(u, _mm512_sub_ps(w, _mm512_set1_ps(1.0f))));
    return _mm512_mask_mov_ps(r, one, u);
}

inline __m512 one_plus_exp_neg16(__m512 x) { // 1 + e^−x, the denominator of σ(x)
    return _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), x)));
}

inline __m512 silu16(__m512 x) { return _mm512_div_ps(x, one_plus_exp_neg16(x)); }

inline __m512 sigmoid16(__m512 x) { return _mm512_div_ps(_mm512_set1_ps(1.0f), one_plus_exp_neg16(x)); }

inline __m512 softplus16(__m512 x) {
    const __mmask16 linear = _mm512_cmp_ps_mask(x, _mm512_set1_ps(20.0f), _CMP_GT_OQ);
    return _mm512_mask_mov_ps(log1p16(exp16(x)), linear, x);
}

// 16 lanes at a time, the tail masked; a piece holding inf or NaN goes to the reference (ref), whose
// values there (e.g. silu(−inf) = NaN) the clamped exp16 would not give.
template <__m512 (*f16)(__m512), void (*ref)(const float*, float*, int64_t)>
void activation_avx512(const float* x, float* y, int64_t n) {
    const __m512 inf = _mm512_set1_ps(__builtin_inff());
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : first_lanes(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (_mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(v), inf, _CMP_NLT_UQ)) {
            ref(x + i, y + i, n - i >= 16 ? 16 : n - i);
            continue;
        }
        _mm512_mask_storeu_ps(y + i, m, f16(v));
    }
}

// The state in 16-lane pieces (the last one masked); for Mamba's N = 16 one register for all T tokens.
void ssm_scan_avx512(float* h, const float* a, int64_t N, const float* dt, const float* u, float* y, int64_t stride,
                     const float* bc, int64_t bc_stride, int64_t T) {
    for (int64_t t = 0; t < T; t++) y[t * stride] = 0.0f;
    for (int64_t k = 0; k < N; k += 16) {
        const __mmask16 m = N - k >= 16 ? __mmask16(0xffff) : first_lanes(N - k);
        __m512 hk = _mm512_maskz_loadu_ps(m, h + k);
        const __m512 ak = _mm512_maskz_loadu_ps(m, a + k);
        for (int64_t t = 0; t < T; t++) {
            const float* B = bc + t * bc_stride;
            const __m512 dtt = _mm512_set1_ps(dt[t * stride]);
            const __m512 dbu = _mm512_mul_ps(_mm512_mul_ps(dtt, _mm512_maskz_loadu_ps(m, B + k)), _mm512_set1_ps(u[t * stride]));
            hk = _mm512_fmadd_ps(hk, exp16(_mm512_mul_ps(dtt, ak)), dbu);
            y[t * stride] += _mm512_reduce_add_ps(_mm512_mul_ps(hk, _mm512_maskz_loadu_ps(m, B + N + k)));
        }
        _mm512_mask_storeu_ps(h + k, m, hk);
    }
}

// ---- RWKV-7's recurrence (wkv7_ref in ref.cpp is the twin) ---------------------------------------
//
// Several tokens: on a transposed copy ST[j][i] = S[i][j] the three products run down 16 value rows
// at once, with no horizontal sum: sa = −Σ_j ST[j]·kk_j, then per key column j
// ST[j] ← ST[j]·w_j + sa·ka_j + v·k_j and y += ST[j]·r_j (two accumulators each, alternating j, so
// the chains are half as long). The transposes cost 2·N² moves per call — about one token's work
// — but every call takes this path, even for one token: a token's sums then run in one order
// however the sequence is cut into calls, so prefill gives the bits of single steps (the C API and
// the CLI's state files rely on it; a row form for decode broke that). Head sizes that are not a
// multiple of 16, or above 64 (the registers' plan), go to the reference.

thread_local scratch wkv_scratch;

template <int NP> // N = 16·NP
void wkv7_columns(float* S, const float* r, const float* w, const float* k, const float* v, const float* kk,
                  const float* ka, float* y, int64_t stride, int64_t T) {
    constexpr int64_t N = 16 * NP;
    float* ST = reinterpret_cast<float*>(wkv_scratch.get(sizeof(float) * N * N));
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) ST[j * N + i] = S[i * N + j];
    for (int64_t t = 0; t < T; t++, r += stride, w += stride, k += stride, v += stride, kk += stride, ka += stride,
                 y += stride) {
        __m512 sa[NP][2], vv[NP], yy[NP][2];
        for (int p = 0; p < NP; p++) sa[p][0] = sa[p][1] = yy[p][0] = yy[p][1] = _mm512_setzero_ps();
        for (int64_t j = 0; j < N; j += 2) {
            const __m512 k0 = _mm512_set1_ps(kk[j]), k1 = _mm512_set1_ps(kk[j + 1]);
            for (int p = 0; p < NP; p++) {
                sa[p][0] = _mm512_fmadd_ps(_mm512_load_ps(ST + j * N + 16 * p), k0, sa[p][0]);
                sa[p][1] = _mm512_fmadd_ps(_mm512_load_ps(ST + (j + 1) * N + 16 * p), k1, sa[p][1]);
            }
        }
        for (int p = 0; p < NP; p++) {
            sa[p][0] = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_add_ps(sa[p][0], sa[p][1]));
            vv[p] = _mm512_loadu_ps(v + 16 * p);
        }
        for (int64_t j = 0; j < N; j += 2) { // two columns per step, one per y accumulator (in registers)
            for (int h = 0; h < 2; h++) {
                const int64_t jj = j + h;
                const __m512 wj = _mm512_set1_ps(w[jj]), kaj = _mm512_set1_ps(ka[jj]), kj = _mm512_set1_ps(k[jj]);
                const __m512 rj = _mm512_set1_ps(r[jj]);
                for (int p = 0; p < NP; p++) {
                    float* row = ST + jj * N + 16 * p;
                    __m512 s = _mm512_mul_ps(_mm512_load_ps(row), wj);
                    s = _mm512_fmadd_ps(vv[p], kj, _mm512_fmadd_ps(sa[p][0], kaj, s));
                    _mm512_store_ps(row, s);
                    yy[p][h] = _mm512_fmadd_ps(s, rj, yy[p][h]);
                }
            }
        }
        for (int p = 0; p < NP; p++) _mm512_storeu_ps(y + 16 * p, _mm512_add_ps(yy[p][0], yy[p][1]));
    }
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) S[i * N + j] = ST[j * N + i];
}

void wkv7_avx512(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v, const float* kk,
                 const float* ka, float* y, int64_t stride, int64_t T) {
    using fn = void (*)(float*, const float*, const float*, const float*, const float*, const float*, const float*,
                        float*, int64_t, int64_t);
    static constexpr fn columns[4] = {wkv7_columns<1>, wkv7_columns<2>, wkv7_columns<3>, wkv7_columns<4>};
    if (N % 16 != 0 || N < 16 || N > 64) {
        wkv7_ref(S, N, r, w, k, v, kk, ka, y, stride, T);
        return;
    }
    columns[N / 16 - 1](S, r, w, k, v, kk, ka, y, stride, T);
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
    t.quantize_q8_0 = quantize_q8_0_avx512;
    t.ssm_scan = ssm_scan_avx512;
    t.wkv7 = wkv7_avx512;
    t.silu = activation_avx512<silu16, silu_ref>;
    t.softplus = activation_avx512<softplus16, softplus_ref>;
    t.sigmoid = activation_avx512<sigmoid16, sigmoid_ref>;
    t.exp = activation_avx512<exp16, exp_ref>;
    t.gemm[GGML_TYPE_F32] = gemm_float_avx512<load_f32>;
    t.gemm[GGML_TYPE_F16] = gemm_float_avx512<load_f16>;
    t.gemm[GGML_TYPE_BF16] = gemm_float_avx512<load_bf16>;
    t.gemm[GGML_TYPE_Q8_0] = gemm_quant_avx512<dec_q8_0, quantize_q8_0_avx512>;
    t.gemm[GGML_TYPE_Q4_0] = gemm_quant_avx512<dec_q4_0, quantize_q8_0_avx512>;
    t.gemm[GGML_TYPE_Q4_1] = gemm_quant_avx512<dec_q4_1, quantize_row_q8_1>;
    t.gemm[GGML_TYPE_Q5_0] = gemm_quant_avx512<dec_q5_0, quantize_q8_0_avx512>;
    t.gemm[GGML_TYPE_Q5_1] = gemm_quant_avx512<dec_q5_1, quantize_row_q8_1>;
    t.packed[GGML_TYPE_Q8_0] = gemm_packed_avx512<pk_q8_0>;
    t.packed[GGML_TYPE_Q4_0] = gemm_packed_avx512<pk_q4_0>;
    t.packed[GGML_TYPE_F32] = gemm_packed_float_avx512<load_f32, GGML_TYPE_F32>;
    t.packed[GGML_TYPE_F16] = gemm_packed_float_avx512<load_f16, GGML_TYPE_F16>;
    t.packed[GGML_TYPE_BF16] = gemm_packed_float_avx512<load_bf16, GGML_TYPE_BF16>;
}

} // namespace pyrnn
