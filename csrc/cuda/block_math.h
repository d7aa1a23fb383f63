// block_math.h — the per-element, per-block and per-row math of the CUDA backend, compiled by BOTH
// nvcc (device code) and the host compiler (tests/cpp/test_cuda_math.cpp checks every function here
// against the CPU reference: quant.cpp, kernels/ref.cpp and the CPU models' loops). A kernel is a
// thread layout around these functions; what they compute is verified without a GPU.
//
//   float f = half_to_float(h);                               // bit-exact twin of fp16_to_fp32
//   quantize_block_q8_0(x32, &blk);                           // byte-exact twin of quantize_row_q8_0
//   float s = dot_block(w_q4_0_block, x_q8_0_block);          // one block of ref.cpp's dot_q4_0
//   float y = rwkv7_wkv_row(S_i, stride, w, kk, a, k, r, v_i, N); // one value row of the RWKV-7 state
//   float wkv = rwkv4_wkv_step(aa, bb, pp, w, u, k, v);          // one channel of RWKV-4
//   float y = rwkv6_wkv_col(S_j, N, r, k, u, w, v_j, N);         // one value column of RWKV-5/6's
//   retnet_scale_step(s, gamma, a, inv);                          // one RetNet head's normaliser
//   float y = mamba2_scan_row(S_p, B, Cm, dt, dA, x_p, N);         // one row of a Mamba-2 head's state
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../quant.h"

#ifdef __CUDACC__
#define PYRNN_HD __host__ __device__ __forceinline__
#else
#define PYRNN_HD inline
#endif

namespace pyrnn::cuda {

PYRNN_HD float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

PYRNN_HD uint32_t float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

// IEEE half → float, exact (subnormals kept): the same bits as quant.cpp's fp16_to_fp32.
PYRNN_HD float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13)); // inf / nan
    if (exp != 0) return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return bits_to_float(sign);
    exp = 113; // subnormal: renormalise
    while ((mant & 0x400) == 0) {
        mant <<= 1;
        exp--;
    }
    return bits_to_float(sign | (exp << 23) | ((mant & 0x3ff) << 13));
}

// float → IEEE half, round to nearest even, integer-only (no dependence on the FPU's modes): the
// same bits as quant.cpp's fp32_to_fp16 (NaN → quiet NaN, overflow → inf).
PYRNN_HD uint16_t float_to_half(float f) {
    const uint32_t u = float_to_bits(f);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) return uint16_t(sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00);
    if (abs < 0x38800000u) { // subnormal or zero
        if (abs < 0x33000000u) return sign;
        const uint32_t shift = 126 - (abs >> 23); // 14..24
        const uint32_t mant = (abs & 0x7fffff) | 0x800000;
        uint32_t r = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return uint16_t(sign | r);
    }
    uint32_t r = (abs >> 13) - (112u << 10);
    const uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return uint16_t(sign | r);
}

PYRNN_HD float bf16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }

// Bytes of a row of n elements of type t (the uploaded types; 0 for others): quant.h's row_bytes.
PYRNN_HD uint64_t row_bytes_device(uint32_t t, int64_t n) {
    switch (t) {
    case GGML_TYPE_F32: return uint64_t(n) * 4;
    case GGML_TYPE_F16: case GGML_TYPE_BF16: return uint64_t(n) * 2;
    case GGML_TYPE_Q8_0: return uint64_t(n / QK) * sizeof(block_q8_0);
    case GGML_TYPE_Q4_0: return uint64_t(n / QK) * sizeof(block_q4_0);
    default: return 0;
    }
}

// Element i of a row of type t (F32, F16, BF16, Q8_0, Q4_0; the types the backend uploads).
PYRNN_HD float load_element(uint32_t t, const void* row, int64_t i) {
    switch (t) {
    case GGML_TYPE_F32: return static_cast<const float*>(row)[i];
    case GGML_TYPE_F16: return half_to_float(static_cast<const uint16_t*>(row)[i]);
    case GGML_TYPE_BF16: return bf16_to_float(static_cast<const uint16_t*>(row)[i]);
    case GGML_TYPE_Q8_0: {
        const block_q8_0& b = static_cast<const block_q8_0*>(row)[i / QK];
        return half_to_float(b.d) * float(b.qs[i % QK]);
    }
    case GGML_TYPE_Q4_0: {
        const block_q4_0& b = static_cast<const block_q4_0*>(row)[i / QK];
        const int j = int(i % QK);
        const int q = j < QK / 2 ? (b.qs[j] & 0x0f) : (b.qs[j - QK / 2] >> 4);
        return half_to_float(b.d) * float(q - 8);
    }
    default: return NAN;
    }
}

// ---- activations quantized to q8_0 before a quantized product (as the CPU kernels do) ---------

