// avx2.cpp — AVX2 + FMA + F16C overrides. Built with -mavx2 -mfma -mf16c; reached only through
// the table after dispatch has checked the CPU. Code compiled with AVX2 must never be picked by
// the linker for a caller on an older CPU: everything here has internal linkage, and no standard
// library template is instantiated (hence x86_common.h's scratch, not vector).
//
// GEMM tiles: a few weight rows × 4 tokens, so each vector loaded feeds several FMAs and the
// independent accumulators hide the FMA latency. A single token (decode, and the tokens left over)
// reads one row at a time: several rows side by side are several interleaved streams, which the
// hardware prefetchers follow badly (avx512.cpp, rows_for). Every tile accumulates a (row, token)
// cell in the same order, so a token's result does not depend on n.
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "cephes.h"
#include "kernels.h"
#include "packed.h"
#include "x86_common.h"

namespace pyrnn {

namespace {

constexpr int TILE = 4; // tokens per weight-row pass

thread_local scratch x_scratch; // the quantized activations of this thread's gemm calls

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

// ---- activation quantizer (quantize_row_q8_0 is the twin) -------------------------------------------

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

// x → q8_0 blocks, byte for byte what quantize_row_q8_0 writes: the same amax, d and x·(1/d), and
// roundf (halves away from zero) as truncation plus one step where the dropped part is ≥ ½. A block
// holding inf or NaN goes to the reference, which makes its scale NaN.
void quantize_q8_0_avx2(const float* x, block_q8_0* y, int64_t n) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 inf = _mm256_set1_ps(__builtin_inff()), half_ = _mm256_set1_ps(0.5f);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256 sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000u))), one = _mm256_set1_ps(1.0f);
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        __m256 v[4], amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + 8 * i);
            const __m256 a = _mm256_and_ps(v[i], abs_mask);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
            amax = _mm256_max_ps(amax, a);
        }
        if (_mm256_movemask_ps(bad) != 0) { // inf or NaN
            quantize_row_q8_0(x, y + b, QK);
            continue;
        }
        const float d = hmax(amax) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        __m256i q[4];
        for (int i = 0; i < 4; i++) {
            const __m256 s = _mm256_mul_ps(v[i], _mm256_set1_ps(id));
            const __m256 t = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m256 up = _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(s, t), abs_mask), half_, _CMP_GE_OQ);
            const __m256 step = _mm256_or_ps(_mm256_and_ps(s, sign_bit), one); // ±1 with s's sign
            const __m256 r = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, _mm256_and_ps(up, step)), lo), hi);
            q[i] = _mm256_cvtps_epi32(r);
        }
        // packs interleave the 128-bit lanes: bytes come out as 4-element runs of q0 q1 q2 q3 (low
        // halves), then the high halves; one dword permute restores the order
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs),
                            _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
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
    auto* xq = reinterpret_cast<xblock*>(x_scratch.get(sizeof(xblock) * size_t(n * nb > 0 ? n * nb : 1)));
    for (int64_t t = 0; t < n; t++) quantize_x(x + t * cols, xq + t * nb, cols);
    const auto* W = static_cast<const typename D::block*>(w);
    int64_t t = 0;
    for (; t + TILE <= n; t += TILE) rows_quant<D, 1, TILE>(W, xq + t * nb, y + t * ldy, rows, nb, ldy);
    for (; t < n; t++) rows_quant<D, 1, 1>(W, xq + t * nb, y + t * ldy, rows, nb, ldy);
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
template <typename P, int NT, bool prefetch>
void half_packed(const uint8_t* g, uint64_t sb, int h, const block_q8_0* xq, const float* xd, const int32_t* xs,
                 int64_t nb, float* y, int64_t ldy, uint64_t pf) {
    const auto* d = reinterpret_cast<const uint16_t*>(g);
    __m256 acc[NT];
    for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i w[8];
        const uint8_t* blk = g + sb + uint64_t(b) * P::chunks * 64;
        if (prefetch) // the group two ahead, one line per chunk (the DRAM stream; the pass's other calls hit cache)
            for (int i = 0; i < P::chunks; i++) _mm_prefetch(reinterpret_cast<const char*>(blk + pf + 64 * i), _MM_HINT_T0);
        P::weights(blk, h, w);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + b * 16 + 8 * h)));
        for (int j = 0; j < NT; j++) {
            const int64_t k = j * nb + b;
            const __m256i p = P::dot(w, xq[k].qs, _mm256_set1_epi32(xs[k]));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, _mm256_set1_ps(xd[k])), acc[j]);
        }
    }
    for (int j = 0; j < NT; j++) _mm256_storeu_ps(y + j * ldy + 8 * h, acc[j]);
}

