// rwkv7.cpp — RWKV-7 "Goose" (x070), llama.cpp's GGUF layout (architecture "rwkv7").
// Equations: shared/reference/ARCHITECTURES.md §1.4.2 (pip RWKV_x070_TMix_one / CMix_one).
//
// State per layer, floats:  [ att_x (C) | ffn_x (C) | S (H × N × N) ]
//   att_x, ffn_x: the LayerNorm outputs of the previous token (token shift), zero at start;
//   S[h][v][k]:   the wkv matrix of head h, value-major (pip's v7 orientation), zero at start.
#include <algorithm>
#include <functional>
#include <vector>

#include "loader.h"
#include "ops.h"
#include "weights.h"

namespace pyrnn {

namespace {

// The hyperparameters and weights (weights.h, shared with cuda/rwkv7.cu) are a base: the code below
// reads C, N, layers, ... as members.
class rwkv7_model final : public model, private rwkv7_weights {
  public:
    explicit rwkv7_model(std::shared_ptr<const gguf_file> f) : model(std::move(f)), rwkv7_weights(*file_, weights_for::cpu) {}

    std::string arch() const override { return "rwkv7"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }
    void init_state(float* s) const override { std::fill(s, s + state_size(), 0.0f); }

    void forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const override;

  private:
    size_t layer_state() const { return size_t(2 * C + H * N * N); }
    void time_mix(const rwkv7_layer& ly, bool first_layer, float* x, float* v_first, float* s, int64_t T) const;
    void channel_mix(const rwkv7_layer& ly, float* x, float* s, int64_t T) const;
};

// x [T][C]: residual stream, updated. v_first [T][C]: written by layer 0, read by the others.
void rwkv7_model::time_mix(const rwkv7_layer& ly, bool first_layer, float* x, float* v_first, float* s,
                           int64_t T) const {
    float* att_x = s;        // (C)
    float* S_all = s + 2 * C; // (H, N, N)
    const int64_t TC = T * C;
    std::vector<float> xn(TC), prev(TC), mix(6 * TC), r(TC), k(TC), v(TC), wl(TC), a(TC), g(TC), vg(TC), y(TC);
    for_tokens(T, [&](int64_t t) { layer_norm(x + t * C, ly.ln1_w, ly.ln1_b, &xn[t * C], C, eps); });
    token_shift(xn.data(), prev.data(), att_x, T, C);
    // mix[j][t][c] = x + (x_prev − x) · lerp[j]   for j = r, w, k, v, a, g
    for_tokens(T, [&](int64_t t) {
        for (int j = 0; j < 6; j++) {
            for (int64_t c = 0; c < C; c++) {
                const float xc = xn[t * C + c];
                mix[j * TC + t * C + c] = xc + (prev[t * C + c] - xc) * ly.lerp[j * C + c];
            }
        }
    });
    const float *xr = &mix[0], *xw = &mix[TC], *xk = &mix[2 * TC], *xv = &mix[3 * TC], *xa = &mix[4 * TC],
                *xg = &mix[5 * TC];
    matmul(ly.wr, xr, r.data(), T);
    matmul(ly.wk, xk, k.data(), T);
    matmul(ly.wv, xv, v.data(), T);
    const kernel_table& kn = kernels();
    auto lora = [&](const matrix& down, const matrix& up, const float* in, float* out, auto act) {
        std::vector<float> h(size_t(T * down.rows));
        matmul(down, in, h.data(), T);
        act(h.data(), int64_t(h.size()));
        matmul(up, h.data(), out, T);
    };
    auto identity = [](float*, int64_t) {};
    auto tanh_f = [](float* h, int64_t n) {
        for (int64_t i = 0; i < n; i++) h[i] = std::tanh(h[i]);
    };
    auto sigmoid_f = [&](float* h, int64_t n) { kn.sigmoid(h, h, n); };
    lora(ly.w1, ly.w2, xw, wl.data(), tanh_f);
    lora(ly.a1, ly.a2, xa, a.data(), identity);
    lora(ly.g1, ly.g2, xg, g.data(), sigmoid_f);
    if (!first_layer) lora(ly.v1, ly.v2, xv, vg.data(), identity);

    // Per token, elementwise: a, the decay w, the normalised key kk, the adjusted k, the mixed v.
    std::vector<float> kk(TC), kka(TC), w(TC);
    for_tokens(T, [&](int64_t t) {
        float *kt = &k[t * C], *vt = &v[t * C], *at = &a[t * C];
        float *kkt = &kk[t * C], *wt = &w[t * C], *wlt = &wl[t * C];
        for (int64_t c = 0; c < C; c++) {
            at[c] += ly.a0[c];
            wlt[c] += ly.w0[c];
            kkt[c] = kt[c] * ly.k_k[c];
        }
        kn.sigmoid(at, at, C); // a = σ(a0 + a)
        kn.sigmoid(wlt, wt, C); // w = exp(−0.606531·σ(w0 + wl))
        for (int64_t c = 0; c < C; c++) wt[c] *= -0.606531f;
        kn.exp(wt, wt, C);
        for (int64_t h = 0; h < H; h++) { // kk ← per-head L2 normalise (eps 1e-12, as F.normalize)
            float ss = 0.0f;
            for (int64_t i = 0; i < N; i++) ss += kkt[h * N + i] * kkt[h * N + i];
            const float inv = 1.0f / std::max(std::sqrt(ss), 1e-12f);
            for (int64_t i = 0; i < N; i++) kkt[h * N + i] *= inv;
        }
        for (int64_t c = 0; c < C; c++) {
            kka[t * C + c] = kkt[c] * at[c];
            kt[c] = kt[c] * (1.0f + (at[c] - 1.0f) * ly.k_a[c]);
        }
        if (first_layer) {
            for (int64_t c = 0; c < C; c++) v_first[t * C + c] = vt[c];
        } else {
            float* vgt = &vg[t * C];
            for (int64_t c = 0; c < C; c++) vgt[c] += ly.v0[c];
            kn.sigmoid(vgt, vgt, C);
            for (int64_t c = 0; c < C; c++) vt[c] += (v_first[t * C + c] - vt[c]) * vgt[c];
        }
    });
    // The recurrence, head by head over the chunk (heads are independent: split over the threads; a
    // head's state, N² floats, stays in cache). Per head, S[v][k]:
    //   S ← S·diag(w) + (S·(−kk)) ⊗ (kk⊙a) + v ⊗ k ;  y = S·r
    // Sequential, not the chunked WY form: on a CPU that form saves no multiply-adds at N = 64
    // (docs/PERFORMANCE.md, prefill). One head over the chunk is the kernel table's wkv7.
    const auto wkv7 = kernels().wkv7;
    parallel_for(H, [&](int64_t h0, int64_t h1) {
        for (int64_t h = h0; h < h1; h++) {
            const int64_t o = h * N;
            wkv7(S_all + h * N * N, N, &r[o], &w[o], &k[o], &v[o], &kk[o], &kka[o], &y[o], C, T);
        }
    });
    for_tokens(T, [&](int64_t t) {
        const float *rt = &r[t * C], *kt = &k[t * C], *vt = &v[t * C];
        float* yt = &y[t * C];
        group_norm(yt, ly.lnx_w, ly.lnx_b, yt, C, H, 64e-5f);
        for (int64_t h = 0; h < H; h++) { // bonus: (Σ r·k·r_k) v, per head
            float b = 0.0f;
            for (int64_t i = 0; i < N; i++) b += rt[h * N + i] * kt[h * N + i] * ly.r_k[h * N + i];
            for (int64_t i = 0; i < N; i++) yt[h * N + i] += b * vt[h * N + i];
        }
        for (int64_t c = 0; c < C; c++) yt[c] *= g[t * C + c];
    });
    std::vector<float> out(TC);
    matmul(ly.wo, y.data(), out.data(), T);
    for (int64_t i = 0; i < TC; i++) x[i] += out[i];
}

void rwkv7_model::channel_mix(const rwkv7_layer& ly, float* x, float* s, int64_t T) const {
    float* ffn_x = s + C;
    const int64_t TC = T * C;
    std::vector<float> xn(TC), prev(TC), hidden(size_t(T * F)), out(TC);
    for_tokens(T, [&](int64_t t) { layer_norm(x + t * C, ly.ln2_w, ly.ln2_b, &xn[t * C], C, eps); });
    token_shift(xn.data(), prev.data(), ffn_x, T, C);
    for_tokens(T, [&](int64_t t) {
        for (int64_t c = 0; c < C; c++) {
            const float xc = xn[t * C + c];
            prev[t * C + c] = xc + (prev[t * C + c] - xc) * ly.ffn_lerp_k[c];
        }
    });
    matmul(ly.ffn_key, prev.data(), hidden.data(), T);
    for_tokens(T, [&](int64_t t) {
        for (int64_t i = t * F; i < (t + 1) * F; i++) hidden[i] = hidden[i] > 0.0f ? hidden[i] * hidden[i] : 0.0f; // relu²
    });
    matmul(ly.ffn_value, hidden.data(), out.data(), T);
    for (int64_t i = 0; i < TC; i++) x[i] += out[i];
}

void rwkv7_model::forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const {
    constexpr size_t chunk = 64; // tokens whose activations are held at once
    for (size_t start = 0; start < n; start += chunk) {
        const int64_t T = int64_t(std::min(chunk, n - start));
        std::vector<float> x(size_t(T * C)), v_first(size_t(T * C));
        for (int64_t t = 0; t < T; t++) {
            float* xt = &x[t * C];
            get_row(emb, tokens[start + t], xt);
            if (ln0_w) layer_norm(xt, ln0_w, ln0_b, xt, C, eps);
        }
        for (int64_t l = 0; l < L; l++) {
            float* s = state + l * layer_state();
            time_mix(layers[l], l == 0, x.data(), v_first.data(), s, T);
            channel_mix(layers[l], x.data(), s, T);
        }
        chunk_logits(x.data(), T, C, start, n, all_logits, head, logits,
                     [&](const float* in, float* out, int64_t rows) { layer_norm_rows(in, ln_out_w, ln_out_b, out, rows, C, eps); });
    }
}

} // namespace

// The tensors of the file, by name and shape (ggml order), checked by weight_loader.
rwkv7_weights::rwkv7_weights(const gguf_file& f, weights_for use,
                             const std::function<void(const rwkv7_weights&)>& check_hparams) {
    weight_loader w(f, "rwkv7", owned, use == weights_for::cpu ? &packs : nullptr);
    C = w.u32("embedding_length");
    L = w.u32("block_count");
    N = w.u32("wkv.head_size");
    F = w.u32("feed_forward_length");
    eps = w.f32("attention.layer_norm_epsilon", 1e-5f);
    if (check_hparams) check_hparams(*this);
    if (N == 0 || C % N != 0) {
        throw format_error("rwkv7.wkv.head_size: expected a divisor of embedding_length " + std::to_string(C) +
                           ", found " + std::to_string(N));
    }
    H = C / N;
    const gguf_tensor& emb_t = f.tensor("token_embd.weight");
    V = emb_t.n_dims >= 2 ? emb_t.ne[1] : 0;
    emb = w.embedding("token_embd.weight", V, C);
    if (w.has("token_embd_norm.weight")) { // ln0, applied at run time as llama.cpp does
        ln0_w = w.vec("token_embd_norm.weight", C);
        ln0_b = w.vec("token_embd_norm.bias", C);
    }
    ln_out_w = w.vec("output_norm.weight", C);
    ln_out_b = w.vec("output_norm.bias", C);
    head = w.mat("output.weight", V, C);
    for (int64_t i = 0; i < L; i++) {
        const std::string p = "blk." + std::to_string(i) + ".";
        rwkv7_layer ly;
        ly.ln1_w = w.vec(p + "attn_norm.weight", C);
        ly.ln1_b = w.vec(p + "attn_norm.bias", C);
        ly.ln2_w = w.vec(p + "attn_norm_2.weight", C);
        ly.ln2_b = w.vec(p + "attn_norm_2.bias", C);
        ly.lerp = w.floats(p + "time_mix_lerp_fused.weight", {C, 1, 1, 6});
        ly.w0 = w.vec(p + "time_mix_w0.weight", C);
        ly.a0 = w.vec(p + "time_mix_a0.weight", C);
        // LoRA ranks come from the shapes (the metadata ranks are only a cross-check; llama.cpp writes
        // placeholders of another rank for layer 0's unused v1/v2).
        auto lora = [&](const std::string& name, matrix& down, matrix& up) {
            const gguf_tensor* t = f.find_tensor(p + name + "1.weight");
            const int64_t D = t && t->n_dims >= 2 ? t->ne[1] : 0;
            down = w.mat(p + name + "1.weight", D, C);
            up = w.mat(p + name + "2.weight", C, D);
        };
        lora("time_mix_w", ly.w1, ly.w2);
        lora("time_mix_a", ly.a1, ly.a2);
        lora("time_mix_g", ly.g1, ly.g2);
        if (i > 0) {
            ly.v0 = w.vec(p + "time_mix_v0.weight", C);
            lora("time_mix_v", ly.v1, ly.v2);
        }
        ly.k_k = w.vec(p + "time_mix_k_k.weight", C);
        ly.k_a = w.vec(p + "time_mix_k_a.weight", C);
        ly.r_k = w.vec(p + "time_mix_r_k.weight", C);
        ly.wr = w.mat(p + "time_mix_receptance.weight", C, C);
        ly.wk = w.mat(p + "time_mix_key.weight", C, C);
        ly.wv = w.mat(p + "time_mix_value.weight", C, C);
        ly.wo = w.mat(p + "time_mix_output.weight", C, C);
        ly.lnx_w = w.vec(p + "time_mix_ln.weight", C);
        ly.lnx_b = w.vec(p + "time_mix_ln.bias", C);
        ly.ffn_lerp_k = w.vec(p + "channel_mix_lerp_k.weight", C);
        ly.ffn_key = w.mat(p + "channel_mix_key.weight", F, C);
        ly.ffn_value = w.mat(p + "channel_mix_value.weight", C, F);
        layers.push_back(ly);
    }
}

std::unique_ptr<model> load_rwkv7(std::shared_ptr<const gguf_file> f) {
    return std::make_unique<rwkv7_model>(std::move(f));
}

} // namespace pyrnn
