// ops.cu — the shared device operations (ops.cuh). The per-element and per-block math comes from
// block_math.h (verified on the CPU); here are only thread layouts and reductions.
#include "ops.cuh"

#include "block_math.h"

namespace pyrnn::cuda {

// ---- weights -----------------------------------------------------------------------------------

bool supported_type(uint32_t t) {
    return t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16 || t == GGML_TYPE_Q8_0 ||
           t == GGML_TYPE_Q4_0;
}

const void* weight_store::upload(const void* host, size_t bytes) {
    if (auto it = uploaded_.find(host); it != uploaded_.end()) return it->second;
    bufs_.emplace_back(bytes);
    bufs_.back().upload(host, bytes);
    bytes_ += bytes;
    const void* d = bufs_.back().as<void>();
    uploaded_[host] = d;
    return d;
}

dmatrix weight_store::mat(const matrix& m, const char* what) {
    if (!supported_type(m.type)) {
        throw cuda_error(std::string("tensor \"") + what + "\" type: device='cuda' expected f32, f16, bf16, q8_0 or "
                         "q4_0, found " + find_type(m.type)->name + " (requantize: pyrnn quantize IN OUT --type q8_0)");
    }
    return dmatrix{upload(m.data, size_t(uint64_t(m.rows) * row_bytes(m.type, uint64_t(m.cols)))), m.type, m.rows,
                   m.cols};
}

const float* weight_store::vec(const float* host, size_t n) {
    return host ? static_cast<const float*>(upload(host, n * sizeof(float))) : nullptr;
}

// ---- matrix products ---------------------------------------------------------------------------

namespace {

constexpr int k_tile_t = 8;       // tokens per pass over a weight row (each row is read ⌈T/8⌉ times)
constexpr int k_rows_per_block = 4; // one warp per output row

__device__ __forceinline__ float apply(epilogue e, float v, float old) {
    switch (e) {
    case epilogue::tanh: return tanhf(v);
    case epilogue::sigmoid: return sigmoid_f(v);
    case epilogue::silu: return silu_f(v);
    case epilogue::relu_sq: return v > 0.0f ? v * v : 0.0f;
    case epilogue::add: return old + v;
    default: return v;
    }
}

// The end of both GEMM kernels: each of the tile's nt tokens summed over the warp (every lane takes
// part in the shuffle), then lane 0 writes row r of y through the epilogue.
__device__ inline void store_tile(const float (&acc)[k_tile_t], int nt, int64_t t0, int64_t r, int64_t rows, float* y,
                                  epilogue epi, int lane) {
#pragma unroll
    for (int i = 0; i < k_tile_t; i++) {
        if (i >= nt) break;
        const float v = warp_sum(acc[i]);
        if (lane == 0) {
            float* out = &y[(t0 + i) * rows + r];
            *out = apply(epi, v, *out);
        }
    }
}

// Float weights (F32, F16, BF16): lane l takes columns l, l+32, ... (coalesced), then a warp sum.
__global__ void gemm_float_kernel(const void* w, uint32_t type, const float* x, int64_t ldx, float* y, int64_t rows,
                                  int64_t cols, int64_t T, epilogue epi) {
    const int lane = threadIdx.x % 32;
    const int64_t r = int64_t(blockIdx.x) * k_rows_per_block + threadIdx.x / 32;
    if (r >= rows) return;
    const auto* row = static_cast<const uint8_t*>(w) + uint64_t(r) * row_bytes_device(type, cols);
    for (int64_t t0 = 0; t0 < T; t0 += k_tile_t) {
        const int nt = int(T - t0 < k_tile_t ? T - t0 : k_tile_t);
        float acc[k_tile_t] = {};
        for (int64_t c = lane; c < cols; c += 32) {
            const float wv = load_element(type, row, c);
#pragma unroll
            for (int i = 0; i < k_tile_t; i++) {
                if (i < nt) acc[i] += wv * x[(t0 + i) * ldx + c];
            }
        }
        store_tile(acc, nt, t0, r, rows, y, epi, lane);
    }
}

// Quantized weights (Q8_0, Q4_0) against q8_0 activations: lane l takes blocks l, l+32, ...
template <typename WBlock>
__global__ void gemm_quant_kernel(const WBlock* w, const block_q8_0* xq, float* y, int64_t rows, int64_t nb, int64_t T,
                                  epilogue epi) {
    const int lane = threadIdx.x % 32;
    const int64_t r = int64_t(blockIdx.x) * k_rows_per_block + threadIdx.x / 32;
    if (r >= rows) return;
    const WBlock* row = w + r * nb;
    for (int64_t t0 = 0; t0 < T; t0 += k_tile_t) {
        const int nt = int(T - t0 < k_tile_t ? T - t0 : k_tile_t);
        float acc[k_tile_t] = {};
        for (int64_t b = lane; b < nb; b += 32) {
            const WBlock wb = row[b];
#pragma unroll
            for (int i = 0; i < k_tile_t; i++) {
                if (i < nt) acc[i] += dot_block(wb, xq[(t0 + i) * nb + b]);
            }
        }
        store_tile(acc, nt, t0, r, rows, y, epi, lane);
    }
}

// One thread per 32-block of one token's row.
__global__ void quantize_q8_0_kernel(const float* x, int64_t ldx, block_q8_0* xq, int64_t nb, int64_t T) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= T * nb) return;
    const int64_t t = i / nb, b = i % nb;
    quantize_block_q8_0(x + t * ldx + b * QK, &xq[i]);
}

} // namespace