// One token against a whole group, block by block, both halves per block: the decode form. The group
// streams from memory once and each line's 16 rows are used as it arrives (the two passes above
// leave half the rows' work until the group has come in, with nothing to overlap the stream).
// Each row gets half_packed's operations for one token in the same order: a tile's bits.
template <typename P, bool prefetch>
void group_packed_one(const uint8_t* g, uint64_t sb, const block_q8_0* xq, const float* xd, const int32_t* xs,
                      int64_t nb, float* y, uint64_t pf) {
    const auto* d = reinterpret_cast<const uint16_t*>(g);
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t* blk = g + sb + uint64_t(b) * P::chunks * 64;
        if (prefetch)
            for (int i = 0; i < P::chunks; i++) _mm_prefetch(reinterpret_cast<const char*>(blk + pf + 64 * i), _MM_HINT_T0);
        for (int h = 0; h < 2; h++) {
            __m256i w[8];
            P::weights(blk, h, w);
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + b * 16 + 8 * h)));
            const __m256i p = P::dot(w, xq[b].qs, _mm256_set1_epi32(xs[b]));
            acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, _mm256_set1_ps(xd[b])), acc[h]);
        }
    }
    _mm256_storeu_ps(y, acc[0]);
    _mm256_storeu_ps(y + 8, acc[1]);
}

template <typename P>
void gemm_packed_avx2(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const int64_t nb = cols / QK;
    const packed_x px = prepare_packed_x(x_scratch.get(packed_x_bytes(n, cols)), x, n, cols, P::off, quantize_q8_0_avx2);
    const auto* W = static_cast<const uint8_t*>(w);
    const uint64_t gb = packed_group_bytes(P::type, cols);
    const uint64_t sb = packed_scale_bytes(nb);
    for (int64_t r = 0; r < rows; r += PACK_ROWS) {
        const uint8_t* g = W + uint64_t(r / PACK_ROWS) * gb;
        const int64_t tiled = n / PTILE * PTILE;
        for (int h = 0; h < 2; h++) {
            for (int64_t t = 0; t < tiled; t += PTILE) {
                const auto f = h == 0 && t == 0 ? half_packed<P, PTILE, true> : half_packed<P, PTILE, false>;
                f(g, sb, h, px.blocks + t * nb, px.d + t * nb, px.start + t * nb, nb, y + t * ldy + r, ldy, 2 * gb);
            }
        }
        for (int64_t t = tiled; t < n; t++) {
            const auto f = t == 0 ? group_packed_one<P, true> : group_packed_one<P, false>;
            f(g, sb, px.blocks + t * nb, px.d + t * nb, px.start + t * nb, nb, y + t * ldy + r, 2 * gb);
        }
    }
}

// ---- e^x and the activations built on it (avx512.cpp's exp16 family, 8 lanes, the same steps) ------

// e^x: 2^n · e^r with n = round(x·log₂e), r = x − n·ln 2 (ln 2 in two parts), e^r ≈ 1 + r + r²·P(r)
// (Cephes expf's P); within 2 ulp of std::exp. x is clamped to [−104, 89] in the order that lets a
// NaN through. AVX2 has no scalef: 2^n (n in [−150, 128]) is applied as two exponent-field factors
// 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), each a normal float; the first product is exact, so the result is rounded
// once, as scalef rounds it.
inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(cephes::exp_hi), _mm256_max_ps(_mm256_set1_ps(cephes::exp_lo), x)); // NaN stays NaN
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(cephes::log2e)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(cephes::ln2_hi), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(cephes::ln2_lo), r);
    __m256 p = _mm256_set1_ps(cephes::exp_p[0]);
    for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(cephes::exp_p[i]));
    const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const auto pow2 = [](__m256i k) { // 2^k for k in [−126, 127]
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
    };
    return _mm256_mul_ps(_mm256_mul_ps(e, pow2(n1)), pow2(n2));
}

