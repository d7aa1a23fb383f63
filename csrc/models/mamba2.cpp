// mamba2.cpp — Mamba-2 (SSD), llama.cpp's GGUF layout (architecture "mamba2").
// Equations: shared/reference/ARCHITECTURES.md §2.2.2 (state-spaces Mamba2.step, non-Triton branch,
// with the group mapping of selective_state_update_ref and the grouped gated RMSNorm of
// mamba2.py); the GGUF layout is §2.3.
//
// State per layer, floats:  [ conv (Q × (K−1)) | ssm (H × P × N) ]
//   D = ssm.inner_size (d_inner = d_ssm), N = ssm.state_size, G = ssm.group_count,
//   H = ssm.time_step_rank (the head count, in llama.cpp's use of that key), P = D / H (head dim),
//   Q = D + 2·G·N (the conv width: x, B and C are convolved together), K = ssm.conv_kernel.
//   conv[c][j]: the pre-convolution xBC inputs of channel c for the last K−1 tokens, oldest first;
//   ssm[h][p][n]: head h's state, as the reference's ssm_state (nheads, headdim, d_state).
//   All zeros at the start.
//
// Groups: head h reads B and C of group h / (H/G) (contiguous heads share a group), and the gated
// RMSNorm normalises each group of D/G channels separately — the official state-spaces behaviour
// (mamba2.py, transformers ≥ 5), not the whole-width norm of older transformers (§5 #8).
#include <algorithm>
#include <deque>
#include <vector>

#include "loader.h"
#include "ops.h"
#include "ssm_ops.h"
#include "weights.h"

namespace pyrnn {

namespace {

// The hyperparameters and weights (weights.h, shared with cuda/mamba2.cu) are a base: the code below
// reads C, D, layers, ... as members.
class mamba2_model final : public model, private mamba2_weights {
  public:
    explicit mamba2_model(std::shared_ptr<const gguf_file> f) : model(std::move(f)), mamba2_weights(*file_, weights_for::cpu) {}

    std::string arch() const override { return "mamba2"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }
    void init_state(float* s) const override { std::fill(s, s + state_size(), 0.0f); }

    void forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const override;

