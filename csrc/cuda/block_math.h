// block_math.h — the per-element, per-block and per-row math of the CUDA backend, compiled by BOTH
// nvcc (device code) and the host compiler (tests/cpp/test_cuda_math.cpp checks every function here
// against the CPU reference: quant.cpp, kernels/ref.cpp and the CPU models' loops). A kernel is a
// thread layout around these functions; what they compute is verified without a GPU.
//
//   float f = half_to_float(h);                               // bit-exact twin of fp16_to_fp32
//   quantize_block_q8_0(x32, &blk);                           // byte-exact twin of quantize_row_q8_0
//   float s = dot_block(w_q4_0_block, x_q8_0_block);          // one block of ref.cpp's dot_q4_0
//   float y = rwkv7_wkv_row(S_i, stride, w, kk, a, k, r, v_i, N); // one value row of the RWKV-7 state
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
