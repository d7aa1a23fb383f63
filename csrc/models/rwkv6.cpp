// rwkv6.cpp — RWKV-6 "Finch" (x060), llama.cpp's GGUF layout (architecture "rwkv6").
// Equations: shared/reference/ARCHITECTURES.md §1.3.2 (pip att_one_v6_0 / ffn_one_v6); layout §1.6.
//
// State per layer, floats:  [ att_x (C) | ffn_x (C) | S (H × N × N) ]
//   att_x, ffn_x: the LayerNorm outputs of the previous token (token shift), zero at start;
//   S[h][k][v]:   the wkv matrix of head h, key-major (pip's v6 orientation; v7 is value-major), zero
//                 at start. pip's state list maps as [i*3+0] → att_x, [i*3+2] → ffn_x, [i*3+1] → S.
#include <algorithm>
#include <deque>
#include <vector>

#include "loader.h"
#include "ops.h"
#include "weights.h"

namespace pyrnn {

namespace {

// The hyperparameters and weights (weights.h, shared with cuda/rwkv5_6.cu) are a base: the code below
// reads C, N, layers, ... as members.
class rwkv6_model final : public model, private rwkv6_weights {
  public:
    explicit rwkv6_model(std::shared_ptr<const gguf_file> f) : model(std::move(f)), rwkv6_weights(*file_, weights_for::cpu) {}

    std::string arch() const override { return "rwkv6"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }
    void init_state(float* s) const override { std::fill(s, s + state_size(), 0.0f); }

    void forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const override;

