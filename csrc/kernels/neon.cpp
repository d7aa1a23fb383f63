// neon.cpp — AArch64 NEON overrides (baseline armv8-a: every 64-bit ARM CPU runs them, so no
// special flags). Float weights are widened to f32 in registers (fp16 with vcvt_f32_f16, bf16 by a
// 16-bit shift); quantized weights meet 8-bit activations through vmull_s8 + pairwise widening adds,
// which is exact like the reference's integer sums. neon_dotprod.cpp swaps in SDOT for the latter.
//
// GEMM tiles: one weight row against up to 4 tokens at a time, so each weight vector loaded from
// memory feeds 4 FMAs (decode, n = 1, is the matvec: bound by reading the weights once).
#include <arm_neon.h>

#include <cstring>

#include "kernels.h"
#include "neon_quant.h"

namespace pyrnn {

namespace {

constexpr int TILE = 4; // tokens per weight-row pass

float dot_f32_neon(const float* a, const float* b, int64_t n) {
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) { // four independent chains hide the FMA latency
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// ---- float weights: 4 weights widened to f32 per load -------------------------------------------

struct load_f32 {
    using type = float;
    static float32x4_t v4(const float* p) { return vld1q_f32(p); }
    static float one(const float* p) { return *p; }
};
struct load_f16 {
    using type = uint16_t;
    static float32x4_t v4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
    static float one(const uint16_t* p) { return half_to_float(*p); }
};
struct load_bf16 {
    using type = uint16_t;
    static float32x4_t v4(const uint16_t* p) { // bf16 → f32: widen to 32 bits, shift into the top half
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
    }
    static float one(const uint16_t* p) { return bf16_to_fp32(*p); }
};

// One weight row × NT tokens (NT ≤ TILE); two accumulators per token (8 columns per step).
template <typename L, int NT>
void row_float(const typename L::type* w, const float* x, float* y, int64_t cols, int64_t ldy) {
    float32x4_t a0[NT], a1[NT];
    for (int j = 0; j < NT; j++) a0[j] = a1[j] = vdupq_n_f32(0.0f);
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        const float32x4_t w0 = L::v4(w + c), w1 = L::v4(w + c + 4);
        for (int j = 0; j < NT; j++) {
            a0[j] = vfmaq_f32(a0[j], w0, vld1q_f32(x + j * cols + c));
            a1[j] = vfmaq_f32(a1[j], w1, vld1q_f32(x + j * cols + c + 4));
        }
    }
    for (; c + 4 <= cols; c += 4) {
        const float32x4_t w0 = L::v4(w + c);
        for (int j = 0; j < NT; j++) a0[j] = vfmaq_f32(a0[j], w0, vld1q_f32(x + j * cols + c));
    }
    for (int j = 0; j < NT; j++) {
        float s = vaddvq_f32(vaddq_f32(a0[j], a1[j]));
        for (int64_t k = c; k < cols; k++) s += L::one(w + k) * x[j * cols + k];
        y[j * ldy] = s;
    }
}

template <typename L>
void gemm_float_neon(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const auto* W = static_cast<const typename L::type*>(w);
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = 0;
        for (; t + TILE <= n; t += TILE) row_float<L, TILE>(W + r * cols, x + t * cols, y + t * ldy + r, cols, ldy);
        for (; t < n; t++) row_float<L, 1>(W + r * cols, x + t * cols, y + t * ldy + r, cols, ldy);
    }
}

// ---- quantized weights: 16 int8 products widened to int16 (vmull_s8), then pairwise into int32 --

struct dot_mull {
    static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
        acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
        return vpadalq_s16(acc, vmull_high_s8(a, b));
    }
    // Lane i += Σ_j a[4i+j]·b[4k+j], as SDOT by element: products pairwise to int32, then pairs of pairs.
    template <int k>
    static int32x4_t dot4_lane(int32x4_t acc, int8x16_t a, int8x16_t b) {
        const int8x16_t bk = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(b), k));
        const int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(bk)));
        const int32x4_t hi = vpaddlq_s16(vmull_high_s8(a, bk));
        return vaddq_s32(acc, vpaddq_s32(lo, hi));
    }
};

} // namespace

void override_neon(kernel_table& t) {
    t.isa = "neon";
    t.dot_f32 = dot_f32_neon;
    t.gemm[GGML_TYPE_F32] = gemm_float_neon<load_f32>;
    t.gemm[GGML_TYPE_F16] = gemm_float_neon<load_f16>;
    t.gemm[GGML_TYPE_BF16] = gemm_float_neon<load_bf16>;
    set_quant_gemms<dot_mull>(t);
}

} // namespace pyrnn