// quant.cpp's to_code: clamp, then truncate; NaN → lo.
PYRNN_HD int to_code(float v, float lo, float hi) { return int(fminf(fmaxf(v, lo), hi)); }

// One block of 32 floats → q8_0, byte for byte quantize_row_q8_0 (NaN/inf in the block → NaN scale).
PYRNN_HD void quantize_block_q8_0(const float* x, block_q8_0* y) {
    float amax = 0.0f, nan_if_nonfinite = 0.0f;
    for (int j = 0; j < QK; j++) {
        const float a = fabsf(x[j]);
        amax = amax < a ? a : amax; // std::max's order: a NaN never replaces amax
        nan_if_nonfinite += x[j] * 0.0f;
    }
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = float_to_half(d + nan_if_nonfinite);
    for (int j = 0; j < QK; j++) y->qs[j] = int8_t(to_code(roundf(x[j] * id), -127.0f, 127.0f));
}

// One block's share of ref.cpp's dot_q8_0 / dot_q4_0: d_w · d_x · Σ q_w·q_x (exact integer sum).
PYRNN_HD float dot_block(const block_q8_0& w, const block_q8_0& x) {
    int sum = 0;
    for (int j = 0; j < QK; j++) sum += w.qs[j] * x.qs[j];
    return half_to_float(w.d) * half_to_float(x.d) * float(sum);
}

PYRNN_HD float dot_block(const block_q4_0& w, const block_q8_0& x) {
    int sum = 0;
    for (int j = 0; j < QK / 2; j++) {
        sum += ((w.qs[j] & 0x0f) - 8) * x.qs[j] + ((w.qs[j] >> 4) - 8) * x.qs[j + QK / 2];
    }
    return half_to_float(w.d) * half_to_float(x.d) * float(sum);
}

// ---- activations -------------------------------------------------------------------------------

PYRNN_HD float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
PYRNN_HD float silu_f(float x) { return x / (1.0f + expf(-x)); }
PYRNN_HD float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); } // torch: beta 1, threshold 20

// ---- recurrences: one row / one channel, as the CPU models compute it ---------------------------

// RWKV-7 (rwkv7.cpp time_mix), value row i of one head of size N:
//   S_i ← S_i ⊙ w + (S_i·(−kk)) · (kk ⊙ a) + v_i · k ;  returns y_i = S_i · r.
// Element j of the row is Si[j·stride] (1 for the CPU's row-major S[v][k]; N for a transposed tile).
PYRNN_HD float rwkv7_wkv_row(float* Si, int64_t stride, const float* w, const float* kk, const float* a,
                             const float* k, const float* r, float vi, int64_t N) {
    float sa = 0.0f;
    for (int64_t j = 0; j < N; j++) sa -= Si[j * stride] * kk[j];
    float yi = 0.0f;
    for (int64_t j = 0; j < N; j++) {
        float& s = Si[j * stride];
        s = s * w[j] + sa * kk[j] * a[j] + vi * k[j];
        yi += s * r[j];
    }
    return yi;
}

// RWKV-4 (rwkv4.cpp time_mix), one channel for one token; the sums in scaled form (real = aa·e^pp):
//   returns wkv = (aa·e^pp + e^(u+k)·v) / (bb·e^pp + e^(u+k)), then decays the sums by e^w and adds
//   this token with weight e^k; every exponent is shifted by the larger one (std::max's order).
PYRNN_HD float rwkv4_wkv_step(float& aa, float& bb, float& pp, float w, float u, float k, float v) {
    float ww = u + k;
    float p = pp < ww ? ww : pp;
    float e1 = expf(pp - p), e2 = expf(ww - p);
    const float wkv = (e1 * aa + e2 * v) / (e1 * bb + e2);
    ww = w + pp;
    p = ww < k ? k : ww;
    e1 = expf(ww - p), e2 = expf(k - p);
    aa = e1 * aa + e2 * v;
    bb = e1 * bb + e2;
    pp = p;
    return wkv;
}

// RWKV-5/6 (rwkv5.cpp / rwkv6.cpp time_mix), value column j of one head of size N, key-major state:
//   y_j = Σ_i r_i · (u_i·k_i·v_j + S_ij) ;  S_ij ← k_i·v_j + w_i·S_ij   (i ascending, as the CPU).
// Element i of the column is Sj[i·stride] (N for the CPU's row-major S[k][v], and for the tile).
PYRNN_HD float rwkv6_wkv_col(float* Sj, int64_t stride, const float* r, const float* k, const float* u,
                             const float* w, float vj, int64_t N) {
    float yj = 0.0f;
    for (int64_t i = 0; i < N; i++) {
        float& s = Sj[i * stride];
        const float kv = k[i] * vj;
        yj += r[i] * (u[i] * kv + s);
        s = kv + w[i] * s;
    }
    return yj;
}