  private:
    size_t layer_state() const { return size_t(2 * C + H * N * N); }
    void time_mix(const rwkv6_layer& ly, float* x, float* s, int64_t T) const;
    void channel_mix(const rwkv6_layer& ly, float* x, float* s, int64_t T) const;
};

// x [T][C]: residual stream, updated in place.
void rwkv6_model::time_mix(const rwkv6_layer& ly, float* x, float* s, int64_t T) const {
    float* att_x = s;         // (C)
    float* S_all = s + 2 * C; // (H, N, N) key-major
    const int64_t TC = T * C;
    const int64_t Dm = ly.mix_w1.rows / 5;
    std::vector<float> xn(TC), sx(TC), xxx(TC), m(size_t(T * 5 * Dm)), mj(size_t(T * Dm)), lora(TC);
    std::vector<float> mix(5 * TC), r(TC), k(TC), v(TC), g(TC), wd(TC), y(TC);
    layer_norm_rows(x, ly.ln1_w, ly.ln1_b, xn.data(), T, C, eps);
    token_shift(xn.data(), sx.data(), att_x, T, C);
    for (int64_t i = 0; i < TC; i++) {
        sx[i] -= xn[i]; // sx = x_prev − x, as pip
        xxx[i] = xn[i] + sx[i] * ly.lerp_x[i % C];
    }
    // data-dependent mixes: m = tanh(xxx · w1), split in 5 blocks of Dm, each lifted back to C by w2[j]
    matmul(ly.mix_w1, xxx.data(), m.data(), T);
    for (float& e : m) e = std::tanh(e);
    for (int j = 0; j < 5; j++) {
        for (int64_t t = 0; t < T; t++) std::copy_n(&m[(t * 5 + j) * Dm], Dm, &mj[t * Dm]);
        matmul(ly.mix_w2[j], mj.data(), lora.data(), T);
        const float* lerp = ly.lerp + j * C;
        float* out = &mix[j * TC];
        for (int64_t t = 0; t < T; t++) {
            for (int64_t c = 0; c < C; c++) {
                const int64_t i = t * C + c;
                out[i] = xn[i] + sx[i] * (lerp[c] + lora[i]);
            }
        }
    }
    const float *xw = &mix[0], *xk = &mix[TC], *xv = &mix[2 * TC], *xr = &mix[3 * TC], *xg = &mix[4 * TC];
    matmul(ly.wr, xr, r.data(), T);
    matmul(ly.wk, xk, k.data(), T);
    matmul(ly.wv, xv, v.data(), T);
    matmul(ly.wg, xg, g.data(), T);
    for (float& e : g) e = e * sigmoid(e); // silu
    // per-token decay: w = exp(−exp(decay + tanh(xw · d1) · d2)), in (0, 1); exp(−exp(·)) underflows to an
    // exact 0 for large arguments (full forgetting), which the sequential update below handles as is.
    std::vector<float> dh(size_t(T * ly.decay_w1.rows));
    matmul(ly.decay_w1, xw, dh.data(), T);
    for (float& e : dh) e = std::tanh(e);
    matmul(ly.decay_w2, dh.data(), wd.data(), T);
    for (int64_t i = 0; i < TC; i++) wd[i] = std::exp(-std::exp(ly.decay[i % C] + wd[i]));

    // Sequential recurrence even in prefill: the factorised chunk form overflows fp32 for RWKV-6
    // decays (§1.3.3). Per head, key i, value j:  y[j] = Σ_i r[i]·(u[i]·k[i]·v[j] + S[i][j]);
    // S[i][j] ← k[i]·v[j] + w[i]·S[i][j].
    std::vector<float> yh(N);
    for (int64_t t = 0; t < T; t++) {
        const float *rt = &r[t * C], *kt = &k[t * C], *vt = &v[t * C], *wt = &wd[t * C];
        float* yt = &y[t * C];
        for (int64_t h = 0; h < H; h++) {
            float* S = S_all + h * N * N;
            const int64_t o = h * N;
            std::fill(yh.begin(), yh.end(), 0.0f);
            for (int64_t i = 0; i < N; i++) { // row i: key channel
                float* Si = S + i * N;
                const float ki = kt[o + i], ri = rt[o + i], ui = ly.first[o + i], wi = wt[o + i];
                for (int64_t j = 0; j < N; j++) {
                    const float kv = ki * vt[o + j];
                    yh[j] += ri * (ui * kv + Si[j]);
                    Si[j] = kv + wi * Si[j];
                }
            }
            std::copy(yh.begin(), yh.end(), yt + o);
        }
        group_norm(yt, ly.lnx_w, ly.lnx_b, yt, C, H, 64e-5f);
        for (int64_t c = 0; c < C; c++) yt[c] *= g[t * C + c];
    }
    std::vector<float> out(TC);
    matmul(ly.wo, y.data(), out.data(), T);
    for (int64_t i = 0; i < TC; i++) x[i] += out[i];
}

void rwkv6_model::channel_mix(const rwkv6_layer& ly, float* x, float* s, int64_t T) const {
    float* ffn_x = s + C;
    const int64_t TC = T * C;
    std::vector<float> xn(TC), sx(TC), xk(TC), xr(TC), hidden(size_t(T * F)), r(TC), out(TC);
    layer_norm_rows(x, ly.ln2_w, ly.ln2_b, xn.data(), T, C, eps);
    token_shift(xn.data(), sx.data(), ffn_x, T, C);
    for (int64_t t = 0; t < T; t++) {
        for (int64_t c = 0; c < C; c++) {
            const int64_t i = t * C + c;
            const float d = sx[i] - xn[i];
            xk[i] = xn[i] + d * ly.ffn_lerp_k[c];
            xr[i] = xn[i] + d * ly.ffn_lerp_r[c];
        }
    }
    matmul(ly.ffn_key, xk.data(), hidden.data(), T);
    for (float& e : hidden) e = e > 0.0f ? e * e : 0.0f; // relu²
    matmul(ly.ffn_value, hidden.data(), out.data(), T);
    matmul(ly.ffn_receptance, xr.data(), r.data(), T);
    for (int64_t i = 0; i < TC; i++) x[i] += sigmoid(r[i]) * out[i];
}

void rwkv6_model::forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const {
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
            // the other half of llama.cpp's rescaling: weights were divided when the file was made
            if (rescale_every > 0 && (l + 1) % rescale_every == 0) {
                for (float& e : x) e *= 0.5f;
            }
        }
        chunk_logits(x.data(), T, C, start, n, all_logits, head, logits,
                     [&](const float* in, float* out, int64_t rows) { layer_norm_rows(in, ln_out_w, ln_out_b, out, rows, C, eps); });
    }
}

} // namespace

