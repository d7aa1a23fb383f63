// ssm_ops.h — the operation Mamba-1 and Mamba-2 share beyond ops.h: the causal depthwise
// convolution that carries its last d_conv−1 inputs across calls. (SiLU and softplus are kernels:
// kernels.h.)
// In their own namespace so that a same-named helper in ops.h can never collide.
#pragma once

#include <cstdint>
#include <vector>

namespace pyrnn::ssm {

// Causal depthwise conv over T tokens, channel by channel (the caller applies SiLU to `out`).
//   x:     [T] rows of `x_stride` floats; channel c of token t is x[t·x_stride + c]
//   w:     (ch, K) row-major, w[c·K + K−1] multiplies the newest input
//   state: (ch, K−1), state[c·(K−1) + j] = the input j+1 steps older than the oldest of x, oldest first;
//          on return it holds the last K−1 inputs (state then x), ready for the next call
//   out:   [T][ch]
inline void causal_conv(const float* x, int64_t x_stride, const float* w, const float* b, float* state,
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
            out[t * ch + c] = acc;
        }
        for (int64_t j = 0; j < S; j++) sc[j] = win[T + j];
    }
}

} // namespace pyrnn::ssm
