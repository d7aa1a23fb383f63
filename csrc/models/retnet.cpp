// retnet.cpp — RetNet, torchscale's current layout (RMSNorm, no biases, GLU), architecture "retnet".
// Equations: shared/reference/ARCHITECTURES.md §3.1–§3.4 (torchscale MultiScaleRetention
// recurrent_forward, reproduced exactly for decode; the chunkwise form of §3.4 for prefill).
// Keys and tensor names: docs/FORMAT.md "retnet".
//
// D = embedding_length, H = attention.head_count, dk = D / H (key head size), dv = value head size,
// Dv = H·dv, F = feed_forward_length.
//
// State, floats:  [ n | layer 0 | layer 1 | … | layer L−1 ]
//   n:     the number of tokens seen so far (= the absolute position of the next token), stored
//          as the bit pattern of a uint32 in the first float (exact up to 2^32 − 1 tokens; a float
//          count would stop counting at 2^24). Read and written with memcpy only.
//   layer: [ S (H × dv × dk) | scale (H) ]
//          S[h][v][k]: torchscale's incremental_state["prev_key_value"] of head h (value-major);
//          scale[h]:   incremental_state["scale"], Σ_{i<n} γ_h^i, the normaliser S is divided by the
//                      square root of.
//   All zeros at the start: with scale = 0 the general update gives torchscale's first step
//   (S = v ⊗ k, scale = 1) exactly, so no special case is needed.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <vector>

#include "loader.h"
#include "ops.h"
#include "weights.h"

namespace pyrnn {

namespace {

// The hyperparameters and weights (weights.h, shared with cuda/retnet.cu) are a base: the code below
// reads D, H, layers, ... as members.
class retnet_model final : public model, private retnet_weights {
  public:
    explicit retnet_model(std::shared_ptr<const gguf_file> f) : model(std::move(f)), retnet_weights(*file_, weights_for::cpu) {}

    std::string arch() const override { return "retnet"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return D; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return 1 + size_t(L) * layer_state(); }
    void init_state(float* s) const override { std::fill(s, s + state_size(), 0.0f); }

    void forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const override;

