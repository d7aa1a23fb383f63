// rwkv4.cpp — RWKV-4 (Pile, Raven, World), pyrnn's GGUF layout "rwkv4" (docs/FORMAT.md; llama.cpp
// has no RWKV-4, so the names follow its rwkv6 style). Equations: shared/reference/ARCHITECTURES.md
// §1.1.2 (pip att_one / att_seq / ffn_one / ffn_seq), computed in the same order.
//
// State per layer, floats:  [ att_x (C) | ffn_x (C) | aa (A) | bb (A) | pp (A) ]
//   att_x, ffn_x: the LayerNorm outputs of the previous token (token shift), zero at start;
//   aa, bb, pp:   the wkv numerator and denominator in scaled form: the real sums are aa·e^pp and
//                 bb·e^pp (the "max trick" keeps every exponent ≤ 0). Start: aa = bb = 0 and
//                 pp = −1e30 (pip's value; any very negative number gives identical results).
// Compared with pip's state list [att_x, aa, bb, pp, ffn_x] the per-layer order differs; only
// aa·e^pp and bb·e^pp are meaningful, so two states are equal when those are, not raw pp.
//
// The file stores time_decay raw (as the .pth and as rwkv6's time_mix_decay); w = −exp(time_decay)
// is computed here once at load, in fp32, as pip does at load. time_mix_lerp_* hold the .pth mixes μ
// (weight of the current token: x·μ + x_prev·(1−μ)).
#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "loader.h"
#include "ops.h"
#include "weights.h"

namespace pyrnn {

namespace {

// The hyperparameters and weights (weights.h, shared with cuda/rwkv4.cu) are a base: the code below
// reads C, A, layers, ... as members.
class rwkv4_model final : public model, private rwkv4_weights {
  public:
    explicit rwkv4_model(std::shared_ptr<const gguf_file> f) : model(std::move(f)), rwkv4_weights(*file_, weights_for::cpu) {}

    std::string arch() const override { return "rwkv4"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }
    void init_state(float* s) const override {
        for (int64_t l = 0; l < L; l++) {
            float* ls = s + l * layer_state();
            std::fill(ls, ls + 2 * C + 2 * A, 0.0f);      // att_x, ffn_x, aa, bb
            std::fill(ls + 2 * C + 2 * A, ls + 2 * C + 3 * A, -1e30f); // pp
        }
    }

    void forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const override;

