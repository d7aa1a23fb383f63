// neon.cpp — AArch64 NEON overrides (baseline armv8-a: every 64-bit ARM CPU runs them, so no
// special flags). Float weights are widened to f32 in registers (fp16 with vcvt_f32_f16, bf16 by a
// 16-bit shift); quantized weights meet 8-bit activations through vmull_s8 + pairwise widening adds,
// which is exact like the reference's integer sums. neon_dotprod.cpp swaps in SDOT for the latter.
//
// The activations (exp4 family), Mamba's scan and RWKV-7's wkv7 are avx2.cpp's, 4 lanes wide.
//
// GEMM tiles: one weight row against up to 4 tokens at a time, so each weight vector loaded from
// memory feeds 4 FMAs (decode, n = 1, is the matvec: bound by reading the weights once). Matrices of
// 16 rows or more are repacked at load (packed.h) and go through the packed kernels instead.
#include <arm_neon.h>

#include <cstring>
#include <vector>

#include "cephes.h"
#include "kernels.h"
#include "neon_quant.h"
#include "packed.h"

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

// ---- float weights in packed.h's 16-row layout (column c of a group: its 16 rows' values) --------
//
// avx2.cpp's form with 4 quads per column: each (row, token) cell sums its even and its odd columns
// in two accumulators, added at the end, for every tile size, so a token's bits do not depend on n,
// and one token (decode) has 8 independent FMA chains; no horizontal sums (the row form above spends
// most of a 32-128-column LoRA row on them). 3 tokens per pass: 24 accumulators and a column's 4
// weight vectors in the 32 registers; vfmaq_n_f32 takes the token's x as a scalar.

constexpr int FTILE = 3; // tokens per pass over a packed float group

template <typename L, int NT>
void group_packed_float(const typename L::type* g, const float* x, float* y, int64_t cols, int64_t ldy) {
    float32x4_t acc[NT][4][2]; // [token][quad of rows][column parity]
    for (int j = 0; j < NT; j++)
        for (int q = 0; q < 4; q++) acc[j][q][0] = acc[j][q][1] = vdupq_n_f32(0.0f);
    auto column = [&](int64_t c, int e) {
        const typename L::type* col = g + c * PACK_ROWS;
        const float32x4_t w0 = L::v4(col), w1 = L::v4(col + 4), w2 = L::v4(col + 8), w3 = L::v4(col + 12);
        for (int j = 0; j < NT; j++) {
            const float xv = x[j * cols + c];
            acc[j][0][e] = vfmaq_n_f32(acc[j][0][e], w0, xv);
            acc[j][1][e] = vfmaq_n_f32(acc[j][1][e], w1, xv);
            acc[j][2][e] = vfmaq_n_f32(acc[j][2][e], w2, xv);
            acc[j][3][e] = vfmaq_n_f32(acc[j][3][e], w3, xv);
        }
    };
    int64_t c = 0;
    for (; c + 2 <= cols; c += 2) {
        column(c, 0);
        column(c + 1, 1);
    }
    if (c < cols) column(c, 0);
    for (int j = 0; j < NT; j++)
        for (int q = 0; q < 4; q++) vst1q_f32(y + j * ldy + 4 * q, vaddq_f32(acc[j][q][0], acc[j][q][1]));
}

template <typename L, uint32_t type>
void gemm_packed_float_neon(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n,
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

// ---- e^x and the activations built on it (avx2.cpp's exp8 family, 4 lanes, the same steps) -------

// e^x: 2^n · e^r, n = round(x·log₂e), r = x − n·ln 2 (ln 2 in two parts), e^r ≈ 1 + r + r²·P(r)
// (Cephes expf's P); x clamped to [−104, 89] (FMAX/FMIN let a NaN through); 2^n (n in [−150, 128])
// applied as two exponent-field factors 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), so the result is rounded once.
inline float32x4_t exp4(float32x4_t x) {
    x = vminq_f32(vdupq_n_f32(cephes::exp_hi), vmaxq_f32(vdupq_n_f32(cephes::exp_lo), x));
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(cephes::log2e)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(cephes::ln2_hi));
    r = vfmsq_f32(r, n, vdupq_n_f32(cephes::ln2_lo));
    float32x4_t p = vdupq_n_f32(cephes::exp_p[0]);
    for (int i = 1; i < 6; i++) p = vfmaq_f32(vdupq_n_f32(cephes::exp_p[i]), p, r);
    const float32x4_t e = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0f));
    const int32x4_t ni = vcvtq_s32_f32(n), n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    const auto pow2 = [](int32x4_t k) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23)); };
    return vmulq_f32(vmulq_f32(e, pow2(n1)), pow2(n2));
}