  private:
    size_t layer_state() const { return size_t(H * dv * dk + H); }
    void rotate(float* x, uint32_t pos, int64_t T) const;
    void retention_step(float* S, float* scale, const float* q, const float* k, const float* v, float* o) const;
    void retention_chunk(float* S, float* scale, const float* q, const float* k, const float* v, float* o,
                         int64_t T) const;
    void retention(const retnet_layer& ly, float* x, float* s, uint32_t pos, int64_t T) const;
    void ffn(const retnet_layer& ly, float* x, int64_t T) const;
};

// theta_shift of every head of T rows of [H][dk] at positions pos, pos+1, …:
// x[2i] ← x[2i]·cos − x[2i+1]·sin, x[2i+1] ← x[2i+1]·cos + x[2i]·sin, angle n·θ per channel
// (float(n)·θ in float, as torchscale's angle * (slen − 1)).
void retnet_model::rotate(float* x, uint32_t pos, int64_t T) const {
    std::vector<float> c(dk), s(dk);
    for (int64_t t = 0; t < T; t++) {
        const float n = float(pos + uint32_t(t));
        for (int64_t i = 0; i < dk; i++) {
            const float a = n * angle[i];
            c[i] = std::cos(a);
            s[i] = std::sin(a);
        }
        for (int64_t h = 0; h < H; h++) {
            float* xh = x + t * D + h * dk;
            for (int64_t i = 0; i < dk; i += 2) {
                const float x0 = xh[i], x1 = xh[i + 1];
                xh[i] = x0 * c[i] - x1 * s[i];
                xh[i + 1] = x1 * c[i + 1] + x0 * s[i + 1];
            }
        }
    }
}

// One token, torchscale recurrent_forward exactly (per head; q, k rotated, k scaled):
//   s' = s·γ + 1;  S ← S · (√s·γ / √s') + (v ⊗ k) / √s';  o = S·q
void retnet_model::retention_step(float* S_all, float* scale, const float* q, const float* k, const float* v,
                                  float* o) const {
    const auto dot = kernels().dot_f32;
    for (int64_t h = 0; h < H; h++) {
        float* S = S_all + h * dv * dk;
        const float* qh = q + h * dk;
        const float* kh = k + h * dk;
        const float s_new = scale[h] * gamma[h] + 1.0f;
        const float root = std::sqrt(s_new);
        const float a = std::sqrt(scale[h]) * gamma[h] / root, inv = 1.0f / root;
        scale[h] = s_new;
        for (int64_t i = 0; i < dv; i++) {
            float* Si = S + i * dk;
            const float vi = v[h * dv + i] * inv;
            for (int64_t j = 0; j < dk; j++) Si[j] = Si[j] * a + vi * kh[j];
            o[h * dv + i] = dot(Si, qh, dk);
        }
    }
}

// T tokens at once (§3.4), per head, with Ŝ = S·√scale the unnormalised state before the chunk:
//   o[j]  = ( Σ_{m≤j} γ^{j−m} (q_j·k_m) v_m  +  γ^{j+1} Ŝ q_j ) / √s_j      s_j: the step's scale
//   Ŝ'    = γ^T Ŝ + Σ_m γ^{T−1−m} v_m ⊗ k_m;   S ← Ŝ' / √s_{T−1}
// The same numbers as T steps (up to rounding), without a pass over S per token. The two dv×dk×T
// products (Ŝ q_j for every j, and Σ_m v_m ⊗ k_m) are most of the work: they go through the F32 GEMM
// of the kernel table, split over the threads like the projections.
// q, k: [T][D] (rotated, k scaled); v, o: [T][Dv].
void retnet_model::retention_chunk(float* S_all, float* scale, const float* q, const float* k, const float* v,
                                   float* o, int64_t T) const {
    const auto dot = kernels().dot_f32;
    std::vector<float> pw(size_t(T + 1)), root(T), att(size_t(T * T)), qh(size_t(T * dk)), Sq(size_t(T * dv)),
        kt(size_t(dk * T)), vt(size_t(dv * T)), kv(size_t(dv * dk));
    for (int64_t h = 0; h < H; h++) {
        float* S = S_all + h * dv * dk;
        for (int64_t e = 0; e <= T; e++) pw[e] = float(std::exp(double(e) * log_gamma[h])); // γ^e
        const float unnorm = std::sqrt(scale[h]);
        float s = scale[h];
        for (int64_t j = 0; j < T; j++) { // the scales of the T steps, by the step's own recurrence
            s = s * gamma[h] + 1.0f;
            root[j] = std::sqrt(s);
        }
        scale[h] = s;
        for (int64_t e = 0; e < dv * dk; e++) S[e] *= unnorm; // → Ŝ
        // this head's q as contiguous rows, k and γ^{T−1−m}·v transposed (the GEMMs' layouts)
        for (int64_t j = 0; j < T; j++) {
            std::copy_n(q + j * D + h * dk, dk, &qh[j * dk]);
            for (int64_t c = 0; c < dk; c++) kt[c * T + j] = k[j * D + h * dk + c];
            for (int64_t i = 0; i < dv; i++) vt[i * T + j] = v[j * Dv + h * dv + i] * pw[T - 1 - j];
        }
        // att[j][m] = γ^{j−m} q_j·k_m for m ≤ j
        for (int64_t j = 0; j < T; j++) {
            for (int64_t m = 0; m <= j; m++) att[j * T + m] = dot(&qh[j * dk], k + m * D + h * dk, dk) * pw[j - m];
        }
        matmul(matrix{S, GGML_TYPE_F32, dv, dk}, qh.data(), Sq.data(), T); // Sq[j][i] = (Ŝ q_j)[i]
        for (int64_t j = 0; j < T; j++) {
            float* oj = o + j * Dv + h * dv;
            const float* sqj = &Sq[j * dv];
            for (int64_t i = 0; i < dv; i++) oj[i] = sqj[i] * pw[j + 1]; // cross-chunk part from the carried state
            for (int64_t m = 0; m <= j; m++) { // inside the chunk
                const float a = att[j * T + m];
                const float* vm = v + m * Dv + h * dv;
                for (int64_t i = 0; i < dv; i++) oj[i] += a * vm[i];
            }
            const float inv = 1.0f / root[j];
            for (int64_t i = 0; i < dv; i++) oj[i] *= inv;
        }
        // Ŝ' = γ^T Ŝ + Σ_m γ^{T−1−m} v_m ⊗ k_m (kv[i][c] = Σ_m vt[i][m]·kt[c][m]), then back to the
        // normalised S
        matmul(matrix{kt.data(), GGML_TYPE_F32, dk, T}, vt.data(), kv.data(), dv);
        const float inv_end = 1.0f / root[T - 1];
        for (int64_t e = 0; e < dv * dk; e++) S[e] = (S[e] * pw[T] + kv[e]) * inv_end;
    }
}

// x [T][D]: residual stream, updated. s: this layer's state. pos: absolute position of x[0].
void retnet_model::retention(const retnet_layer& ly, float* x, float* s, uint32_t pos, int64_t T) const {
    const int64_t TD = T * D, TV = T * Dv;
    std::vector<float> u(TD), q(TD), k(TD), v(TV), g(TV), o(TV), out(TD);
    for (int64_t t = 0; t < T; t++) rms_norm(x + t * D, ly.attn_norm, &u[t * D], D, eps);
    matmul(ly.wq, u.data(), q.data(), T);
    matmul(ly.wk, u.data(), k.data(), T);
    matmul(ly.wv, u.data(), v.data(), T);
    matmul(ly.wg, u.data(), g.data(), T);
    const float k_scale = 1.0f / std::sqrt(float(dk)); // torchscale: k *= key_dim ** -0.5, before rotation
    for (float& e : k) e *= k_scale;
    rotate(q.data(), pos, T);
    rotate(k.data(), pos, T);
    float* S = s;
    float* scale = s + H * dv * dk;
    if (T == 1) {
        retention_step(S, scale, q.data(), k.data(), v.data(), o.data());
    } else {
        retention_chunk(S, scale, q.data(), k.data(), v.data(), o.data(), T);
    }
    for (int64_t t = 0; t < T; t++) {
        for (int64_t h = 0; h < H; h++) rms_norm(&o[t * Dv + h * dv], nullptr, &o[t * Dv + h * dv], dv, eps);
    }
    for (int64_t e = 0; e < TV; e++) o[e] *= g[e] * sigmoid(g[e]); // swish gate
    matmul(ly.wo, o.data(), out.data(), T);
    for (int64_t e = 0; e < TD; e++) x[e] += out[e];
}

// x += fc2( act(fc1 u) ⊙ gate u ),  u = RMSNorm(x)   (torchscale GLU; fc1 = ffn_gate, gate = ffn_up)
void retnet_model::ffn(const retnet_layer& ly, float* x, int64_t T) const {
    const int64_t TD = T * D, TF = T * F;
    std::vector<float> u(TD), a(TF), b(TF), out(TD);
    for (int64_t t = 0; t < T; t++) rms_norm(x + t * D, ly.ffn_norm, &u[t * D], D, eps);
    matmul(ly.ffn_gate, u.data(), a.data(), T);
    matmul(ly.ffn_up, u.data(), b.data(), T);
    for (int64_t e = 0; e < TF; e++) {
        const float z = a[e];
        float y = 0.0f;
        switch (ffn_act) {
        case retnet_activation::gelu: y = 0.5f * z * (1.0f + std::erf(z * 0.70710678118654752f)); break; // exact (erf)
        case retnet_activation::silu: y = z * sigmoid(z); break;
        case retnet_activation::relu: y = z > 0.0f ? z : 0.0f; break;
        }
        a[e] = y * b[e];
    }
    matmul(ly.ffn_down, a.data(), out.data(), T);
    for (int64_t e = 0; e < TD; e++) x[e] += out[e];
}

void retnet_model::forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const {
    constexpr size_t chunk = 64; // tokens whose activations are held at once; also the retention chunk
    uint32_t pos = 0;
    std::memcpy(&pos, state, sizeof pos);
    for (size_t start = 0; start < n; start += chunk) {
        const int64_t T = int64_t(std::min(chunk, n - start));
        std::vector<float> x(size_t(T * D));
        for (int64_t t = 0; t < T; t++) {
            float* xt = &x[t * D];
            get_row(emb, tokens[start + t], xt);
            for (int64_t i = 0; i < D; i++) xt[i] *= embd_scale;
            if (embd_norm) rms_norm(xt, embd_norm, xt, D, eps);
        }
        for (int64_t l = 0; l < L; l++) {
            float* s = state + 1 + l * layer_state();
            retention(layers[l], x.data(), s, pos, T);
            ffn(layers[l], x.data(), T);
        }
        pos += uint32_t(T);
        chunk_logits(x.data(), T, D, start, n, all_logits, head, logits,
                     [&](const float* in, float* out, int64_t rows) { rms_norm_rows(in, out_norm, out, rows, D, eps); });
    }
    std::memcpy(state, &pos, sizeof pos);
}

} // namespace

// The tensors of the file, by name and shape (ggml order), checked by weight_loader.
retnet_weights::retnet_weights(const gguf_file& f, weights_for use) {
    weight_loader w(f, "retnet", owned, use == weights_for::cpu ? &packs : nullptr);
    D = w.u32("embedding_length");
    L = w.u32("block_count");
    H = w.u32("attention.head_count");
    F = w.u32("feed_forward_length");
    if (H == 0 || D % H != 0 || (D / H) % 2 != 0) {
        throw format_error("retnet.attention.head_count: expected a divisor of embedding_length " +
                           std::to_string(D) + " leaving an even key head size, found " + std::to_string(H));
    }
    dk = D / H;
    const uint32_t key_length = w.u32("attention.key_length", uint32_t(dk));
    if (key_length != dk) {
        throw format_error("retnet.attention.key_length: expected embedding_length / head_count = " +
                           std::to_string(dk) + ", found " + std::to_string(key_length));
    }
    dv = w.u32("attention.value_length");
    if (dv == 0) throw format_error("retnet.attention.value_length: expected > 0, found 0");
    Dv = H * dv;
    eps = w.f32("attention.layer_norm_rms_epsilon", 1e-6f);
    embd_scale = w.f32("embedding_scale", 1.0f);
    const std::string act = f.get_string("retnet.feed_forward_activation");
    if (act == "gelu") {
        ffn_act = retnet_activation::gelu;
    } else if (act == "silu") {
        ffn_act = retnet_activation::silu;
    } else if (act == "relu") {
        ffn_act = retnet_activation::relu;
    } else {
        throw format_error("metadata \"retnet.feed_forward_activation\": expected \"gelu\", \"silu\" or "
                           "\"relu\", found \"" + act + "\"");
    }

    const gguf_tensor& emb_t = f.tensor("token_embd.weight");
    V = emb_t.n_dims >= 2 ? emb_t.ne[1] : 0;
    emb = w.embedding("token_embd.weight", V, D);
    if (w.has("token_embd_norm.weight")) embd_norm = w.vec("token_embd_norm.weight", D); // layernorm_embedding
    out_norm = w.vec("output_norm.weight", D);
    head = w.mat(w.has("output.weight") ? "output.weight" : "token_embd.weight", V, D); // tied when absent
    angle = w.vec("rope_angle.weight", dk);
    const float* log_decay = w.vec("retention_decay.weight", H);
    for (int64_t h = 0; h < H; h++) {
        if (!(log_decay[h] < 0.0f)) {
            throw format_error("tensor \"retention_decay.weight\" [" + std::to_string(h) +
                               "]: expected log γ < 0, found " + std::to_string(log_decay[h]));
        }
        log_gamma.push_back(double(log_decay[h]));
        gamma.push_back(std::exp(log_decay[h])); // float exp of the float buffer, as torchscale's decay.exp()
    }
    for (int64_t i = 0; i < L; i++) {
        const std::string p = "blk." + std::to_string(i) + ".";
        retnet_layer ly;
        ly.attn_norm = w.vec(p + "attn_norm.weight", D);
        ly.wq = w.mat(p + "attn_q.weight", D, D);
        ly.wk = w.mat(p + "attn_k.weight", D, D);
        ly.wv = w.mat(p + "attn_v.weight", Dv, D);
        ly.wg = w.mat(p + "attn_gate.weight", Dv, D);
        ly.wo = w.mat(p + "attn_output.weight", D, Dv);
        ly.ffn_norm = w.vec(p + "ffn_norm.weight", D);
        ly.ffn_gate = w.mat(p + "ffn_gate.weight", F, D);
        ly.ffn_up = w.mat(p + "ffn_up.weight", F, D);
        ly.ffn_down = w.mat(p + "ffn_down.weight", D, F);
        layers.push_back(ly);
    }
}

std::unique_ptr<model> load_retnet(std::shared_ptr<const gguf_file> f) {
    return std::make_unique<retnet_model>(std::move(f));
}

} // namespace pyrnn