  private:
    size_t layer_state() const { return size_t(Q * (K - 1) + H * P * N); }
    void mixer(const mamba2_layer& ly, float* x, float* s, int64_t T) const;
};

// x [T][C]: residual stream, updated in place: x += mixer(RMSNorm(x)).
void mamba2_model::mixer(const mamba2_layer& ly, float* x, float* s, int64_t T) const {
    float* conv_state = s;             // (Q, K−1)
    float* ssm_state = s + Q * (K - 1); // (H, P, N)
    const int64_t W = 2 * D + 2 * G * N + H; // in_proj width
    const int64_t heads_per_group = H / G, group_size = D / G;
    std::vector<float> xn(size_t(T * C)), zxbcdt(size_t(T * W)), xbc(size_t(T * Q)), dt(size_t(T * H)),
        y(size_t(T * D)), out(size_t(T * C));
    rms_norm_rows(x, ly.norm_w, xn.data(), T, C, eps);
    matmul(ly.in_proj, xn.data(), zxbcdt.data(), T);
    const kernel_table& k = kernels();
    ssm::causal_conv(zxbcdt.data() + D, W, ly.conv_w, ly.conv_b, conv_state, xbc.data(), T, Q, K);
    k.silu(xbc.data(), xbc.data(), T * Q);
    for (int64_t t = 0; t < T; t++) {
        for (int64_t h = 0; h < H; h++) dt[t * H + h] = zxbcdt[t * W + D + Q + h] + ly.dt_b[h];
    }
    k.softplus(dt.data(), dt.data(), T * H);
    // The scan, head by head (heads are independent: split over the threads; one head's state, P·N
    // floats, stays in cache over the chunk):
    //   S ← exp(dt·A)·S + x ⊗ (dt·B) ;  y = S·C + D·x   (S: P × N)
    // Sequential, not SSD's chunked form: on a CPU that form costs the same 2·P·N multiply-adds per
    // token and head plus its T×T terms (docs/PERFORMANCE.md, prefill).
    const auto dot = k.dot_f32;
    parallel_for(H, [&](int64_t h0, int64_t h1) {
        std::vector<float> dtB(static_cast<size_t>(N));
        for (int64_t h = h0; h < h1; h++) {
            float* S = ssm_state + h * P * N;
            const int64_t g = h / heads_per_group;
            for (int64_t t = 0; t < T; t++) {
                const float* xt = &xbc[t * Q];
                const float *xh = xt + h * P, *B = xt + D + g * N, *Cm = xt + D + G * N + g * N;
                const float dth = dt[t * H + h], dA = std::exp(dth * ly.A[h]);
                for (int64_t k = 0; k < N; k++) dtB[k] = dth * B[k];
                for (int64_t p = 0; p < P; p++) {
                    float* Sp = S + p * N;
                    const float xp = xh[p];
                    for (int64_t k = 0; k < N; k++) Sp[k] = Sp[k] * dA + dtB[k] * xp;
                    y[t * D + h * P + p] = dot(Sp, Cm, N) + ly.Dskip[h] * xp;
                }
            }
        }
    });
    // Gated RMSNorm, norm after gate: y ← y·silu(z), then RMS-normalise each group of D/G channels.
    std::vector<float> gate(static_cast<size_t>(D)); // silu(z) of one token
    for (int64_t t = 0; t < T; t++) {
        float* yt = &y[t * D];
        k.silu(&zxbcdt[t * W], gate.data(), D);
        for (int64_t i = 0; i < D; i++) yt[i] *= gate[i];
        for (int64_t g = 0; g < G; g++) {
            const int64_t o = g * group_size;
            rms_norm_rows(yt + o, ly.gnorm + o, yt + o, 1, group_size, eps);
        }
    }
    matmul(ly.out_proj, y.data(), out.data(), T);
    for (int64_t i = 0; i < T * C; i++) x[i] += out[i];
}

void mamba2_model::forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const {
    constexpr size_t chunk = 64; // tokens whose activations are held at once
    for (size_t start = 0; start < n; start += chunk) {
        const int64_t T = int64_t(std::min(chunk, n - start));
        std::vector<float> x(size_t(T * C));
        for (int64_t t = 0; t < T; t++) get_row(emb, tokens[start + t], &x[t * C]);
        for (int64_t l = 0; l < L; l++) mixer(layers[l], x.data(), state + l * layer_state(), T);
        chunk_logits(x.data(), T, C, start, n, all_logits, head, logits,
                     [&](const float* in, float* out, int64_t rows) { rms_norm_rows(in, norm_f, out, rows, C, eps); });
    }
}

} // namespace

// The tensors of the file, by name and shape (ggml order), checked by weight_loader.
mamba2_weights::mamba2_weights(const gguf_file& f, weights_for use) {
    weight_loader w(f, "mamba2", owned, use == weights_for::cpu ? &packs : nullptr);
    C = w.u32("embedding_length");
    L = w.u32("block_count");
    K = w.u32("ssm.conv_kernel");
    D = w.u32("ssm.inner_size");
    N = w.u32("ssm.state_size");
    H = w.u32("ssm.time_step_rank");
    G = w.u32("ssm.group_count");
    eps = w.f32("attention.layer_norm_rms_epsilon", 1e-5f);
    if (K < 1) throw format_error("mamba2.ssm.conv_kernel: expected at least 1, found 0");
    if (H == 0 || D % H != 0) {
        throw format_error("mamba2.ssm.time_step_rank (heads): expected a divisor of ssm.inner_size " +
                           std::to_string(D) + ", found " + std::to_string(H));
    }
    if (G == 0 || H % G != 0) {
        throw format_error("mamba2.ssm.group_count: expected a divisor of the head count " + std::to_string(H) +
                           ", found " + std::to_string(G));
    }
    P = D / H;
    Q = D + 2 * G * N;
    const gguf_tensor& emb_t = f.tensor("token_embd.weight");
    V = emb_t.n_dims >= 2 ? emb_t.ne[1] : 0;
    emb = w.embedding("token_embd.weight", V, C);
    norm_f = w.vec("output_norm.weight", C);
    // tied embeddings: llama.cpp omits output.weight when it equals token_embd.weight
    head = w.has("output.weight") ? w.mat("output.weight", V, C) : w.mat("token_embd.weight", V, C);
    for (int64_t i = 0; i < L; i++) {
        const std::string p = "blk." + std::to_string(i) + ".";
        mamba2_layer ly;
        ly.norm_w = w.vec(p + "attn_norm.weight", C);
        ly.in_proj = w.mat(p + "ssm_in.weight", 2 * D + 2 * G * N + H, C);
        ly.conv_w = w.floats(p + "ssm_conv1d.weight", {K, Q});
        ly.conv_b = w.vec(p + "ssm_conv1d.bias", Q);
        ly.dt_b = w.vec(p + "ssm_dt.bias", H);
        ly.A = w.floats(p + "ssm_a", {1, H});
        ly.Dskip = w.floats(p + "ssm_d", {1, H});
        ly.gnorm = w.floats(p + "ssm_norm.weight", {D / G, G});
        ly.out_proj = w.mat(p + "ssm_out.weight", C, D);
        layers.push_back(ly);
    }
}

std::unique_ptr<model> load_mamba2(std::shared_ptr<const gguf_file> f) {
    return std::make_unique<mamba2_model>(std::move(f));
}

} // namespace pyrnn
