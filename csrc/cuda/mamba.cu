// mamba.cu — Mamba-1 on the device: the same equations, weights and state layout as
// models/mamba.cpp (per layer [ conv (D × (K−1)) | ssm (D × N) ]).
//
// Per layer and chunk of T tokens: RMSNorm, in_proj, the causal conv + SiLU (one thread per channel
// over the T tokens), x_proj, dt_proj (reading the dt columns of x_proj's output in place), then one
// thread per channel runs softplus, the selective scan over the T tokens, the skip and the gate;
// out_proj adds into the residual.
#include <algorithm>
#include <vector>

#include "../models/weights.h"
#include "block_math.h"
#include "model_base.h"

namespace pyrnn::cuda {

namespace {

struct layer_w {
    const float *norm_w, *conv_w, *conv_b, *dt_b, *A, *Dskip;
    dmatrix in_proj, x_proj, dt_proj, out_proj;
};

struct scan_args {
    const float *xz, *u, *xdbl, *dt; // [T][2D], [T][D], [T][R + 2N], [T][D] (before bias and softplus)
    const float *dt_b, *A, *Dskip;
    float* h;                         // (D, N) of this layer's state
    float* y;                         // [T][D]
    int64_t T, D, N, R;
};

__global__ void scan_kernel(scan_args p) {
    const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= p.D) return;
    const int64_t P = p.R + 2 * p.N;
    for (int64_t t = 0; t < p.T; t++) {
        const float dt = softplus_f(p.dt[t * p.D + c] + p.dt_b[c]), u = p.u[t * p.D + c];
        const float* B = p.xdbl + t * P + p.R;
        float y = mamba_scan_step(p.h + c * p.N, p.A + c * p.N, B, B + p.N, dt, u, p.N);
        y += p.Dskip[c] * u;
        p.y[t * p.D + c] = y * silu_f(p.xz[t * 2 * p.D + p.D + c]);
    }
}

class mamba_device final : public model_base {
  public:
    mamba_device(std::shared_ptr<const gguf_file> f, int device) : model_base(std::move(f), device) {
        const mamba_weights h(*file_, weights_for::device);
        C = h.C, L = h.L, K = h.K, D = h.D, N = h.N, R = h.R, V = h.V, eps = h.eps;
        emb = mat(h.emb);
        norm_f = ws_.vec(h.norm_f, size_t(C));
        head = mat(h.head);
        for (const mamba_layer& hl : h.layers) layers.push_back(upload(hl));
        // h, with the widened host copies, goes at the end of this scope: they are on the device now
        const int64_t P = R + 2 * N;
        // x [C] | xn [C] | xz [2D] | u [D] | xdbl [P] | dt [D] | y [D], per token
        row_ = 2 * C + 2 * D + D + P + D + D;
        work_ = device_buffer(sizeof(float) * size_t(k_chunk * row_));
        xq_ = device_buffer(sizeof(block_q8_0) * size_t(k_chunk) * size_t(std::max({C, D, R}) / QK + 1));
        init_io(V);
    }

    std::string arch() const override { return "mamba"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }

  private:
    size_t layer_state() const { return size_t(D * (K - 1) + D * N); }
    dmatrix mat(const matrix& m) { return ws_.mat(m, tensor_name(*file_, m)); }
    layer_w upload(const mamba_layer& h);
    void run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) override;
    void mixer(const layer_w& ly, float* s, int64_t T);

    int64_t C = 0, L = 0, K = 0, D = 0, N = 0, R = 0, V = 0, row_ = 0;
    float eps = 1e-5f;
    dmatrix emb, head;
    const float* norm_f = nullptr;
    std::vector<layer_w> layers;
    device_buffer work_, xq_;
};

// The device copy of a layer of models/weights.h (the same fields).
layer_w mamba_device::upload(const mamba_layer& h) {
    layer_w d;
    d.norm_w = ws_.vec(h.norm_w, size_t(C));
    d.conv_w = ws_.vec(h.conv_w, size_t(K * D)), d.conv_b = ws_.vec(h.conv_b, size_t(D));
    d.dt_b = ws_.vec(h.dt_b, size_t(D)), d.A = ws_.vec(h.A, size_t(N * D)), d.Dskip = ws_.vec(h.Dskip, size_t(D));
    d.in_proj = mat(h.in_proj), d.x_proj = mat(h.x_proj), d.dt_proj = mat(h.dt_proj), d.out_proj = mat(h.out_proj);
    return d;
}

void mamba_device::mixer(const layer_w& ly, float* s, int64_t T) {
    const int64_t P = R + 2 * N;
    float* x = work_.as<float>();
    float* xn = x + k_chunk * C;
    float* xz = xn + k_chunk * C;
    float* u = xz + k_chunk * 2 * D;
    float* xdbl = u + k_chunk * D;
    float* dt = xdbl + k_chunk * P;
    float* y = dt + k_chunk * D;
    block_q8_0* xq = xq_.as<block_q8_0>();
    float* conv_state = s;
    float* ssm_state = s + D * (K - 1);
    rms_norm_rows(x, ly.norm_w, xn, T, C, eps, stream_);
    gemm(ly.in_proj, xn, C, xz, T, epilogue::none, xq, stream_);
    conv_silu(xz, 2 * D, ly.conv_w, ly.conv_b, conv_state, u, T, D, K, stream_);
    gemm(ly.x_proj, u, D, xdbl, T, epilogue::none, xq, stream_);
    gemm(ly.dt_proj, xdbl, P, dt, T, epilogue::none, xq, stream_); // the first R columns of each xdbl row
    scan_kernel<<<blocks_for(D, 128), 128, 0, stream_>>>(scan_args{xz, u, xdbl, dt, ly.dt_b, ly.A, ly.Dskip, ssm_state, y, T, D, N, R});
    check_launch("scan_kernel");
    gemm(ly.out_proj, y, D, x, T, epilogue::add, xq, stream_);
}

void mamba_device::run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) {
    float* x = work_.as<float>();
    float* xn = x + k_chunk * C;
    embed(emb, d_tokens, x, T, stream_);
    for (int64_t l = 0; l < L; l++) mixer(layers[size_t(l)], state + size_t(l) * layer_state(), T);
    if (!logits) return;
    const int64_t rows = all_logits ? T : 1;
    rms_norm_rows(x + (T - rows) * C, norm_f, xn, rows, C, eps, stream_);
    gemm(head, xn, C, logits, rows, epilogue::none, xq_.as<block_q8_0>(), stream_);
}

} // namespace

std::unique_ptr<device_model> load_mamba_device(std::shared_ptr<const gguf_file> f, int device) {
    return std::make_unique<mamba_device>(std::move(f), device);
}

} // namespace pyrnn::cuda
