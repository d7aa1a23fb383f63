// ops.cuh — the device operations the CUDA models share (ops.cu): weights on the device, matrix
// products per weight type, norms, token shift. Each launches on the caller's stream; shapes as ops.h.
//
//   weight_store ws;                                        // owns every uploaded buffer
//   dmatrix w = ws.mat(host_matrix);                        // same bytes on the device (F32/F16/BF16/Q8_0/Q4_0)
//   gemm(w, x, C, y, T, epilogue::none, xq, stream);        // y[t] = W·x[t]  (xq: q8_0 scratch)
#pragma once

#include <cuda_runtime.h>

#include <deque>
#include <map>

#include "../models/model.h"
#include "../quant.h"
#include "runtime.h"

namespace pyrnn::cuda {

// A weight matrix on the device: `rows` rows of `cols` elements of `type`, as model.h's matrix.
struct dmatrix {
    const void* data = nullptr;
    uint32_t type = 0;
    int64_t rows = 0;
    int64_t cols = 0;
};

// Blocks of `per` threads that cover n items (a launch's grid).
inline unsigned blocks_for(int64_t n, int per) { return unsigned((n + per - 1) / per); }

// Whether the backend multiplies with (and reads embeddings of) type t.
bool supported_type(uint32_t t);

// Uploads weights once; a host buffer uploaded twice (tied embeddings) is stored once.
class weight_store {
  public:
    // Throws cuda_error naming the tensor's type when the backend lacks it.
    dmatrix mat(const matrix& m, const char* what);
    const float* vec(const float* host, size_t n); // nullptr stays nullptr
    size_t bytes() const { return bytes_; }

  private:
    const void* upload(const void* host, size_t bytes);
    std::deque<device_buffer> bufs_;
    std::map<const void*, const void*> uploaded_;
    size_t bytes_ = 0;
};

// What a product does with its result r before storing it at y (`add`: y += r, the residual).
enum class epilogue : int { none, tanh, sigmoid, silu, relu_sq, add };

// y[t][r] = epi(Σ_c W[r,c] · x[t·ldx + c]) for t < T, r < w.rows; y rows are w.rows floats apart.
// Quantized W: x is first quantized to q8_0 blocks into xq (T · cols/32 blocks), as the CPU does.
void gemm(const dmatrix& w, const float* x, int64_t ldx, float* y, int64_t T, epilogue epi, block_q8_0* xq,
          cudaStream_t s);

// x[t] = row tokens[t] of the embedding table (d_tokens on the device).
void embed(const dmatrix& emb, const int32_t* d_tokens, float* x, int64_t T, cudaStream_t s);

// Per-row LayerNorm (w, b) and RMSNorm (w) over n features of T rows; y may alias x.
void layer_norm_rows(const float* x, const float* w, const float* b, float* y, int64_t T, int64_t n, float eps,
                     cudaStream_t s);
void rms_norm_rows(const float* x, const float* w, float* y, int64_t T, int64_t n, float eps, cudaStream_t s);

// Token shift: prev[t] = t ? x[t−1] : carry, then carry ← x[T−1] (x, prev: [T][n]).
void token_shift(const float* x, float* carry, float* prev, int64_t T, int64_t n, cudaStream_t s);

// Up to 6 lerps of the same rows: out[j][t] = x[t] + (prev[t] − x[t]) ⊙ lerp[j] (each out[j]: [T][n]).
struct lerp_set {
    const float* lerp[6];
    float* out[6];
    int n;
};
void lerp_rows(const float* x, const float* prev, const lerp_set& l, int64_t T, int64_t n, cudaStream_t s);

// The causal depthwise conv + SiLU of Mamba-1/2 over T tokens, one thread per channel (block_math.h
// conv_silu_channel): channel c of token t is x[t·x_stride + c]; w (ch, K), b (ch), state (ch, K−1)
// carried and updated; out [T][ch].
void conv_silu(const float* x, int64_t x_stride, const float* w, const float* b, float* state, float* out, int64_t T,
               int64_t ch, int64_t K, cudaStream_t s);

// y[i] += a[i] · b[i] for i < n (a gated residual add).
void add_product(float* y, const float* a, const float* b, int64_t n, cudaStream_t s);

// x[i] *= f for i < n.
void scale(float* x, float f, int64_t n, cudaStream_t s);

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Block-wide sum of one value per thread (blockDim a multiple of 32, ≤ 1024); every thread gets it.
// `scratch` is 32 doubles of shared memory; the call synchronises the block (twice, so that the
// scratch may be reused by the next call at once).
__device__ __forceinline__ double block_sum(double v, double* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    double total = 0.0;
    for (int i = 0; i < n_warps; i++) total += scratch[i];
    __syncthreads();
    return total;
}

} // namespace pyrnn::cuda