// ln x for finite x ≥ 1: exponent and mantissa fields, m in [√½, √2], Cephes logf's polynomial.
inline float32x4_t log4(float32x4_t x) {
    const uint32x4_t bits = vreinterpretq_u32_f32(x);
    float32x4_t k = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(bits, 23)), vdupq_n_s32(127)));
    float32x4_t m = vreinterpretq_f32_u32(vorrq_u32(vandq_u32(bits, vdupq_n_u32(0x007fffff)), vdupq_n_u32(0x3f800000)));
    const uint32x4_t big = vcgtq_f32(m, vdupq_n_f32(cephes::sqrt2));
    m = vbslq_f32(big, vmulq_f32(m, vdupq_n_f32(0.5f)), m);
    k = vaddq_f32(k, vreinterpretq_f32_u32(vandq_u32(big, vreinterpretq_u32_f32(vdupq_n_f32(1.0f)))));
    const float32x4_t f = vsubq_f32(m, vdupq_n_f32(1.0f)), z = vmulq_f32(f, f);
    float32x4_t p = vdupq_n_f32(cephes::log_p[0]);
    for (int i = 1; i < 9; i++) p = vfmaq_f32(vdupq_n_f32(cephes::log_p[i]), p, f);
    float32x4_t y = vmulq_f32(vmulq_f32(f, z), p);
    y = vfmaq_f32(y, k, vdupq_n_f32(cephes::ln2_lo));
    y = vfmsq_f32(y, vdupq_n_f32(0.5f), z);
    return vfmaq_f32(vaddq_f32(f, y), k, vdupq_n_f32(cephes::ln2_hi));
}

// log1p(u) for u ≥ 0: ln w · u / (w − 1) with w = 1 + u rounded; u itself where w rounds to 1.
inline float32x4_t log1p4(float32x4_t u) {
    const float32x4_t w = vaddq_f32(u, vdupq_n_f32(1.0f));
    const uint32x4_t one = vceqq_f32(w, vdupq_n_f32(1.0f));
    return vbslq_f32(one, u, vmulq_f32(log4(w), vdivq_f32(u, vsubq_f32(w, vdupq_n_f32(1.0f)))));
}

inline float32x4_t one_plus_exp_neg4(float32x4_t x) { return vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(x))); }

inline float32x4_t silu4(float32x4_t x) { return vdivq_f32(x, one_plus_exp_neg4(x)); }

inline float32x4_t sigmoid4(float32x4_t x) { return vdivq_f32(vdupq_n_f32(1.0f), one_plus_exp_neg4(x)); }

inline float32x4_t softplus4(float32x4_t x) {
    return vbslq_f32(vcgtq_f32(x, vdupq_n_f32(20.0f)), x, log1p4(exp4(x)));
}

// 4 lanes at a time, then the tail through a zero-padded copy (an element's value does not depend on
// its position); a piece holding inf or NaN goes to the reference.
template <float32x4_t (*f4)(float32x4_t), void (*ref)(const float*, float*, int64_t)>
void activation_neon(const float* x, float* y, int64_t n) {
    const float32x4_t inf = vdupq_n_f32(__builtin_inff());
    const auto piece = [&](const float* in, float* out) { // 4 values; false (nothing written) if one is not finite
        const float32x4_t v = vld1q_f32(in);
        if (vminvq_u32(vcltq_f32(vabsq_f32(v), inf)) == 0) return false; // a lane not below inf: inf or NaN
        vst1q_f32(out, f4(v));
        return true;
    };
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        if (!piece(x + i, y + i)) ref(x + i, y + i, 4);
    }
    if (i < n) {
        const int64_t m = n - i;
        float tail[4] = {}, out[4];
        std::memcpy(tail, x + i, sizeof(float) * size_t(m));
        if (piece(tail, out)) {
            std::memcpy(y + i, out, sizeof(float) * size_t(m));
        } else {
            ref(x + i, y + i, m);
        }
    }
}

// ---- Mamba-1's selective scan (ssm_scan_ref is the twin): the state in 4-lane pieces -------------

void ssm_scan_neon(float* h, const float* a, int64_t N, const float* dt, const float* u, float* y, int64_t stride,
                   const float* bc, int64_t bc_stride, int64_t T) {
    if (N % 4 != 0) {
        ssm_scan_ref(h, a, N, dt, u, y, stride, bc, bc_stride, T);
        return;
    }
    for (int64_t t = 0; t < T; t++) y[t * stride] = 0.0f;
    for (int64_t k = 0; k < N; k += 4) {
        float32x4_t hk = vld1q_f32(h + k);
        const float32x4_t ak = vld1q_f32(a + k);
        for (int64_t t = 0; t < T; t++) {
            const float* B = bc + t * bc_stride;
            const float dtt = dt[t * stride];
            const float32x4_t dbu = vmulq_n_f32(vmulq_n_f32(vld1q_f32(B + k), dtt), u[t * stride]);
            hk = vfmaq_f32(dbu, hk, exp4(vmulq_n_f32(ak, dtt)));
            y[t * stride] += vaddvq_f32(vmulq_f32(hk, vld1q_f32(B + N + k)));
        }
        vst1q_f32(h + k, hk);
    }
}

