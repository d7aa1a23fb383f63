// ref.cpp — scalar reference kernels: plain loops, float accumulation, no tricks.
// Every SIMD kernel is tested against these on odd sizes.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace pyrnn {

namespace {

float dot_f32_ref(const float* a, const float* b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

float dot_f16_f32(const void* w, const float* x, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(w);
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += fp16_to_fp32(h[i]) * x[i];
    return s;
}

float dot_bf16_f32(const void* w, const float* x, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(w);
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += bf16_to_fp32(h[i]) * x[i];
    return s;
}

float dot_f32_f32(const void* w, const float* x, int64_t n) { return dot_f32_ref(static_cast<const float*>(w), x, n); }

template <typename T, float (*dot)(const void*, const float*, int64_t)>
void gemm_float_ref(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const T* W = static_cast<const T*>(w);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t t = 0; t < n; t++) y[t * ldy + r] = dot(W + r * cols, x + t * cols, cols);
    }
}

// ---- quantized weights: the activation is quantized to 8 bits per block, as llama.cpp does, and
// each block's dot product is an exact integer sum scaled once. ----------------------------------

float dot_q8_0(const void* w, const block_q8_0* x, int64_t nb) {
    const auto* b = static_cast<const block_q8_0*>(w);
    float s = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int sum = 0;
        for (int j = 0; j < QK; j++) sum += b[i].qs[j] * x[i].qs[j];
        s += fp16_to_fp32(b[i].d) * fp16_to_fp32(x[i].d) * float(sum);
    }
    return s;
}

float dot_q4_0(const void* w, const block_q8_0* x, int64_t nb) {
    const auto* b = static_cast<const block_q4_0*>(w);
    float s = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int sum = 0;
        for (int j = 0; j < QK / 2; j++) {
            sum += ((b[i].qs[j] & 0x0f) - 8) * x[i].qs[j] + ((b[i].qs[j] >> 4) - 8) * x[i].qs[j + QK / 2];
        }
        s += fp16_to_fp32(b[i].d) * fp16_to_fp32(x[i].d) * float(sum);
    }
    return s;
}

float dot_q4_1(const void* w, const block_q8_1* x, int64_t nb) {
    const auto* b = static_cast<const block_q4_1*>(w);
    float s = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int sum = 0;
        for (int j = 0; j < QK / 2; j++) {
            sum += (b[i].qs[j] & 0x0f) * x[i].qs[j] + (b[i].qs[j] >> 4) * x[i].qs[j + QK / 2];
        }
        s += fp16_to_fp32(b[i].d) * fp16_to_fp32(x[i].d) * float(sum) + fp16_to_fp32(b[i].m) * fp16_to_fp32(x[i].s);
    }
    return s;
}

uint32_t qh_bits(const uint8_t* qh) {
    uint32_t v;
    std::memcpy(&v, qh, 4);
    return v;
}

float dot_q5_0(const void* w, const block_q8_0* x, int64_t nb) {
    const auto* b = static_cast<const block_q5_0*>(w);
    float s = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint32_t qh = qh_bits(b[i].qh);
        int sum = 0;
        for (int j = 0; j < QK / 2; j++) {
            const int lo = ((b[i].qs[j] & 0x0f) | int(((qh >> j) & 1) << 4)) - 16;
            const int hi = ((b[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4)) - 16;
            sum += lo * x[i].qs[j] + hi * x[i].qs[j + QK / 2];
        }
        s += fp16_to_fp32(b[i].d) * fp16_to_fp32(x[i].d) * float(sum);
    }
    return s;
}

float dot_q5_1(const void* w, const block_q8_1* x, int64_t nb) {
    const auto* b = static_cast<const block_q5_1*>(w);
    float s = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint32_t qh = qh_bits(b[i].qh);
        int sum = 0;
        for (int j = 0; j < QK / 2; j++) {
            const int lo = (b[i].qs[j] & 0x0f) | int(((qh >> j) & 1) << 4);
            const int hi = (b[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
            sum += lo * x[i].qs[j] + hi * x[i].qs[j + QK / 2];
        }
        s += fp16_to_fp32(b[i].d) * fp16_to_fp32(x[i].d) * float(sum) + fp16_to_fp32(b[i].m) * fp16_to_fp32(x[i].s);
    }
    return s;
}

template <typename WBlock, typename XBlock, void (*quantize_x)(const float*, XBlock*, int64_t),
          float (*dot)(const void*, const XBlock*, int64_t)>
void gemm_quant_ref(const void* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n, int64_t ldy) {
    const int64_t nb = cols / QK;
    std::vector<XBlock> xq(static_cast<size_t>(n * nb));
    for (int64_t t = 0; t < n; t++) quantize_x(x + t * cols, xq.data() + t * nb, cols);
    const auto* W = static_cast<const WBlock*>(w);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t t = 0; t < n; t++) y[t * ldy + r] = dot(W + r * nb, xq.data() + t * nb, nb);
    }
}