// ln x for finite x ≥ 1: x = m·2^k with m in [√½, √2] (exponent and mantissa fields; x is normal),
// ln m from Cephes logf's polynomial in f = m − 1, as avx512.cpp's log16.
inline __m256 log8(__m256 x) {
    const __m256i bits = _mm256_castps_si256(x);
    __m256 k = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
    __m256 m = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000))); // [1, 2)
    const __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(cephes::sqrt2), _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
    k = _mm256_add_ps(k, _mm256_and_ps(big, _mm256_set1_ps(1.0f)));
    const __m256 f = _mm256_sub_ps(m, _mm256_set1_ps(1.0f)), z = _mm256_mul_ps(f, f);
    __m256 p = _mm256_set1_ps(cephes::log_p[0]);
    for (int i = 1; i < 9; i++) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(cephes::log_p[i]));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(f, z), p);
    y = _mm256_fmadd_ps(k, _mm256_set1_ps(cephes::ln2_lo), y);
    y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
    return _mm256_fmadd_ps(k, _mm256_set1_ps(cephes::ln2_hi), _mm256_add_ps(f, y));
}

// log1p(u) for u ≥ 0: ln w · u / (w − 1) with w = 1 + u rounded; u itself where w rounds to 1.
inline __m256 log1p8(__m256 u) {
    const __m256 w = _mm256_add_ps(u, _mm256_set1_ps(1.0f));
    const __m256 one = _mm256_cmp_ps(w, _mm256_set1_ps(1.0f), _CMP_EQ_OQ);
    const __m256 r = _mm256_mul_ps(log8(w), _mm256_div_ps(u, _mm256_sub_ps(w, _mm256_set1_ps(1.0f))));
    return _mm256_blendv_ps(r, u, one);
}

inline __m256 one_plus_exp_neg8(__m256 x) { // 1 + e^−x, the denominator of σ(x)
    return _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), x)));
}

inline __m256 silu8(__m256 x) { return _mm256_div_ps(x, one_plus_exp_neg8(x)); }

inline __m256 sigmoid8(__m256 x) { return _mm256_div_ps(_mm256_set1_ps(1.0f), one_plus_exp_neg8(x)); }

inline __m256 softplus8(__m256 x) {
    const __m256 linear = _mm256_cmp_ps(x, _mm256_set1_ps(20.0f), _CMP_GT_OQ);
    return _mm256_blendv_ps(log1p8(exp8(x)), x, linear);
}

// 8 lanes at a time, then the tail through a zero-padded copy, so an element's value does not depend
// on where it sits. A piece holding inf or NaN goes to the reference (ref), whose values there (e.g.
// silu(−inf) = NaN) the clamped exp8 would not give.
template <__m256 (*f8)(__m256), void (*ref)(const float*, float*, int64_t)>
void activation_avx2(const float* x, float* y, int64_t n) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), inf = _mm256_set1_ps(__builtin_inff());
    const auto piece = [&](const float* in, float* out) { // 8 values; false (nothing written) if one is not finite
        const __m256 v = _mm256_loadu_ps(in);
        if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(v, abs_mask), inf, _CMP_NLT_UQ)) != 0) return false;
        _mm256_storeu_ps(out, f8(v));
        return true;
    };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if (!piece(x + i, y + i)) ref(x + i, y + i, 8);
    }
    if (i < n) {
        const int64_t m = n - i;
        float tail[8] = {}, out[8];
        std::memcpy(tail, x + i, sizeof(float) * size_t(m));
        if (piece(tail, out)) {
            std::memcpy(y + i, out, sizeof(float) * size_t(m));
        } else {
            ref(x + i, y + i, m);
        }
    }
}

// ---- Mamba-1's selective scan (ssm_scan_ref in ref.cpp is the twin) -----------------------------