// Mamba-1 (mamba.cpp mixer), one channel for one token, state h (N):
//   h ← exp(dt·A) ⊙ h + (dt·B)·u ;  returns h · C (the caller adds D·u and the gate).
PYRNN_HD float mamba_scan_step(float* h, const float* A, const float* B, const float* Cm, float dt, float u,
                               int64_t N) {
    float y = 0.0f;
    for (int64_t k = 0; k < N; k++) {
        h[k] = h[k] * expf(dt * A[k]) + dt * B[k] * u;
        y += h[k] * Cm[k];
    }
    return y;
}

// Mamba-2 (mamba2.cpp mixer), row p of one head's state (N) for one token, dA = exp(dt·A) of the head:
//   S_p ← S_p·dA + (dt·B)·x_p ;  returns S_p · C  (the caller adds D·x_p).
PYRNN_HD float mamba2_scan_row(float* Sp, const float* B, const float* Cm, float dt, float dA, float xp, int64_t N) {
    float y = 0.0f;
    for (int64_t k = 0; k < N; k++) {
        Sp[k] = Sp[k] * dA + dt * B[k] * xp;
        y += Sp[k] * Cm[k];
    }
    return y;
}

// RetNet (retnet.cpp retention_step), one head's normaliser for one token: s ← s·γ + 1; the old
// state is then scaled by a = √s·γ / √s' and the new term v ⊗ k by inv = 1 / √s'.
PYRNN_HD void retnet_scale_step(float& s, float gamma, float& a, float& inv) {
    const float s_new = s * gamma + 1.0f;
    const float root = sqrtf(s_new);
    a = sqrtf(s) * gamma / root, inv = 1.0f / root;
    s = s_new;
}

// One lane's share of a RetNet state row i for one token: for j = j0, j0 + step, … < dk
//   S_ij ← S_ij·a + vi·k_j   (vi = v_i·inv) ;  returns Σ S_ij·q_j over those j (a warp sums the lanes).
PYRNN_HD float retnet_row_part(float* Si, const float* k, const float* q, float a, float vi, int64_t j0, int64_t step,
                               int64_t dk) {
    float part = 0.0f;
    for (int64_t j = j0; j < dk; j += step) {
        Si[j] = Si[j] * a + vi * k[j];
        part += Si[j] * q[j];
    }
    return part;
}

// RetNet's theta_shift of the channel pair (x0, x1) = (i, i+1) of a head at position n (retnet.cpp
// rotate): angles n·θ_i and n·θ_{i+1}, in float as torchscale.
PYRNN_HD void retnet_rotate_pair(float& x0, float& x1, float n, float th0, float th1) {
    const float a0 = n * th0, a1 = n * th1;
    const float y0 = x0 * cosf(a0) - x1 * sinf(a0);
    const float y1 = x1 * cosf(a1) + x0 * sinf(a1);
    x0 = y0, x1 = y1;
}

// RetNet's GLU: act(z) · b, act 0 = GELU (exact, erf), 1 = SiLU (z·sigmoid z), 2 = ReLU
// (retnet_activation's order; retnet.cpp ffn).
PYRNN_HD float retnet_glu(int act, float z, float b) {
    float y = 0.0f;
    switch (act) {
    case 0: y = 0.5f * z * (1.0f + erff(z * 0.70710678118654752f)); break;
    case 1: y = z * sigmoid_f(z); break;
    default: y = z > 0.0f ? z : 0.0f; break;
    }
    return y * b;
}

// The causal depthwise conv + SiLU of one channel over T tokens (ssm_ops.h causal_conv, then silu_ref):
// x[t·x_stride] is this channel's input at token t, w (K) its taps (w[K−1] the newest), state (K−1)
// its last K−1 inputs, oldest first, updated in place; out[t·out_stride] receives silu(conv).
PYRNN_HD void conv_silu_channel(const float* x, int64_t x_stride, const float* w, float b, float* state, float* out,
                                int64_t out_stride, int64_t T, int64_t K) {
    const int64_t S = K - 1;
    for (int64_t t = 0; t < T; t++) { // window position p = t + k; p < S reads the carried state
        float acc = b;
        for (int64_t k = 0; k < K; k++) {
            const int64_t p = t + k;
            acc += (p < S ? state[p] : x[(p - S) * x_stride]) * w[k];
        }
        out[t * out_stride] = silu_f(acc);
    }
    for (int64_t j = 0; j < S; j++) { // ascending j reads state[T + j] before it is overwritten
        const int64_t p = T + j;
        state[j] = p < S ? state[p] : x[(p - S) * x_stride];
    }
}

} // namespace pyrnn::cuda