float sum_f32_ref(const float* a, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i];
    return s;
}

float fma_probe_ref(int64_t iters, int64_t* flops) {
    float acc[16];
    for (int j = 0; j < 16; j++) acc[j] = float(j) * 1e-3f;
    for (int64_t i = 0; i < iters; i++) {
        for (int j = 0; j < 16; j++) acc[j] = acc[j] * 0.999999f + 1e-7f;
    }
    *flops = iters * 16 * 2;
    float s = 0.0f;
    for (float v : acc) s += v;
    return s;
}

} // namespace

// ---- public twins (kernels.h: the SIMD kernels hand them their uncommon cases) --------------------

void ssm_scan_ref(float* h, const float* a, int64_t N, const float* dt, const float* u, float* y, int64_t stride,
                  const float* bc, int64_t bc_stride, int64_t T) {
    for (int64_t t = 0; t < T; t++) {
        const float dtt = dt[t * stride], ut = u[t * stride];
        const float* B = bc + t * bc_stride;
        const float* C = B + N;
        float yt = 0.0f;
        for (int64_t k = 0; k < N; k++) {
            h[k] = h[k] * std::exp(dtt * a[k]) + dtt * B[k] * ut;
            yt += h[k] * C[k];
        }
        y[t * stride] = yt;
    }
}

void wkv7_ref(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v, const float* kk,
              const float* ka, float* y, int64_t stride, int64_t T) {
    for (int64_t t = 0; t < T; t++, r += stride, w += stride, k += stride, v += stride, kk += stride, ka += stride,
                 y += stride) {
        for (int64_t i = 0; i < N; i++) { // row i: value channel
            float* Si = S + i * N;
            float sa = 0.0f;
            for (int64_t j = 0; j < N; j++) sa += Si[j] * kk[j];
            sa = -sa;
            float yi = 0.0f;
            for (int64_t j = 0; j < N; j++) {
                Si[j] = Si[j] * w[j] + sa * ka[j] + v[i] * k[j];
                yi += Si[j] * r[j];
            }
            y[i] = yi;
        }
    }
}

void silu_ref(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void sigmoid_ref(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void exp_ref(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = std::exp(x[i]);
}

void softplus_ref(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 20.0f ? x[i] : std::log1p(std::exp(x[i]));
}

void fill_ref(kernel_table& t) {
    t.isa = "ref";
    t.dot_f32 = dot_f32_ref;
    t.quantize_q8_0 = quantize_row_q8_0;
    t.ssm_scan = ssm_scan_ref;
    t.wkv7 = wkv7_ref;
    t.silu = silu_ref;
    t.softplus = softplus_ref;
    t.sigmoid = sigmoid_ref;
    t.exp = exp_ref;
    t.sum_f32 = sum_f32_ref;
    t.fma_probe = fma_probe_ref;
    t.gemm[GGML_TYPE_F32] = gemm_float_ref<float, dot_f32_f32>;
    t.gemm[GGML_TYPE_F16] = gemm_float_ref<uint16_t, dot_f16_f32>;
    t.gemm[GGML_TYPE_BF16] = gemm_float_ref<uint16_t, dot_bf16_f32>;
    t.gemm[GGML_TYPE_Q8_0] = gemm_quant_ref<block_q8_0, block_q8_0, quantize_row_q8_0, dot_q8_0>;
    t.gemm[GGML_TYPE_Q4_0] = gemm_quant_ref<block_q4_0, block_q8_0, quantize_row_q8_0, dot_q4_0>;
    t.gemm[GGML_TYPE_Q4_1] = gemm_quant_ref<block_q4_1, block_q8_1, quantize_row_q8_1, dot_q4_1>;
    t.gemm[GGML_TYPE_Q5_0] = gemm_quant_ref<block_q5_0, block_q8_0, quantize_row_q8_0, dot_q5_0>;
    t.gemm[GGML_TYPE_Q5_1] = gemm_quant_ref<block_q5_1, block_q8_1, quantize_row_q8_1, dot_q5_1>;
}

} // namespace pyrnn