// N = 8·NP ≤ 32: the whole state in registers through all T tokens, one horizontal sum per token.
template <int NP>
void ssm_scan_regs(float* h, const float* a, const float* dt, const float* u, float* y, int64_t stride,
                   const float* bc, int64_t bc_stride, int64_t T) {
    constexpr int64_t N = 8 * NP;
    __m256 hk[NP], ak[NP];
    for (int p = 0; p < NP; p++) {
        hk[p] = _mm256_loadu_ps(h + 8 * p);
        ak[p] = _mm256_loadu_ps(a + 8 * p);
    }
    for (int64_t t = 0; t < T; t++) {
        const float* B = bc + t * bc_stride;
        const __m256 dtt = _mm256_set1_ps(dt[t * stride]), ut = _mm256_set1_ps(u[t * stride]);
        __m256 yt = _mm256_setzero_ps();
        for (int p = 0; p < NP; p++) {
            const __m256 dbu = _mm256_mul_ps(_mm256_mul_ps(dtt, _mm256_loadu_ps(B + 8 * p)), ut);
            hk[p] = _mm256_fmadd_ps(hk[p], exp8(_mm256_mul_ps(dtt, ak[p])), dbu);
            yt = _mm256_fmadd_ps(hk[p], _mm256_loadu_ps(B + N + 8 * p), yt);
        }
        y[t * stride] = hsum(yt);
    }
    for (int p = 0; p < NP; p++) _mm256_storeu_ps(h + 8 * p, hk[p]);
}

// The state in 8-lane pieces (in registers for N ≤ 32, Mamba's 16 among them); N that is not a
// multiple of 8 goes to the reference.
void ssm_scan_avx2(float* h, const float* a, int64_t N, const float* dt, const float* u, float* y, int64_t stride,
                   const float* bc, int64_t bc_stride, int64_t T) {
    if (N % 8 != 0 || N == 0) {
        ssm_scan_ref(h, a, N, dt, u, y, stride, bc, bc_stride, T);
        return;
    }
    using fn = void (*)(float*, const float*, const float*, const float*, float*, int64_t, const float*, int64_t, int64_t);
    static constexpr fn in_registers[4] = {ssm_scan_regs<1>, ssm_scan_regs<2>, ssm_scan_regs<3>, ssm_scan_regs<4>};
    if (N <= 32) {
        in_registers[N / 8 - 1](h, a, dt, u, y, stride, bc, bc_stride, T);
        return;
    }
    for (int64_t t = 0; t < T; t++) y[t * stride] = 0.0f;
    for (int64_t k = 0; k < N; k += 8) {
        __m256 hk = _mm256_loadu_ps(h + k);
        const __m256 ak = _mm256_loadu_ps(a + k);
        for (int64_t t = 0; t < T; t++) {
            const float* B = bc + t * bc_stride;
            const __m256 dtt = _mm256_set1_ps(dt[t * stride]);
            const __m256 dbu = _mm256_mul_ps(_mm256_mul_ps(dtt, _mm256_loadu_ps(B + k)), _mm256_set1_ps(u[t * stride]));
            hk = _mm256_fmadd_ps(hk, exp8(_mm256_mul_ps(dtt, ak)), dbu);
            y[t * stride] += hsum(_mm256_mul_ps(hk, _mm256_loadu_ps(B + N + k)));
        }
        _mm256_storeu_ps(h + k, hk);
    }
}

// ---- RWKV-7's recurrence (wkv7_ref in ref.cpp is the twin) ---------------------------------------
//
// avx512.cpp's column form on a transposed copy ST[j][i] = S[i][j], with 16 registers instead of 32:
// value rows go in blocks of 8·P (P = 2 where N allows), each block through all T tokens before the
// next (rows of S do not interact, and a block's N × 8·P slice of ST stays in L1). Per token:
// sa = −Σ_j ST[j]·kk_j, then per key column j ST[j] ← ST[j]·w_j + sa·ka_j + v·k_j and y += ST[j]·r_j,
// two accumulators each, alternating j. A row's sums run in one order however the tokens are cut
// into calls, so prefill gives the bits of single steps. N not a multiple of 8 goes to the reference.