void gemm(const dmatrix& w, const float* x, int64_t ldx, float* y, int64_t T, epilogue epi, block_q8_0* xq,
          cudaStream_t s) {
    const unsigned grid = blocks_for(w.rows, k_rows_per_block), block = 32 * k_rows_per_block;
    if (w.type == GGML_TYPE_Q8_0 || w.type == GGML_TYPE_Q4_0) {
        const int64_t nb = w.cols / QK;
        quantize_q8_0_kernel<<<blocks_for(T * nb, 128), 128, 0, s>>>(x, ldx, xq, nb, T);
        check_launch("quantize_q8_0_kernel");
        if (w.type == GGML_TYPE_Q8_0) {
            gemm_quant_kernel<<<grid, block, 0, s>>>(static_cast<const block_q8_0*>(w.data), xq, y, w.rows, nb, T, epi);
        } else {
            gemm_quant_kernel<<<grid, block, 0, s>>>(static_cast<const block_q4_0*>(w.data), xq, y, w.rows, nb, T, epi);
        }
        check_launch("gemm_quant_kernel");
        return;
    }
    gemm_float_kernel<<<grid, block, 0, s>>>(w.data, w.type, x, ldx, y, w.rows, w.cols, T, epi);
    check_launch("gemm_float_kernel");
}

// ---- embedding, norms, token shift -------------------------------------------------------------

namespace {

__global__ void embed_kernel(const void* emb, uint32_t type, int64_t cols, const int32_t* tokens, float* x) {
    const int64_t t = blockIdx.x;
    const auto* row = static_cast<const uint8_t*>(emb) + uint64_t(tokens[t]) * row_bytes_device(type, cols);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) x[t * cols + c] = load_element(type, row, c);
}

// One block per row; double sums as ops.h (mean, then the biased variance about it).
__global__ void layer_norm_kernel(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
    __shared__ double scratch[32];
    const float* xr = x + int64_t(blockIdx.x) * n;
    float* yr = y + int64_t(blockIdx.x) * n;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xr[i];
    const double mean = block_sum(s, scratch) / double(n);
    double v = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) v += (xr[i] - mean) * (xr[i] - mean);
    const double var = block_sum(v, scratch) / double(n);
    const float m = float(mean), inv = float(1.0 / sqrt(var + double(eps)));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = (xr[i] - m) * inv * w[i] + b[i];
}

