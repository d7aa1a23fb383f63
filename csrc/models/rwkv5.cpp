// rwkv5.cpp — RWKV-5 "Eagle" (5.0, 5.1, 5.2), architecture "rwkv5" (pyrnn's layout, docs/FORMAT.md).
// Equations: shared/reference/ARCHITECTURES.md §1.2.2 (pip att_one_v5 / att_one_v5_1, ffn_one).
//
// State per layer, floats:  [ att_x (C) | ffn_x (C) | S (H × N × N) ]
//   att_x, ffn_x: the LayerNorm outputs of the previous token (token shift), zero at start;
//   S[h][k][v]:   the wkv matrix of head h, key-major (pip's v5 orientation: row = key channel,
//                 column = value channel), zero at start.
//
// Sub-versions (metadata rwkv5.version = 50, 51, 52) differ only in what the converter folds away:
// 5.0 has no gate; 5.0/5.1 have one decay and bonus per head, which the converter repeats over the
// head's N channels, so the recurrence here is always the per-channel one of 5.2.
#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "loader.h"
#include "ops.h"
#include "weights.h"

namespace pyrnn {

namespace {

// The hyperparameters and weights (weights.h, shared with cuda/rwkv5_6.cu) are a base: the code below
// reads C, N, layers, ... as members.
class rwkv5_model final : public model, private rwkv5_weights {
  public:
    explicit rwkv5_model(std::shared_ptr<const gguf_file> f) : model(std::move(f)), rwkv5_weights(*file_, weights_for::cpu) {}

    std::string arch() const override { return "rwkv5"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }
    void init_state(float* s) const override { std::fill(s, s + state_size(), 0.0f); }

    void forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const override;