thread_local scratch wkv_scratch;

template <int P>
void wkv7_blocks(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v, const float* kk,
                 const float* ka, float* y, int64_t stride, int64_t T) {
    float* ST = reinterpret_cast<float*>(wkv_scratch.get(sizeof(float) * size_t(N * N)));
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) ST[j * N + i] = S[i * N + j];
    for (int64_t i0 = 0; i0 < N; i0 += 8 * P) {
        for (int64_t t = 0; t < T; t++) {
            const int64_t o = t * stride;
            __m256 sa[P][2], vv[P], yy[P][2];
            for (int p = 0; p < P; p++) sa[p][0] = sa[p][1] = yy[p][0] = yy[p][1] = _mm256_setzero_ps();
            for (int64_t j = 0; j < N; j += 2) {
                const __m256 k0 = _mm256_set1_ps(kk[o + j]), k1 = _mm256_set1_ps(kk[o + j + 1]);
                for (int p = 0; p < P; p++) {
                    sa[p][0] = _mm256_fmadd_ps(_mm256_load_ps(ST + j * N + i0 + 8 * p), k0, sa[p][0]);
                    sa[p][1] = _mm256_fmadd_ps(_mm256_load_ps(ST + (j + 1) * N + i0 + 8 * p), k1, sa[p][1]);
                }
            }
            for (int p = 0; p < P; p++) {
                sa[p][0] = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_add_ps(sa[p][0], sa[p][1]));
                vv[p] = _mm256_loadu_ps(v + o + i0 + 8 * p);
            }
            for (int64_t j = 0; j < N; j += 2) {
                for (int h = 0; h < 2; h++) {
                    const int64_t jj = j + h;
                    const __m256 wj = _mm256_set1_ps(w[o + jj]), kaj = _mm256_set1_ps(ka[o + jj]);
                    const __m256 kj = _mm256_set1_ps(k[o + jj]), rj = _mm256_set1_ps(r[o + jj]);
                    for (int p = 0; p < P; p++) {
                        float* row = ST + jj * N + i0 + 8 * p;
                        __m256 s = _mm256_mul_ps(_mm256_load_ps(row), wj);
                        s = _mm256_fmadd_ps(vv[p], kj, _mm256_fmadd_ps(sa[p][0], kaj, s));
                        _mm256_store_ps(row, s);
                        yy[p][h] = _mm256_fmadd_ps(s, rj, yy[p][h]);
                    }
                }
            }
            for (int p = 0; p < P; p++) _mm256_storeu_ps(y + o + i0 + 8 * p, _mm256_add_ps(yy[p][0], yy[p][1]));
        }
    }
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) S[i * N + j] = ST[j * N + i];
}

void wkv7_avx2(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v, const float* kk,
               const float* ka, float* y, int64_t stride, int64_t T) {
    if (N % 16 == 0) {
        wkv7_blocks<2>(S, N, r, w, k, v, kk, ka, y, stride, T);
    } else if (N % 8 == 0) {
        wkv7_blocks<1>(S, N, r, w, k, v, kk, ka, y, stride, T);
    } else {
        wkv7_ref(S, N, r, w, k, v, kk, ka, y, stride, T);
    }
}

// ---- float weights in packed.h's 16-row layout (column c of a group: its 16 rows' values) --------
//
// One group = two 8-lane halves. Each (row, token) cell sums its even and its odd columns in two
// accumulators, added at the end, for every tile size: so a token's bits do not depend on n, and one
// token (decode) still has 4 independent FMA chains, where the file-layout kernel has 1 per row. Up
// to 3 tokens per pass (12 accumulators, the two halves of a column and x in the 16 registers), and
// no horizontal sums: the LoRA up-projections (32-128 columns) were a third horizontal sums.

constexpr int FTILE = 3; // tokens per pass over a packed float group

