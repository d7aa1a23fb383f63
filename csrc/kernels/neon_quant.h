// neon_quant.h — quantized GEMM on AArch64, shared by neon.cpp and neon_dotprod.cpp, which differ
// only in the int8 dots they plug in (Dot::dot: a 16-byte dot, any lane order; Dot::dot4_lane:
// SDOT-by-element semantics, per lane). Included by those two files only: all of it
// has internal linkage, so code built for dotprod can never be picked by the linker for a caller
// in the baseline file, and no standard library template is instantiated (hence malloc).
//
//   struct dot_sdot { static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); } };
//   t.gemm[GGML_TYPE_Q4_0] = gemm_quant_neon<dec_q4_0, dot_sdot, quantize_row_q8_0>;
//
// GEMM tiles: one weight row against up to 4 tokens, so each decoded weight block feeds 4 dots.
// The reference twins are dot_q*_ in ref.cpp: integer block sums are exact there and here, only
// the order of the float accumulation of the scaled block sums differs.
#pragma once

#include <arm_neon.h>

#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "packed.h"

namespace pyrnn {
namespace {

constexpr int QTILE = 4; // tokens per weight-row pass

// IEEE half → float with the hardware conversion (exact, subnormals included).
inline float half_to_float(uint16_t h) {
    __fp16 f;
    std::memcpy(&f, &h, 2);
    return float(f);
}

// The 32 weights of one block as bytes: lo = elements 0..15, hi = elements 16..31 (ggml's order).
struct i8x32 {
    int8x16_t lo, hi;
};

inline i8x32 nibbles(const uint8_t* qs) { // byte j: element j in the low nibble, j+16 in the high
    const uint8x16_t b = vld1q_u8(qs);
    return {vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0f))), vreinterpretq_s8_u8(vshrq_n_u8(b, 4))};
}

// 16 bits of qh → 16 bytes of 0x10 where the bit is set (bit j → byte j).
inline int8x16_t bits_to_0x10(uint32_t bits16) {
    const uint8x16_t bytes = vcombine_u8(vdup_n_u8(uint8_t(bits16)), vdup_n_u8(uint8_t(bits16 >> 8)));
    const uint8x8_t bit = vcreate_u8(0x8040201008040201ULL); // byte k tests bit k
    return vreinterpretq_s8_u8(vandq_u8(vtstq_u8(bytes, vcombine_u8(bit, bit)), vdupq_n_u8(0x10)));
}

inline i8x32 fifth_bits(i8x32 q, const uint8_t* qh) {
    uint32_t v;
    std::memcpy(&v, qh, 4);
    return {vorrq_s8(q.lo, bits_to_0x10(v & 0xffff)), vorrq_s8(q.hi, bits_to_0x10(v >> 16))};
}

inline i8x32 minus(i8x32 q, int8_t k) { return {vsubq_s8(q.lo, vdupq_n_s8(k)), vsubq_s8(q.hi, vdupq_n_s8(k))}; }

// Block decoders: q() gives the 32 weights — signed for the symmetric types, 0..31 for the types
// with a minimum, whose m joins the dot through x's s = d·Σq.
struct dec_q8_0 {
    using block = block_q8_0; using xblock = block_q8_0; static constexpr bool has_min = false;
    static i8x32 q(const block& b) { return {vld1q_s8(b.qs), vld1q_s8(b.qs + 16)}; }
};
struct dec_q4_0 {
    using block = block_q4_0; using xblock = block_q8_0; static constexpr bool has_min = false;
    static i8x32 q(const block& b) { return minus(nibbles(b.qs), 8); }
};
struct dec_q5_0 {
    using block = block_q5_0; using xblock = block_q8_0; static constexpr bool has_min = false;
    static i8x32 q(const block& b) { return minus(fifth_bits(nibbles(b.qs), b.qh), 16); }
};
struct dec_q4_1 {
    using block = block_q4_1; using xblock = block_q8_1; static constexpr bool has_min = true;
    static i8x32 q(const block& b) { return nibbles(b.qs); }
};
struct dec_q5_1 {
    using block = block_q5_1; using xblock = block_q8_1; static constexpr bool has_min = true;
    static i8x32 q(const block& b) { return fifth_bits(nibbles(b.qs), b.qh); }
};