// The tensors of the file, by name and shape (ggml order), checked by weight_loader.
rwkv6_weights::rwkv6_weights(const gguf_file& f, weights_for use) {
    weight_loader w(f, "rwkv6", owned, use == weights_for::cpu ? &packs : nullptr);
    C = w.u32("embedding_length");
    L = w.u32("block_count");
    N = w.u32("wkv.head_size");
    F = w.u32("feed_forward_length");
    eps = w.f32("attention.layer_norm_epsilon", 1e-5f);
    rescale_every = w.u32("rescale_every_n_layers", 0);
    if (N == 0 || C % N != 0) {
        throw format_error("rwkv6.wkv.head_size: expected a divisor of embedding_length " + std::to_string(C) +
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
        rwkv6_layer ly;
        ly.ln1_w = w.vec(p + "attn_norm.weight", C);
        ly.ln1_b = w.vec(p + "attn_norm.bias", C);
        ly.ln2_w = w.vec(p + "attn_norm_2.weight", C);
        ly.ln2_b = w.vec(p + "attn_norm_2.bias", C);
        ly.lerp_x = w.vec(p + "time_mix_lerp_x.weight", C);
        if (w.has(p + "time_mix_lerp_fused.weight")) {
            ly.lerp = w.floats(p + "time_mix_lerp_fused.weight", {C, 1, 1, 5});
        } else { // older llama.cpp files: five separate (C,1,1) mixes
            std::vector<float> lerp(size_t(5 * C));
            const char* names[5] = {"w", "k", "v", "r", "g"};
            for (int j = 0; j < 5; j++) {
                const float* v = w.vec(p + "time_mix_lerp_" + names[j] + ".weight", C);
                std::copy(v, v + C, lerp.begin() + j * C);
            }
            owned.push_back(std::move(lerp));
            ly.lerp = owned.back().data();
        }
        // LoRA sizes come from the shapes; time_mix_extra_dim / time_decay_extra_dim are not trusted
        // (llama.cpp's converter hard-codes them from C rather than reading the checkpoint).
        auto ne1 = [&](const std::string& name) {
            const gguf_tensor* t = f.find_tensor(name);
            if (!t) throw format_error("tensor \"" + name + "\": expected in a rwkv6 model, found nothing");
            return t->n_dims >= 2 ? t->ne[1] : int64_t(0);
        };
        const int64_t five_dm = ne1(p + "time_mix_w1.weight");
        if (five_dm == 0 || five_dm % 5 != 0) {
            throw format_error("tensor \"" + p + "time_mix_w1.weight\" ne[1]: expected 5 × time_mix_extra_dim, found " +
                               std::to_string(five_dm));
        }
        const int64_t Dm = five_dm / 5;
        ly.mix_w1 = w.mat(p + "time_mix_w1.weight", 5 * Dm, C);
        const gguf_tensor& w2 = w.tensor(p + "time_mix_w2.weight", {Dm, C, 5});
        if (kernels().gemm[w2.type] == nullptr) {
            throw format_error("tensor \"" + w2.name + "\" type: expected a type pyrnn computes with, found " +
                               find_type(w2.type)->name);
        }
        for (int j = 0; j < 5; j++) { // ne (Dm, C, 5): five row-major (C, Dm) matrices one after another
            const auto* base = static_cast<const uint8_t*>(w2.data) + uint64_t(j) * C * row_bytes(w2.type, Dm);
            ly.mix_w2[j] = matrix{base, w2.type, C, Dm};
        }
        ly.decay = w.vec(p + "time_mix_decay.weight", C);
        const int64_t Dd = ne1(p + "time_mix_decay_w1.weight");
        ly.decay_w1 = w.mat(p + "time_mix_decay_w1.weight", Dd, C);
        ly.decay_w2 = w.mat(p + "time_mix_decay_w2.weight", C, Dd);
        ly.first = w.floats(p + "time_mix_first.weight", {N, H});
        ly.wr = w.mat(p + "time_mix_receptance.weight", C, C);
        ly.wk = w.mat(p + "time_mix_key.weight", C, C);
        ly.wv = w.mat(p + "time_mix_value.weight", C, C);
        ly.wg = w.mat(p + "time_mix_gate.weight", C, C);
        ly.wo = w.mat(p + "time_mix_output.weight", C, C);
        ly.lnx_w = w.vec(p + "time_mix_ln.weight", C);
        ly.lnx_b = w.vec(p + "time_mix_ln.bias", C);
        ly.ffn_lerp_k = w.vec(p + "channel_mix_lerp_k.weight", C);
        ly.ffn_lerp_r = w.vec(p + "channel_mix_lerp_r.weight", C);
        ly.ffn_key = w.mat(p + "channel_mix_key.weight", F, C);
        ly.ffn_value = w.mat(p + "channel_mix_value.weight", C, F);
        ly.ffn_receptance = w.mat(p + "channel_mix_receptance.weight", C, C);
        layers.push_back(ly);
    }
}

std::unique_ptr<model> load_rwkv6(std::shared_ptr<const gguf_file> f) {
    return std::make_unique<rwkv6_model>(std::move(f));
}

} // namespace pyrnn