template <typename L, int NT>
void group_packed_float(const typename L::type* g, const float* x, float* y, int64_t cols, int64_t ldy) {
    __m256 acc[NT][2][2]; // [token][half][column parity]
    for (int j = 0; j < NT; j++) acc[j][0][0] = acc[j][0][1] = acc[j][1][0] = acc[j][1][1] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 2 <= cols; c += 2) {
        for (int e = 0; e < 2; e++) {
            const __m256 w0 = L::v8(g + (c + e) * PACK_ROWS), w1 = L::v8(g + (c + e) * PACK_ROWS + 8);
            for (int j = 0; j < NT; j++) {
                const __m256 xv = _mm256_set1_ps(x[j * cols + c + e]);
                acc[j][0][e] = _mm256_fmadd_ps(w0, xv, acc[j][0][e]);
                acc[j][1][e] = _mm256_fmadd_ps(w1, xv, acc[j][1][e]);
            }
        }
    }
    if (c < cols) {
        const __m256 w0 = L::v8(g + c * PACK_ROWS), w1 = L::v8(g + c * PACK_ROWS + 8);
        for (int j = 0; j < NT; j++) {
            const __m256 xv = _mm256_set1_ps(x[j * cols + c]);
            acc[j][0][0] = _mm256_fmadd_ps(w0, xv, acc[j][0][0]);
            acc[j][1][0] = _mm256_fmadd_ps(w1, xv, acc[j][1][0]);
        }
    }
    for (int j = 0; j < NT; j++) {
        _mm256_storeu_ps(y + j * ldy, _mm256_add_ps(acc[j][0][0], acc[j][0][1]));
        _mm256_storeu_ps(y + j * ldy + 8, _mm256_add_ps(acc[j][1][0], acc[j][1][1]));
    }
}

template <typename L, uint32_t type>
void gemm_packed_float_avx2(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n,
                            int64_t ldy) {
    const auto* W = static_cast<const typename L::type*>(w);
    const auto ge = int64_t(packed_group_bytes(type, cols) / sizeof(typename L::type)); // a group's elements
    for (int64_t r = 0; r < rows; r += PACK_ROWS) {
        const typename L::type* g = W + r / PACK_ROWS * ge;
        int64_t t = 0;
        for (; t + FTILE <= n; t += FTILE) group_packed_float<L, FTILE>(g, x + t * cols, y + t * ldy + r, cols, ldy);
        if (n - t == 2) group_packed_float<L, 2>(g, x + t * cols, y + t * ldy + r, cols, ldy);
        if (n - t == 1) group_packed_float<L, 1>(g, x + t * cols, y + t * ldy + r, cols, ldy);
    }
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
    t.gemm[GGML_TYPE_Q8_0] = gemm_quant_avx2<dec_q8_0, quantize_q8_0_avx2>;
    t.gemm[GGML_TYPE_Q4_0] = gemm_quant_avx2<dec_q4_0, quantize_q8_0_avx2>;
    t.gemm[GGML_TYPE_Q4_1] = gemm_quant_avx2<dec_q4_1, quantize_row_q8_1>;
    t.gemm[GGML_TYPE_Q5_0] = gemm_quant_avx2<dec_q5_0, quantize_q8_0_avx2>;
    t.gemm[GGML_TYPE_Q5_1] = gemm_quant_avx2<dec_q5_1, quantize_row_q8_1>;
    t.packed[GGML_TYPE_Q8_0] = gemm_packed_avx2<pk_q8_0>;
    t.packed[GGML_TYPE_Q4_0] = gemm_packed_avx2<pk_q4_0>;
    t.packed[GGML_TYPE_F32] = gemm_packed_float_avx2<load_f32, GGML_TYPE_F32>;
    t.packed[GGML_TYPE_F16] = gemm_packed_float_avx2<load_f16, GGML_TYPE_F16>;
    t.packed[GGML_TYPE_BF16] = gemm_packed_float_avx2<load_bf16, GGML_TYPE_BF16>;
    t.quantize_q8_0 = quantize_q8_0_avx2;
    t.ssm_scan = ssm_scan_avx2;
    t.wkv7 = wkv7_avx2;
    t.silu = activation_avx2<silu8, silu_ref>;
    t.softplus = activation_avx2<softplus8, softplus_ref>;
    t.sigmoid = activation_avx2<sigmoid8, sigmoid_ref>;
    t.exp = activation_avx2<exp8, exp_ref>;
}

} // namespace pyrnn
