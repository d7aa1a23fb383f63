// weights.h — the hyperparameters and host weight views of the architectures that also run on the
// device, read and checked once from a GGUF file: the CPU model computes with them
// (models/rwkv7.cpp, models/mamba.cpp) and the CUDA model uploads them (cuda/rwkv7.cu, cuda/mamba.cu),
// so the file format (tensor names, shapes, checks) is written down in one place.
//
//   rwkv7_weights w(file);          // throws format_error for a missing/misshapen tensor or key
//   matmul(w.layers[0].wk, x, y, T); // views into the mapping, or into w.owned (widened f16/bf16)
//
// The views point into the file's mapping and into `owned`: keep the file alive while they are used.
// Not copyable (a copy's views would point into the original's `owned`).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "gguf.h"
#include "loader.h"
#include "model.h"

namespace pyrnn {

// Who computes with the weights: the CPU (matrices also repacked for its kernels, loader.h) or a
// device that uploads them (views of the file only).
enum class weights_for { cpu, device };

// The name of the tensor whose bytes a view `m` shows (for messages), or "" when none.
inline const char* tensor_name(const gguf_file& f, const matrix& m) {
    for (const gguf_tensor& t : f.tensors()) {
        if (t.data == m.data && t.type == m.type) return t.name.c_str();
    }
    return "";
}

// ---- RWKV-7 "Goose" (x070), llama.cpp's GGUF layout (architecture "rwkv7") ----------------------

struct rwkv7_layer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; // (C)
    const float* lerp;                          // (6, C): r, w, k, v, a, g token-shift mixes
    const float *w0, *a0, *v0 = nullptr;        // (C) LoRA biases (v0 unused in layer 0)
    matrix w1, w2;                              // (Dw, C), (C, Dw): decay LoRA
    matrix a1, a2;                              // (Da, C), (C, Da): in-context learning rate
    matrix v1, v2;                              // (Dv, C), (C, Dv): value residual (unused in layer 0)
    matrix g1, g2;                              // (Dg, C), (C, Dg): output gate
    const float *k_k, *k_a, *r_k;               // (C)
    matrix wr, wk, wv, wo;                      // (C, C)
    const float *lnx_w, *lnx_b;                 // (C) GroupNorm(H)
    const float* ffn_lerp_k;                    // (C)
    matrix ffn_key, ffn_value;                  // (F, C), (C, F)
};

struct rwkv7_weights {
    // check_hparams, when given, runs once the hyperparameters are read, before they are checked
    // here and before any tensor is read: a backend's own limits, with its own message.
    rwkv7_weights(const gguf_file& f, weights_for use,
                  const std::function<void(const rwkv7_weights&)>& check_hparams = {});
    rwkv7_weights(const rwkv7_weights&) = delete;
    rwkv7_weights& operator=(const rwkv7_weights&) = delete;

    int64_t C = 0, L = 0, N = 0, H = 0, F = 0, V = 0; // H = C / N heads of size N
    float eps = 1e-5f;
    matrix emb;                                           // (V, C)
    const float *ln0_w = nullptr, *ln0_b = nullptr;       // (C), optional
    const float *ln_out_w = nullptr, *ln_out_b = nullptr; // (C)
    matrix head;                                          // (V, C)
    std::vector<rwkv7_layer> layers;
    std::deque<std::vector<float>> owned; // widened f16/bf16 copies (a deque keeps them in place)
    std::deque<packed_matrix> packs;      // matrices repacked for this CPU's kernels (cpu use only)
};

// ---- Mamba-1, llama.cpp's GGUF layout (architecture "mamba") -----------------------------------
//   D = ssm.inner_size (d_inner), K = ssm.conv_kernel, N = ssm.state_size, R = ssm.time_step_rank.

struct mamba_layer {
    const float* norm_w;       // (C) RMSNorm before the mixer
    matrix in_proj;            // (2D, C): rows [x (D) | z (D)]
    const float* conv_w;       // (D, K): depthwise conv, last column = newest input
    const float* conv_b;       // (D)
    matrix x_proj;             // (R + 2N, D): rows [dt (R) | B (N) | C (N)]
    matrix dt_proj;            // (D, R)
    const float* dt_b;         // (D)
    const float* A;            // (D, N): −exp(A_log), stored so by the converter
    const float* Dskip;        // (D)
    matrix out_proj;           // (C, D)
};

struct mamba_weights {
    mamba_weights(const gguf_file& f, weights_for use);
    mamba_weights(const mamba_weights&) = delete;
    mamba_weights& operator=(const mamba_weights&) = delete;

    int64_t C = 0, L = 0, K = 0, D = 0, N = 0, R = 0, V = 0;
    float eps = 1e-5f;
    matrix emb;                    // (V, C)
    const float* norm_f = nullptr; // (C)
    matrix head;                   // (V, C): output.weight or the tied embedding
    std::vector<mamba_layer> layers;
    std::deque<std::vector<float>> owned; // widened f16/bf16 copies (a deque keeps them in place)
    std::deque<packed_matrix> packs;      // matrices repacked for this CPU's kernels (cpu use only)
};

} // namespace pyrnn