__global__ void rms_norm_kernel(const float* x, const float* w, float* y, int64_t n, float eps) {
    __shared__ double scratch[32];
    const float* xr = x + int64_t(blockIdx.x) * n;
    float* yr = y + int64_t(blockIdx.x) * n;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += double(xr[i]) * xr[i];
    const float inv = float(1.0 / sqrt(block_sum(ss, scratch) / double(n) + double(eps)));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * inv * (w ? w[i] : 1.0f);
}

__global__ void token_shift_kernel(const float* x, const float* carry, float* prev, int64_t T, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= T * n) return;
    prev[i] = i < n ? carry[i] : x[i - n];
}

__global__ void lerp_rows_kernel(const float* x, const float* prev, lerp_set l, int64_t T, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= T * n) return;
    const float xc = x[i], d = prev[i] - xc;
    for (int j = 0; j < l.n; j++) l.out[j][i] = xc + d * l.lerp[j][i % n];
}

__global__ void conv_silu_kernel(const float* x, int64_t x_stride, const float* w, const float* b, float* state,
                                 float* out, int64_t T, int64_t ch, int64_t K) {
    const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= ch) return;
    conv_silu_channel(x + c, x_stride, w + c * K, b[c], state + c * (K - 1), out + c, ch, T, K);
}

__global__ void add_product_kernel(float* y, const float* a, const float* b, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] += a[i] * b[i];
}

__global__ void scale_kernel(float* x, float f, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= f;
}

constexpr int k_norm_threads = 256;

} // namespace

void embed(const dmatrix& emb, const int32_t* d_tokens, float* x, int64_t T, cudaStream_t s) {
    embed_kernel<<<unsigned(T), 256, 0, s>>>(emb.data, emb.type, emb.cols, d_tokens, x);
    check_launch("embed_kernel");
}

void layer_norm_rows(const float* x, const float* w, const float* b, float* y, int64_t T, int64_t n, float eps,
                     cudaStream_t s) {
    layer_norm_kernel<<<unsigned(T), k_norm_threads, 0, s>>>(x, w, b, y, n, eps);
    check_launch("layer_norm_kernel");
}

void rms_norm_rows(const float* x, const float* w, float* y, int64_t T, int64_t n, float eps, cudaStream_t s) {
    rms_norm_kernel<<<unsigned(T), k_norm_threads, 0, s>>>(x, w, y, n, eps);
    check_launch("rms_norm_kernel");
}

void token_shift(const float* x, float* carry, float* prev, int64_t T, int64_t n, cudaStream_t s) {
    token_shift_kernel<<<blocks_for(T * n, 256), 256, 0, s>>>(x, carry, prev, T, n);
    check_launch("token_shift_kernel");
    check(cudaMemcpyAsync(carry, x + (T - 1) * n, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, s),
          "cudaMemcpyAsync (token-shift carry)");
}

void lerp_rows(const float* x, const float* prev, const lerp_set& l, int64_t T, int64_t n, cudaStream_t s) {
    lerp_rows_kernel<<<blocks_for(T * n, 256), 256, 0, s>>>(x, prev, l, T, n);
    check_launch("lerp_rows_kernel");
}

void conv_silu(const float* x, int64_t x_stride, const float* w, const float* b, float* state, float* out, int64_t T,
               int64_t ch, int64_t K, cudaStream_t s) {
    conv_silu_kernel<<<blocks_for(ch, 128), 128, 0, s>>>(x, x_stride, w, b, state, out, T, ch, K);
    check_launch("conv_silu_kernel");
}

void add_product(float* y, const float* a, const float* b, int64_t n, cudaStream_t s) {
    add_product_kernel<<<blocks_for(n, 256), 256, 0, s>>>(y, a, b, n);
    check_launch("add_product_kernel");
}

void scale(float* x, float f, int64_t n, cudaStream_t s) {
    scale_kernel<<<blocks_for(n, 256), 256, 0, s>>>(x, f, n);
    check_launch("scale_kernel");
}

} // namespace pyrnn::cuda
