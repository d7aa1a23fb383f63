// ssm_ops.h — the operations Mamba-1 and Mamba-2 share: RMSNorm, SiLU, softplus and the causal
// depthwise convolution that carries its last d_conv−1 inputs across calls.
// In their own namespace so that a same-named helper in ops.h can never collide.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace pyrnn::ssm {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// torch.nn.functional.softplus (beta 1, threshold 20: linear above it).
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

// Causal depthwise conv over T tokens, then SiLU, channel by channel.
//   x:     [T] rows of `x_stride` floats; channel c of token t is x[t·x_stride + c]
//   w:     (ch, K) row-major, w[c·K + K−1] multiplies the newest input
//   state: (ch, K−1), state[c·(K−1) + j] = the input j+1 steps older than the oldest of x, oldest first;
//          on return it holds the last K−1 inputs (state then x), ready for the next call
//   out:   [T][ch]
inline void causal_conv_silu(const float* x, int64_t x_stride, const float* w, const float* b, float* state,
                             float* out, int64_t T, int64_t ch, int64_t K) {
    const int64_t S = K - 1;
    std::vector<float> win(size_t(S + T)); // one channel's inputs: carried state, then this call's
    for (int64_t c = 0; c < ch; c++) {
        float* sc = state + c * S;
        const float* wc = w + c * K;
        for (int64_t j = 0; j < S; j++) win[j] = sc[j];
        for (int64_t t = 0; t < T; t++) win[S + t] = x[t * x_stride + c];
        for (int64_t t = 0; t < T; t++) {
            float acc = b[c];
            for (int64_t k = 0; k < K; k++) acc += win[t + k] * wc[k];
            out[t * ch + c] = silu(acc);
        }
        for (int64_t j = 0; j < S; j++) sc[j] = win[T + j];
    }
}

} // namespace pyrnn::ssm
