// mamba.cpp — Mamba-1 (selective SSM "S6"), llama.cpp's GGUF layout (architecture "mamba").
// Equations: shared/reference/ARCHITECTURES.md §2.1.3 (state-spaces Mamba.step, non-Triton branch)
// and §2.1.4 (selective_scan_ref); the GGUF layout is §2.3.
//
// State per layer, floats:  [ conv (D × (K−1)) | ssm (D × N) ]
//   D = ssm.inner_size (d_inner), K = ssm.conv_kernel, N = ssm.state_size.
//   conv[c][j]: the pre-convolution inputs x of channel c for the last K−1 tokens, oldest first
//               (the reference keeps K columns; the oldest is rolled out before use, §5 #9);
//   ssm[c][n]:  the selective-scan state h, as the reference's ssm_state (D, N).
//   All zeros at the start.
#include <algorithm>
#include <vector>

#include "loader.h"
#include "ops.h"
#include "ssm_ops.h"
#include "weights.h"

namespace pyrnn {

namespace {

// The hyperparameters and weights (weights.h, shared with cuda/mamba.cu) are a base: the code below
// reads C, D, layers, ... as members.
class mamba_model final : public model, private mamba_weights {
  public:
    explicit mamba_model(std::shared_ptr<const gguf_file> f) : model(std::move(f)), mamba_weights(*file_, weights_for::cpu) {}

    std::string arch() const override { return "mamba"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }
    void init_state(float* s) const override { std::fill(s, s + state_size(), 0.0f); }

    void forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const override;

  private:
    size_t layer_state() const { return size_t(D * (K - 1) + D * N); }
    void mixer(const mamba_layer& ly, float* x, float* s, int64_t T) const;
};

// x [T][C]: residual stream, updated in place: x += mixer(RMSNorm(x)).
void mamba_model::mixer(const mamba_layer& ly, float* x, float* s, int64_t T) const {
    float* conv_state = s;             // (D, K−1)
    float* ssm_state = s + D * (K - 1); // (D, N)
    const int64_t P = R + 2 * N;        // x_proj width
    std::vector<float> xn(size_t(T * C)), xz(size_t(T * 2 * D)), u(size_t(T * D)), xdbl(size_t(T * P)),
        dt_in(size_t(T * R)), dt(size_t(T * D)), y(size_t(T * D)), out(size_t(T * C));
    for_tokens(T, [&](int64_t t) { rms_norm(x + t * C, ly.norm_w, &xn[t * C], C, eps); });
    matmul(ly.in_proj, xn.data(), xz.data(), T);
    // u = silu(conv(x part of xz)); the z part gates the output below
    const kernel_table& k = kernels();
    ssm::causal_conv(xz.data(), 2 * D, ly.conv_w, ly.conv_b, conv_state, u.data(), T, D, K);
    for_tokens(T, [&](int64_t t) { k.silu(&u[t * D], &u[t * D], D); });
    matmul(ly.x_proj, u.data(), xdbl.data(), T);
    for (int64_t t = 0; t < T; t++) std::copy_n(&xdbl[t * P], R, &dt_in[t * R]); // matmul wants contiguous rows
    matmul(ly.dt_proj, dt_in.data(), dt.data(), T);
    std::vector<float> gate(size_t(T * D)); // silu(z)
    for_tokens(T, [&](int64_t t) {
        for (int64_t c = 0; c < D; c++) dt[t * D + c] += ly.dt_b[c];
        k.softplus(&dt[t * D], &dt[t * D], D);
        k.silu(&xz[t * 2 * D + D], &gate[t * D], D);
    });
    // The selective scan (kernels.h ssm_scan), channel by channel so that one channel's state stays in
    // registers (channels are independent: split over the threads); then the skip and the gate:
    //   h ← exp(dt·A) ⊙ h + (dt·B)·u ;  y = h·C + D·u ;  y ← y · silu(z)
    const auto scan = k.ssm_scan;
    parallel_for(D, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; c++) {
            scan(ssm_state + c * N, ly.A + c * N, N, &dt[c], &u[c], &y[c], D, &xdbl[R], P, T);
            for (int64_t t = 0; t < T; t++) {
                const float uc = u[t * D + c];
                y[t * D + c] = (y[t * D + c] + ly.Dskip[c] * uc) * gate[t * D + c];
            }
        }
    });
    matmul(ly.out_proj, y.data(), out.data(), T);
    for (int64_t i = 0; i < T * C; i++) x[i] += out[i];
}

void mamba_model::forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const {
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
mamba_weights::mamba_weights(const gguf_file& f, weights_for use) {
    weight_loader w(f, "mamba", owned, use == weights_for::cpu ? &packs : nullptr);
    C = w.u32("embedding_length");
    L = w.u32("block_count");
    K = w.u32("ssm.conv_kernel");
    D = w.u32("ssm.inner_size");
    N = w.u32("ssm.state_size");
    R = w.u32("ssm.time_step_rank");
    eps = w.f32("attention.layer_norm_rms_epsilon", 1e-5f);
    if (K < 1) throw format_error("mamba.ssm.conv_kernel: expected at least 1, found 0");
    // FalconMamba adds RMS norms on dt, B and C; it is another architecture in all but name.
    if (const gguf_value* v = f.find("mamba.ssm.dt_b_c_rms"); v && v->type == gguf_type::BOOL && v->data[0] != 0) {
        throw format_error("mamba.ssm.dt_b_c_rms: expected false (plain Mamba), found true (FalconMamba)");
    }
    const gguf_tensor& emb_t = f.tensor("token_embd.weight");
    V = emb_t.n_dims >= 2 ? emb_t.ne[1] : 0;
    emb = w.embedding("token_embd.weight", V, C);
    norm_f = w.vec("output_norm.weight", C);
    // tied embeddings: llama.cpp omits output.weight when it equals token_embd.weight
    head = w.has("output.weight") ? w.mat("output.weight", V, C) : w.mat("token_embd.weight", V, C);
    for (int64_t i = 0; i < L; i++) {
        const std::string p = "blk." + std::to_string(i) + ".";
        mamba_layer ly;
        ly.norm_w = w.vec(p + "attn_norm.weight", C);
        ly.in_proj = w.mat(p + "ssm_in.weight", 2 * D, C);
        ly.conv_w = w.floats(p + "ssm_conv1d.weight", {K, D});
        ly.conv_b = w.vec(p + "ssm_conv1d.bias", D);
        ly.x_proj = w.mat(p + "ssm_x.weight", R + 2 * N, D);
        ly.dt_proj = w.mat(p + "ssm_dt.weight", D, R);
        ly.dt_b = w.vec(p + "ssm_dt.bias", D);
        ly.A = w.floats(p + "ssm_a", {N, D});
        ly.Dskip = w.vec(p + "ssm_d", D);
        ly.out_proj = w.mat(p + "ssm_out.weight", C, D);
        layers.push_back(ly);
    }
}

std::unique_ptr<model> load_mamba(std::shared_ptr<const gguf_file> f) {
    return std::make_unique<mamba_model>(std::move(f));
}

} // namespace pyrnn
