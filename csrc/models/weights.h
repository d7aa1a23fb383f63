// weights.h — every architecture's hyperparameters and host weight views, read and checked once
// from a GGUF file: the CPU model computes with them (models/<arch>.cpp) and the CUDA model uploads
// them (cuda/<arch>.cu), so the file format (tensor names, shapes, checks) is written down in one
// place.
//
//   rwkv7_weights w(file, weights_for::cpu); // throws format_error for a missing/misshapen tensor or key
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

// ---- RWKV-4 (Pile, Raven, World), pyrnn's layout (architecture "rwkv4", docs/FORMAT.md) -----------
//   A = the attention width (C in every released model), taken from the decay's length.

struct rwkv4_layer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; // (C)
    const float *mix_k, *mix_v, *mix_r;         // (C) time-mix μ
    const float* w;                             // (A) −exp(time_decay), computed at load
    const float* u;                             // (A) time_first, the current token's bonus
    matrix wk, wv, wr;                          // (A, C)
    matrix wo;                                  // (C, A)
    const float *ffn_mix_k, *ffn_mix_r;         // (C) channel-mix μ
    matrix ffn_key;                             // (F, C)
    matrix ffn_value;                           // (C, F)
    matrix ffn_receptance;                      // (C, C)
};

struct rwkv4_weights {
    rwkv4_weights(const gguf_file& f, weights_for use);
    rwkv4_weights(const rwkv4_weights&) = delete;
    rwkv4_weights& operator=(const rwkv4_weights&) = delete;

    int64_t C = 0, A = 0, L = 0, F = 0, V = 0;
    float eps = 1e-5f;
    matrix emb;                                           // (V, C)
    const float *ln0_w = nullptr, *ln0_b = nullptr;       // (C)
    const float *ln_out_w = nullptr, *ln_out_b = nullptr; // (C)
    matrix head;                                          // (V, C)
    std::vector<rwkv4_layer> layers;
    std::deque<std::vector<float>> owned; // widened f16/bf16 copies and the decays
    std::deque<packed_matrix> packs;      // matrices repacked for this CPU's kernels (cpu use only)
};

// ---- RWKV-5 "Eagle" (5.0, 5.1, 5.2), pyrnn's layout (architecture "rwkv5", docs/FORMAT.md) -------
// 5.0/5.1/5.2 (rwkv5.version 50/51/52) share one recurrence; 5.0 has no gate (models/rwkv5.cpp).

struct rwkv5_layer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;     // (C)
    const float *lerp_k, *lerp_v, *lerp_r, *lerp_g; // (C) token-shift: x + (x_prev − x)·lerp; g: 5.1+
    const float* w;                                 // (C) decay exp(−exp(time_decay)), computed at load
    const float* u;                                 // (C) bonus of the current token ("time_first")
    matrix wr, wk, wv, wg, wo;                      // (C, C); wg only when gated (5.1+)
    const float *lnx_w, *lnx_b;                     // (C) GroupNorm(H)
    const float *ffn_lerp_k, *ffn_lerp_r;           // (C)
    matrix ffn_key, ffn_value, ffn_recept;          // (F, C), (C, F), (C, C)
};

struct rwkv5_weights {
    rwkv5_weights(const gguf_file& f, weights_for use);
    rwkv5_weights(const rwkv5_weights&) = delete;
    rwkv5_weights& operator=(const rwkv5_weights&) = delete;

    uint32_t version = 52;
    bool gated = true;                                    // 5.1+: an output gate
    int64_t C = 0, L = 0, N = 0, H = 0, F = 0, V = 0;     // H = C / N heads of size N
    float eps = 1e-5f, gn_eps = 64e-5f;                   // LayerNorm, GroupNorm
    matrix emb;                                           // (V, C)
    const float *ln0_w = nullptr, *ln0_b = nullptr;       // (C), optional
    const float *ln_out_w = nullptr, *ln_out_b = nullptr; // (C)
    matrix head;                                          // (V, C)
    std::vector<rwkv5_layer> layers;
    std::deque<std::vector<float>> owned; // widened f16/bf16 copies and the decays
    std::deque<packed_matrix> packs;      // matrices repacked for this CPU's kernels (cpu use only)
};

// ---- RWKV-6 "Finch" (x060), llama.cpp's GGUF layout (architecture "rwkv6") ----------------------

struct rwkv6_layer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; // (C)
    const float* lerp_x;                        // (C) token-shift mix feeding the mix LoRA
    const float* lerp;                          // (5, C): w, k, v, r, g token-shift mixes
    matrix mix_w1;                              // (5·Dm, C): mix LoRA down, row block j ↔ w, k, v, r, g
    matrix mix_w2[5];                           // (C, Dm) each: mix LoRA up, one per w, k, v, r, g
    const float* decay;                         // (C) raw log-log decay base (w = exp(−exp(decay + lora)))
    matrix decay_w1, decay_w2;                  // (Dd, C), (C, Dd): decay LoRA
    const float* first;                         // (H, N) bonus u of the current token
    matrix wr, wk, wv, wg, wo;                  // (C, C)
    const float *lnx_w, *lnx_b;                 // (C) GroupNorm(H)
    const float *ffn_lerp_k, *ffn_lerp_r;       // (C)
    matrix ffn_key, ffn_value, ffn_receptance;  // (F, C), (C, F), (C, C)
};