inline float min_term(const block_q4_1& b, const block_q8_1& x) { return half_to_float(b.m) * half_to_float(x.s); }
inline float min_term(const block_q5_1& b, const block_q8_1& x) { return half_to_float(b.m) * half_to_float(x.s); }
template <typename B, typename X> inline float min_term(const B&, const X&) { return 0.0f; }

// One weight row (nb blocks) × NT tokens of quantized x (token j at xq + j*nb).
template <typename D, typename Dot, int NT>
void row_quant(const typename D::block* w, const typename D::xblock* xq, float* y, int64_t nb, int64_t ldy) {
    float32x4_t acc[NT];
    float mins[NT];
    for (int j = 0; j < NT; j++) { acc[j] = vdupq_n_f32(0.0f); mins[j] = 0.0f; }
    for (int64_t i = 0; i < nb; i++) {
        const i8x32 q = D::q(w[i]);
        const float dw = half_to_float(w[i].d);
        for (int j = 0; j < NT; j++) {
            const typename D::xblock& xb = xq[j * nb + i];
            int32x4_t s = Dot::dot(vdupq_n_s32(0), q.lo, vld1q_s8(xb.qs)); // exact: ≤ 32·127·128
            s = Dot::dot(s, q.hi, vld1q_s8(xb.qs + 16));
            acc[j] = vfmaq_n_f32(acc[j], vcvtq_f32_s32(s), dw * half_to_float(xb.d));
            if (D::has_min) mins[j] += min_term(w[i], xb);
        }
    }
    for (int j = 0; j < NT; j++) y[j * ldy] = vaddvq_f32(acc[j]) + mins[j];
}

template <typename D, typename Dot, void (*quantize_x)(const float*, typename D::xblock*, int64_t)>
void gemm_quant_neon(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const int64_t nb = cols / QK;
    using xblock = typename D::xblock;
    auto* xq = static_cast<xblock*>(std::malloc(sizeof(xblock) * size_t(n * nb > 0 ? n * nb : 1)));
    if (xq == nullptr) std::abort();
    for (int64_t t = 0; t < n; t++) quantize_x(x + t * cols, xq + t * nb, cols); // as ref.cpp does
    const auto* W = static_cast<const typename D::block*>(w);
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = 0;
        for (; t + QTILE <= n; t += QTILE) row_quant<D, Dot, QTILE>(W + r * nb, xq + t * nb, y + t * ldy + r, nb, ldy);
        for (; t < n; t++) row_quant<D, Dot, 1>(W + r * nb, xq + t * nb, y + t * ldy + r, nb, ldy);
    }
    std::free(xq);
}

// ---- weights in packed.h's 16-row layout: rows 4v..4v+3 of a group in vector v of each chunk -----
//
// A 64-byte chunk holds 4 bytes of each of 16 rows; 16 of those bytes (4 rows) fill one vector, and
// Dot::dot4_lane<k> adds, in each int32 lane (one row), that row's 4 products with x's word k
// broadcast (elements 4k..4k+3): SDOT by element, emulated without dotprod. The 4-row quads of a
// group are done one after another over all blocks (the group, a few KiB, stays in L1), so one quad's
// 8 weight vectors, x and the accumulators fit the 32 registers. Q4_0's nibbles (0..15) are signed
// bytes as they are and the block sum starts at −8·Σq_x; Q8_0's bytes, stored as q + 128 for
// vpdpbusd, get q back by one XOR.

constexpr int PTILE = 4; // tokens per pass over a packed group

struct pk_q4_0 {
    static constexpr uint32_t type = GGML_TYPE_Q4_0;
    static constexpr int chunks = 4, off = 8;
    static void weights(const uint8_t* qs, int quad, int8x16_t (&w)[8]) { // w[k] pairs with x's word k
        for (int i = 0; i < 4; i++) {
            const uint8x16_t v = vld1q_u8(qs + 64 * i + 16 * quad);
            w[i] = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))); // elements 4i..4i+3
            w[4 + i] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));          // elements 16+4i..16+4i+3
        }
    }
};
struct pk_q8_0 {
    static constexpr uint32_t type = GGML_TYPE_Q8_0;
    static constexpr int chunks = 8, off = 0;
    static void weights(const uint8_t* qs, int quad, int8x16_t (&w)[8]) {
        for (int i = 0; i < 8; i++) w[i] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qs + 64 * i + 16 * quad), vdupq_n_u8(0x80)));
    }
};

