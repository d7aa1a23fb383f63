// ref.cpp — scalar reference kernels: plain loops, float accumulation, no tricks.
// Every SIMD kernel is tested against these on odd sizes.
#include "kernels.h"

namespace pyrnn {

namespace {

float dot_f32_ref(const float* a, const float* b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void matvec_f32_ref(const void* w, const float* x, float* y, int64_t rows, int64_t cols) {
    const float* W = static_cast<const float*>(w);
    for (int64_t r = 0; r < rows; r++) y[r] = dot_f32_ref(W + r * cols, x, cols);
}

void matvec_f16_ref(const void* w, const float* x, float* y, int64_t rows, int64_t cols) {
    const uint16_t* W = static_cast<const uint16_t*>(w);
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t* row = W + r * cols;
        float s = 0.0f;
        for (int64_t c = 0; c < cols; c++) s += fp16_to_fp32(row[c]) * x[c];
        y[r] = s;
    }
}

void matvec_bf16_ref(const void* w, const float* x, float* y, int64_t rows, int64_t cols) {
    const uint16_t* W = static_cast<const uint16_t*>(w);
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t* row = W + r * cols;
        float s = 0.0f;
        for (int64_t c = 0; c < cols; c++) s += bf16_to_fp32(row[c]) * x[c];
        y[r] = s;
    }
}

} // namespace

void fill_ref(kernel_table& t) {
    t.isa = "ref";
    t.dot_f32 = dot_f32_ref;
    t.matvec[GGML_TYPE_F32] = matvec_f32_ref;
    t.matvec[GGML_TYPE_F16] = matvec_f16_ref;
    t.matvec[GGML_TYPE_BF16] = matvec_bf16_ref;
}

} // namespace pyrnn