struct rwkv6_weights {
    rwkv6_weights(const gguf_file& f, weights_for use);
    rwkv6_weights(const rwkv6_weights&) = delete;
    rwkv6_weights& operator=(const rwkv6_weights&) = delete;

    int64_t C = 0, L = 0, N = 0, H = 0, F = 0, V = 0; // H = C / N heads of size N
    int64_t rescale_every = 0; // > 0: output/value weights pre-divided by 2^⌊i/n⌋, x halved every n blocks
    float eps = 1e-5f;
    matrix emb;                                           // (V, C)
    const float *ln0_w = nullptr, *ln0_b = nullptr;       // (C), optional
    const float *ln_out_w = nullptr, *ln_out_b = nullptr; // (C)
    matrix head;                                          // (V, C)
    std::vector<rwkv6_layer> layers;
    std::deque<std::vector<float>> owned; // widened f16/bf16 copies (a deque keeps them in place)
    std::deque<packed_matrix> packs;      // matrices repacked for this CPU's kernels (cpu use only)
};

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

// ---- Mamba-2 (SSD), llama.cpp's GGUF layout (architecture "mamba2") -----------------------------
//   D = ssm.inner_size, N = ssm.state_size, G = ssm.group_count, H = ssm.time_step_rank (heads),
//   P = D / H (head dim), Q = D + 2·G·N (conv width), K = ssm.conv_kernel.

struct mamba2_layer {
    const float* norm_w; // (C) RMSNorm before the mixer
    matrix in_proj;      // (2D + 2GN + H, C): rows [z (D) | x (D) | B (GN) | C (GN) | dt (H)]
    const float* conv_w; // (Q, K): depthwise conv over xBC, last column = newest input
    const float* conv_b; // (Q)
    const float* dt_b;   // (H)
    const float* A;      // (H): −exp(A_log), stored so by the converter
    const float* Dskip;  // (H)
    const float* gnorm;  // (G, D/G) = (D): gated RMSNorm weight
    matrix out_proj;     // (C, D)
};

struct mamba2_weights {
    mamba2_weights(const gguf_file& f, weights_for use);
    mamba2_weights(const mamba2_weights&) = delete;
    mamba2_weights& operator=(const mamba2_weights&) = delete;

    int64_t C = 0, L = 0, K = 0, D = 0, N = 0, H = 0, G = 0, P = 0, Q = 0, V = 0;
    float eps = 1e-5f;
    matrix emb;                    // (V, C)
    const float* norm_f = nullptr; // (C)
    matrix head;                   // (V, C): output.weight or the tied embedding
    std::vector<mamba2_layer> layers;
    std::deque<std::vector<float>> owned; // widened f16/bf16 copies (a deque keeps them in place)
    std::deque<packed_matrix> packs;      // matrices repacked for this CPU's kernels (cpu use only)
};

// ---- RetNet, torchscale's current layout (architecture "retnet", docs/FORMAT.md) -----------------
//   D = embedding_length, H = attention.head_count, dk = D / H, dv = attention.value_length, Dv = H·dv.

enum class retnet_activation { gelu, silu, relu };

struct retnet_layer {
    const float* attn_norm;  // (D) retention_layer_norm
    matrix wq, wk;           // (D, D)
    matrix wv, wg;           // (Dv, D)
    matrix wo;               // (D, Dv)
    const float* ffn_norm;   // (D) final_layer_norm
    matrix ffn_gate, ffn_up; // (F, D): the activated branch (fc1), the linear branch (gate)
    matrix ffn_down;         // (D, F) fc2
};

struct retnet_weights {
    retnet_weights(const gguf_file& f, weights_for use);
    retnet_weights(const retnet_weights&) = delete;
    retnet_weights& operator=(const retnet_weights&) = delete;

    int64_t D = 0, L = 0, H = 0, dk = 0, dv = 0, Dv = 0, F = 0, V = 0;
    float eps = 1e-6f, embd_scale = 1.0f;
    retnet_activation ffn_act = retnet_activation::gelu;
    matrix emb;                       // (V, D)
    const float* embd_norm = nullptr; // (D), optional
    const float* out_norm = nullptr;  // (D)
    matrix head;                      // (V, D)
    const float* angle = nullptr;     // (dk) rotation frequency of each key/query channel
    std::vector<double> log_gamma;    // (H) log γ_h, for the powers in the chunk form
    std::vector<float> gamma;         // (H) γ_h
    std::vector<retnet_layer> layers;
    std::deque<std::vector<float>> owned; // widened f16/bf16 copies (a deque keeps them in place)
    std::deque<packed_matrix> packs;      // matrices repacked for this CPU's kernels (cpu use only)
};

} // namespace pyrnn