// One group of 16 rows (nb blocks; quant bytes from byte sb) × NT tokens of quantized x (token j's
// blocks at xq + j·nb, their scales at xd, block sums' starts at xs); y: row 0 of the first token.
template <typename P, typename Dot, int NT>
void group_packed(const uint8_t* g, uint64_t sb, const block_q8_0* xq, const float* xd, const int32_t* xs, int64_t nb,
                  float* y, int64_t ldy) {
    const auto* d = reinterpret_cast<const uint16_t*>(g);
    for (int quad = 0; quad < 4; quad++) {
        float32x4_t acc[NT];
        for (int j = 0; j < NT; j++) acc[j] = vdupq_n_f32(0.0f);
        for (int64_t b = 0; b < nb; b++) {
            int8x16_t w[8];
            P::weights(g + sb + uint64_t(b) * P::chunks * 64, quad, w);
            const float32x4_t dw = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(d + b * 16 + quad * 4)));
            for (int j = 0; j < NT; j++) {
                const int64_t k = j * nb + b;
                const int8x16_t x0 = vld1q_s8(xq[k].qs), x1 = vld1q_s8(xq[k].qs + 16);
                int32x4_t p = Dot::template dot4_lane<0>(vdupq_n_s32(xs[k]), w[0], x0);
                p = Dot::template dot4_lane<1>(p, w[1], x0);
                p = Dot::template dot4_lane<2>(p, w[2], x0);
                p = Dot::template dot4_lane<3>(p, w[3], x0);
                p = Dot::template dot4_lane<0>(p, w[4], x1);
                p = Dot::template dot4_lane<1>(p, w[5], x1);
                p = Dot::template dot4_lane<2>(p, w[6], x1);
                p = Dot::template dot4_lane<3>(p, w[7], x1);
                acc[j] = vfmaq_f32(acc[j], vcvtq_f32_s32(p), vmulq_n_f32(dw, xd[k]));
            }
        }
        for (int j = 0; j < NT; j++) vst1q_f32(y + j * ldy + 4 * quad, acc[j]);
    }
}

template <typename P, typename Dot>
void gemm_packed_neon(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const int64_t nb = cols / QK;
    void* mem = std::malloc(packed_x_bytes(n, cols));
    if (mem == nullptr) std::abort();
    const packed_x px = prepare_packed_x(mem, x, n, cols, P::off, quantize_row_q8_0); // as ref.cpp quantizes
    const auto* W = static_cast<const uint8_t*>(w);
    const uint64_t gb = packed_group_bytes(P::type, cols);
    const uint64_t sb = packed_scale_bytes(nb);
    for (int64_t r = 0; r < rows; r += PACK_ROWS) {
        const uint8_t* g = W + uint64_t(r / PACK_ROWS) * gb;
        int64_t t = 0;
        for (; t + PTILE <= n; t += PTILE) {
            group_packed<P, Dot, PTILE>(g, sb, px.blocks + t * nb, px.d + t * nb, px.start + t * nb, nb, y + t * ldy + r, ldy);
        }
        for (; t < n; t++) group_packed<P, Dot, 1>(g, sb, px.blocks + t * nb, px.d + t * nb, px.start + t * nb, nb, y + t * ldy + r, ldy);
    }
    std::free(mem);
}

// Fills the five quantized entries and the two packed ones with one int8 dot.
template <typename Dot> void set_quant_gemms(kernel_table& t) {
    t.gemm[GGML_TYPE_Q8_0] = gemm_quant_neon<dec_q8_0, Dot, quantize_row_q8_0>;
    t.gemm[GGML_TYPE_Q4_0] = gemm_quant_neon<dec_q4_0, Dot, quantize_row_q8_0>;
    t.gemm[GGML_TYPE_Q4_1] = gemm_quant_neon<dec_q4_1, Dot, quantize_row_q8_1>;
    t.gemm[GGML_TYPE_Q5_0] = gemm_quant_neon<dec_q5_0, Dot, quantize_row_q8_0>;
    t.gemm[GGML_TYPE_Q5_1] = gemm_quant_neon<dec_q5_1, Dot, quantize_row_q8_1>;
    t.packed[GGML_TYPE_Q8_0] = gemm_packed_neon<pk_q8_0, Dot>;
    t.packed[GGML_TYPE_Q4_0] = gemm_packed_neon<pk_q4_0, Dot>;
}

} // namespace
} // namespace pyrnn