  private:
    size_t layer_state() const { return size_t(2 * C + H * N * N); }
    void time_mix(const rwkv5_layer& ly, float* x, float* s, int64_t T) const;
    void channel_mix(const rwkv5_layer& ly, float* x, float* s, int64_t T) const;
};

// out[t] = x[t] + (prev[t] − x[t]) · lerp, for T rows of n.
void lerp_rows(const float* x, const float* prev, const float* lerp, float* out, int64_t T, int64_t n) {
    for (int64_t t = 0; t < T; t++) {
        for (int64_t c = 0; c < n; c++) {
            const float xc = x[t * n + c];
            out[t * n + c] = xc + (prev[t * n + c] - xc) * lerp[c];
        }
    }
}

// x [T][C]: residual stream, updated.
void rwkv5_model::time_mix(const rwkv5_layer& ly, float* x, float* s, int64_t T) const {
    float* att_x = s;         // (C)
    float* S_all = s + 2 * C; // (H, N, N)
    const int64_t TC = T * C;
    std::vector<float> xn(TC), prev(TC), mixed(TC), r(TC), k(TC), v(TC), g(gated ? TC : 0), y(TC);
    layer_norm_rows(x, ly.ln1_w, ly.ln1_b, xn.data(), T, C, eps);
    token_shift(xn.data(), prev.data(), att_x, T, C);
    lerp_rows(xn.data(), prev.data(), ly.lerp_r, mixed.data(), T, C);
    matmul(ly.wr, mixed.data(), r.data(), T);
    lerp_rows(xn.data(), prev.data(), ly.lerp_k, mixed.data(), T, C);
    matmul(ly.wk, mixed.data(), k.data(), T);
    lerp_rows(xn.data(), prev.data(), ly.lerp_v, mixed.data(), T, C);
    matmul(ly.wv, mixed.data(), v.data(), T);
    if (gated) {
        lerp_rows(xn.data(), prev.data(), ly.lerp_g, mixed.data(), T, C);
        matmul(ly.wg, mixed.data(), g.data(), T);
        for (float& e : g) e = e * sigmoid(e); // silu
    }

    // Per token and head (S[i][j], i = key, j = value):
    //   y[j] = Σ_i r[i] · (u[i]·k[i]·v[j] + S[i][j]);   S[i][j] ← k[i]·v[j] + w[i]·S[i][j]
    // The output reads the old state plus the bonus-weighted current term, then the state decays.
    for (int64_t t = 0; t < T; t++) {
        const float *rt = &r[t * C], *kt = &k[t * C], *vt = &v[t * C];
        float* yt = &y[t * C];
        for (int64_t h = 0; h < H; h++) {
            float* S = S_all + h * N * N;
            const int64_t o = h * N;
            float* yh = yt + o;
            const float* vh = vt + o;
            std::fill(yh, yh + N, 0.0f);
            for (int64_t i = 0; i < N; i++) {
                float* Si = S + i * N;
                const float ri = rt[o + i], ki = kt[o + i], ui = ly.u[o + i], wi = ly.w[o + i];
                for (int64_t j = 0; j < N; j++) {
                    const float a = ki * vh[j];
                    yh[j] += ri * (ui * a + Si[j]);
                    Si[j] = a + wi * Si[j];
                }
            }
        }
        group_norm(yt, ly.lnx_w, ly.lnx_b, yt, C, H, gn_eps);
        if (gated) {
            for (int64_t c = 0; c < C; c++) yt[c] *= g[t * C + c];
        }
    }
    std::vector<float> out(TC);
    matmul(ly.wo, y.data(), out.data(), T);
    for (int64_t i = 0; i < TC; i++) x[i] += out[i];
}

void rwkv5_model::channel_mix(const rwkv5_layer& ly, float* x, float* s, int64_t T) const {
    float* ffn_x = s + C;
    const int64_t TC = T * C;
    std::vector<float> xn(TC), prev(TC), mixed(TC), rr(TC), hidden(size_t(T * F)), out(TC);
    layer_norm_rows(x, ly.ln2_w, ly.ln2_b, xn.data(), T, C, eps);
    token_shift(xn.data(), prev.data(), ffn_x, T, C);
    lerp_rows(xn.data(), prev.data(), ly.ffn_lerp_r, mixed.data(), T, C);
    matmul(ly.ffn_recept, mixed.data(), rr.data(), T);
    lerp_rows(xn.data(), prev.data(), ly.ffn_lerp_k, mixed.data(), T, C);
    matmul(ly.ffn_key, mixed.data(), hidden.data(), T);
    for (float& e : hidden) e = e > 0.0f ? e * e : 0.0f; // relu²
    matmul(ly.ffn_value, hidden.data(), out.data(), T);
    for (int64_t i = 0; i < TC; i++) x[i] += sigmoid(rr[i]) * out[i];
}

void rwkv5_model::forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const {
    constexpr size_t chunk = 64; // tokens whose activations are held at once
    for (size_t start = 0; start < n; start += chunk) {
        const int64_t T = int64_t(std::min(chunk, n - start));
        std::vector<float> x(size_t(T * C));
        for (int64_t t = 0; t < T; t++) {
            float* xt = &x[t * C];
            get_row(emb, tokens[start + t], xt);
            if (ln0_w) layer_norm(xt, ln0_w, ln0_b, xt, C, eps);
        }
        for (int64_t l = 0; l < L; l++) {
            float* s = state + l * layer_state();
            time_mix(layers[l], x.data(), s, T);
            channel_mix(layers[l], x.data(), s, T);
        }
        chunk_logits(x.data(), T, C, start, n, all_logits, head, logits,
                     [&](const float* in, float* out, int64_t rows) { layer_norm_rows(in, ln_out_w, ln_out_b, out, rows, C, eps); });
    }
}

} // namespace

// The tensors of the file, by name and shape (ggml order), checked by weight_loader.
rwkv5_weights::rwkv5_weights(const gguf_file& f, weights_for use) {
    weight_loader w(f, "rwkv5", owned, use == weights_for::cpu ? &packs : nullptr);
    version = w.u32("version");
    if (version != 50 && version != 51 && version != 52) {
        throw format_error("rwkv5.version: expected 50, 51 or 52 (RWKV-5.0/5.1/5.2), found " +
                           std::to_string(version));
    }
    gated = version >= 51;
    C = w.u32("embedding_length");
    L = w.u32("block_count");
    N = w.u32("wkv.head_size");
    F = w.u32("feed_forward_length");
    eps = w.f32("attention.layer_norm_epsilon", 1e-5f);
    // pip's constant: training's GroupNorm(x / head_size_divisor 8, eps 1e-5) rewritten.
    gn_eps = w.f32("attention.group_norm_epsilon", 64e-5f);
    if (N == 0 || C % N != 0) {
        throw format_error("rwkv5.wkv.head_size: expected a divisor of embedding_length " + std::to_string(C) +
                           ", found " + std::to_string(N));
    }
    H = C / N;
    const gguf_tensor& emb_t = f.tensor("token_embd.weight");
    V = emb_t.n_dims >= 2 ? emb_t.ne[1] : 0;
    emb = w.embedding("token_embd.weight", V, C);
    if (w.has("token_embd_norm.weight")) { // ln0, applied at run time (not folded into the embedding)
        ln0_w = w.vec("token_embd_norm.weight", C);
        ln0_b = w.vec("token_embd_norm.bias", C);
    }
    ln_out_w = w.vec("output_norm.weight", C);
    ln_out_b = w.vec("output_norm.bias", C);
    head = w.mat("output.weight", V, C);
    for (int64_t i = 0; i < L; i++) {
        const std::string p = "blk." + std::to_string(i) + ".";
        rwkv5_layer ly;
        ly.ln1_w = w.vec(p + "attn_norm.weight", C);
        ly.ln1_b = w.vec(p + "attn_norm.bias", C);
        ly.ln2_w = w.vec(p + "attn_norm_2.weight", C);
        ly.ln2_b = w.vec(p + "attn_norm_2.bias", C);
        ly.lerp_k = w.vec(p + "time_mix_lerp_k.weight", C);
        ly.lerp_v = w.vec(p + "time_mix_lerp_v.weight", C);
        ly.lerp_r = w.vec(p + "time_mix_lerp_r.weight", C);
        ly.lerp_g = gated ? w.vec(p + "time_mix_lerp_g.weight", C) : nullptr;
        // The decay is constant per layer (no data dependence in v5), so exp(−exp(·)) once, in fp32 as pip.
        const float* decay = w.floats(p + "time_mix_decay.weight", {N, H}); // (H, N) raw log-log decay
        std::vector<float> wd(static_cast<size_t>(C));
        for (int64_t c = 0; c < C; c++) wd[c] = std::exp(-std::exp(decay[c]));
        owned.push_back(std::move(wd));
        ly.w = owned.back().data();
        ly.u = w.floats(p + "time_mix_first.weight", {N, H}); // (H, N)
        ly.wr = w.mat(p + "time_mix_receptance.weight", C, C);
        ly.wk = w.mat(p + "time_mix_key.weight", C, C);
        ly.wv = w.mat(p + "time_mix_value.weight", C, C);
        if (gated) ly.wg = w.mat(p + "time_mix_gate.weight", C, C);
        ly.wo = w.mat(p + "time_mix_output.weight", C, C);
        ly.lnx_w = w.vec(p + "time_mix_ln.weight", C);
        ly.lnx_b = w.vec(p + "time_mix_ln.bias", C);
        ly.ffn_lerp_k = w.vec(p + "channel_mix_lerp_k.weight", C);
        ly.ffn_lerp_r = w.vec(p + "channel_mix_lerp_r.weight", C);
        ly.ffn_key = w.mat(p + "channel_mix_key.weight", F, C);
        ly.ffn_value = w.mat(p + "channel_mix_value.weight", C, F);
        ly.ffn_recept = w.mat(p + "channel_mix_receptance.weight", C, C);
        layers.push_back(ly);
    }
}

std::unique_ptr<model> load_rwkv5(std::shared_ptr<const gguf_file> f) {
    return std::make_unique<rwkv5_model>(std::move(f));
}

} // namespace pyrnn