// ---- RWKV-7's recurrence (wkv7_ref is the twin) ----------------------------------------------------
//
// avx2.cpp's column form on a transposed copy ST[j][i] = S[i][j]: value rows in blocks of 4·P, each
// block through all T tokens; per token sa = −Σ_j ST[j]·kk_j, then per key column
// ST[j] ← ST[j]·w_j + sa·ka_j + v·k_j and y += ST[j]·r_j, two accumulators each, alternating j. A
// row's sums run in one order however the tokens are cut into calls (prefill = steps, bit for bit).

template <int P>
void wkv7_blocks(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v, const float* kk,
                 const float* ka, float* y, int64_t stride, int64_t T) {
    thread_local std::vector<float> scratch;
    if (scratch.size() < size_t(N * N)) scratch.resize(size_t(N * N));
    float* ST = scratch.data();
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) ST[j * N + i] = S[i * N + j];
    for (int64_t i0 = 0; i0 < N; i0 += 4 * P) {
        for (int64_t t = 0; t < T; t++) {
            const int64_t o = t * stride;
            float32x4_t sa[P][2], vv[P], yy[P][2];
            for (int p = 0; p < P; p++) sa[p][0] = sa[p][1] = yy[p][0] = yy[p][1] = vdupq_n_f32(0.0f);
            for (int64_t j = 0; j < N; j += 2) {
                for (int p = 0; p < P; p++) {
                    sa[p][0] = vfmaq_n_f32(sa[p][0], vld1q_f32(ST + j * N + i0 + 4 * p), kk[o + j]);
                    sa[p][1] = vfmaq_n_f32(sa[p][1], vld1q_f32(ST + (j + 1) * N + i0 + 4 * p), kk[o + j + 1]);
                }
            }
            for (int p = 0; p < P; p++) {
                sa[p][0] = vnegq_f32(vaddq_f32(sa[p][0], sa[p][1]));
                vv[p] = vld1q_f32(v + o + i0 + 4 * p);
            }
            for (int64_t j = 0; j < N; j += 2) {
                for (int h = 0; h < 2; h++) {
                    const int64_t jj = j + h;
                    for (int p = 0; p < P; p++) {
                        float* row = ST + jj * N + i0 + 4 * p;
                        float32x4_t s = vmulq_n_f32(vld1q_f32(row), w[o + jj]);
                        s = vfmaq_n_f32(vfmaq_n_f32(s, sa[p][0], ka[o + jj]), vv[p], k[o + jj]);
                        vst1q_f32(row, s);
                        yy[p][h] = vfmaq_n_f32(yy[p][h], s, r[o + jj]);
                    }
                }
            }
            for (int p = 0; p < P; p++) vst1q_f32(y + o + i0 + 4 * p, vaddq_f32(yy[p][0], yy[p][1]));
        }
    }
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) S[i * N + j] = ST[j * N + i];
}

void wkv7_neon(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v, const float* kk,
               const float* ka, float* y, int64_t stride, int64_t T) {
    if (N % 16 == 0) {
        wkv7_blocks<4>(S, N, r, w, k, v, kk, ka, y, stride, T);
    } else if (N % 4 == 0) {
        wkv7_blocks<1>(S, N, r, w, k, v, kk, ka, y, stride, T);
    } else {
        wkv7_ref(S, N, r, w, k, v, kk, ka, y, stride, T);
    }
}

} // namespace

void override_neon(kernel_table& t) {
    t.isa = "neon";
    t.dot_f32 = dot_f32_neon;
    t.gemm[GGML_TYPE_F32] = gemm_float_neon<load_f32>;
    t.gemm[GGML_TYPE_F16] = gemm_float_neon<load_f16>;
    t.gemm[GGML_TYPE_BF16] = gemm_float_neon<load_bf16>;
    t.packed[GGML_TYPE_F32] = gemm_packed_float_neon<load_f32, GGML_TYPE_F32>;
    t.packed[GGML_TYPE_F16] = gemm_packed_float_neon<load_f16, GGML_TYPE_F16>;
    t.packed[GGML_TYPE_BF16] = gemm_packed_float_neon<load_bf16, GGML_TYPE_BF16>;
    set_quant_gemms<dot_mull>(t);
    t.ssm_scan = ssm_scan_neon;
    t.wkv7 = wkv7_neon;
    t.silu = activation_neon<silu4, silu_ref>;
    t.softplus = activation_neon<softplus4, softplus_ref>;
    t.sigmoid = activation_neon<sigmoid4, sigmoid_ref>;
    t.exp = activation_neon<exp4, exp_ref>;
}

} // namespace pyrnn