  private:
    size_t layer_state() const { return size_t(2 * C + 3 * A); }
    void time_mix(const rwkv4_layer& ly, float* x, float* s, int64_t T) const;
    void channel_mix(const rwkv4_layer& ly, float* x, float* s, int64_t T) const;
};

// out[t] = xn[t]·μ + prev[t]·(1−μ), pip's "mix" token shift, for T rows of C.
void mix_rows(const float* xn, const float* prev, const float* mu, float* out, int64_t T, int64_t C) {
    for (int64_t t = 0; t < T; t++) {
        for (int64_t c = 0; c < C; c++) out[t * C + c] = xn[t * C + c] * mu[c] + prev[t * C + c] * (1.0f - mu[c]);
    }
}

// x [T][C]: residual stream, updated in place.
void rwkv4_model::time_mix(const rwkv4_layer& ly, float* x, float* s, int64_t T) const {
    float* att_x = s;          // (C)
    float* aa = s + 2 * C;     // (A)
    float* bb = aa + A;        // (A)
    float* pp = bb + A;        // (A)
    const int64_t TC = T * C, TA = T * A;
    std::vector<float> xn(TC), prev(TC), kx(TC), vx(TC), rx(TC), r(TA), k(TA), v(TA), out(TC);
    layer_norm_rows(x, ly.ln1_w, ly.ln1_b, xn.data(), T, C, eps);
    token_shift(xn.data(), prev.data(), att_x, T, C);
    mix_rows(xn.data(), prev.data(), ly.mix_k, kx.data(), T, C);
    mix_rows(xn.data(), prev.data(), ly.mix_v, vx.data(), T, C);
    mix_rows(xn.data(), prev.data(), ly.mix_r, rx.data(), T, C);
    matmul(ly.wr, rx.data(), r.data(), T);
    matmul(ly.wk, kx.data(), k.data(), T);
    matmul(ly.wv, vx.data(), v.data(), T);
    // The recurrence is per channel and per token; r·wkv overwrites r.
    for (int64_t t = 0; t < T; t++) {
        const float *kt = &k[t * A], *vt = &v[t * A];
        float* rt = &r[t * A];
        for (int64_t c = 0; c < A; c++) {
            // output: (aa·e^pp + e^(u+k)·v) / (bb·e^pp + e^(u+k)), every exponent shifted by their max
            float ww = ly.u[c] + kt[c];
            float p = std::max(pp[c], ww);
            float e1 = std::exp(pp[c] - p);
            float e2 = std::exp(ww - p);
            const float wkv = (e1 * aa[c] + e2 * vt[c]) / (e1 * bb[c] + e2);
            // state: decay the sums by e^w and add this token with weight e^k
            ww = ly.w[c] + pp[c];
            p = std::max(ww, kt[c]);
            e1 = std::exp(ww - p);
            e2 = std::exp(kt[c] - p);
            aa[c] = e1 * aa[c] + e2 * vt[c];
            bb[c] = e1 * bb[c] + e2;
            pp[c] = p;
            rt[c] = sigmoid(rt[c]) * wkv;
        }
    }
    matmul(ly.wo, r.data(), out.data(), T);
    for (int64_t i = 0; i < TC; i++) x[i] += out[i];
}

void rwkv4_model::channel_mix(const rwkv4_layer& ly, float* x, float* s, int64_t T) const {
    float* ffn_x = s + C;
    const int64_t TC = T * C;
    std::vector<float> xn(TC), prev(TC), kx(TC), rx(TC), r(TC), hidden(size_t(T * F)), out(TC);
    layer_norm_rows(x, ly.ln2_w, ly.ln2_b, xn.data(), T, C, eps);
    token_shift(xn.data(), prev.data(), ffn_x, T, C);
    mix_rows(xn.data(), prev.data(), ly.ffn_mix_k, kx.data(), T, C);
    mix_rows(xn.data(), prev.data(), ly.ffn_mix_r, rx.data(), T, C);
    matmul(ly.ffn_receptance, rx.data(), r.data(), T);
    matmul(ly.ffn_key, kx.data(), hidden.data(), T);
    for (float& e : hidden) e = e > 0.0f ? e * e : 0.0f; // relu²
    matmul(ly.ffn_value, hidden.data(), out.data(), T);
    for (int64_t i = 0; i < TC; i++) x[i] += sigmoid(r[i]) * out[i];
}

void rwkv4_model::forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const {
    constexpr size_t chunk = 64; // tokens whose activations are held at once
    for (size_t start = 0; start < n; start += chunk) {
        const int64_t T = int64_t(std::min(chunk, n - start));
        std::vector<float> x(size_t(T * C));
        for (int64_t t = 0; t < T; t++) {
            float* xt = &x[t * C];
            get_row(emb, tokens[start + t], xt);
            layer_norm(xt, ln0_w, ln0_b, xt, C, eps);
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
rwkv4_weights::rwkv4_weights(const gguf_file& f, weights_for use) {
    weight_loader w(f, "rwkv4", owned, use == weights_for::cpu ? &packs : nullptr);
    C = w.u32("embedding_length");
    L = w.u32("block_count");
    F = w.u32("feed_forward_length");
    eps = w.f32("attention.layer_norm_epsilon", 1e-5f);
    // A (attention width) is C in every released model; it is taken from the decay's length.
    const gguf_tensor* decay0 = f.find_tensor("blk.0.time_mix_decay.weight");
    A = decay0 ? decay0->ne[0] : C;
    if (A <= 0) {
        throw format_error("tensor \"blk.0.time_mix_decay.weight\" length: expected the attention width (> 0), "
                           "found " + std::to_string(A));
    }
    const gguf_tensor& emb_t = f.tensor("token_embd.weight");
    V = emb_t.n_dims >= 2 ? emb_t.ne[1] : 0;
    emb = w.embedding("token_embd.weight", V, C);
    ln0_w = w.vec("token_embd_norm.weight", C); // ln0, applied at run time (not folded into emb)
    ln0_b = w.vec("token_embd_norm.bias", C);
    ln_out_w = w.vec("output_norm.weight", C);
    ln_out_b = w.vec("output_norm.bias", C);
    head = w.mat("output.weight", V, C);
    for (int64_t i = 0; i < L; i++) {
        const std::string p = "blk." + std::to_string(i) + ".";
        rwkv4_layer ly;
        ly.ln1_w = w.vec(p + "attn_norm.weight", C);
        ly.ln1_b = w.vec(p + "attn_norm.bias", C);
        ly.ln2_w = w.vec(p + "attn_norm_2.weight", C);
        ly.ln2_b = w.vec(p + "attn_norm_2.bias", C);
        ly.mix_k = w.vec(p + "time_mix_lerp_k.weight", C);
        ly.mix_v = w.vec(p + "time_mix_lerp_v.weight", C);
        ly.mix_r = w.vec(p + "time_mix_lerp_r.weight", C);
        const float* decay = w.vec(p + "time_mix_decay.weight", A);
        std::vector<float> neg_exp(static_cast<size_t>(A)); // in fp32 from the stored value, as pip does at load
        for (int64_t c = 0; c < A; c++) neg_exp[c] = -std::exp(decay[c]);
        owned.push_back(std::move(neg_exp));
        ly.w = owned.back().data();
        ly.u = w.vec(p + "time_mix_first.weight", A);
        ly.wk = w.mat(p + "time_mix_key.weight", A, C);
        ly.wv = w.mat(p + "time_mix_value.weight", A, C);
        ly.wr = w.mat(p + "time_mix_receptance.weight", A, C);
        ly.wo = w.mat(p + "time_mix_output.weight", C, A);
        ly.ffn_mix_k = w.vec(p + "channel_mix_lerp_k.weight", C);
        ly.ffn_mix_r = w.vec(p + "channel_mix_lerp_r.weight", C);
        ly.ffn_key = w.mat(p + "channel_mix_key.weight", F, C);
        ly.ffn_value = w.mat(p + "channel_mix_value.weight", C, F);
        ly.ffn_receptance = w.mat(p + "channel_mix_receptance.weight", C, C);
        layers.push_back(ly);
    }
}

std::unique_ptr<model> load_rwkv4(std::shared_ptr<const gguf_file> f) {
    return std::make_unique<rwkv4_model>(std::move(f));
}

} // namespace pyrnn
