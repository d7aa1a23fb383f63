// mamba2.cu — Mamba-2 (SSD) on the device: the same equations, weights and state layout as
// models/mamba2.cpp (per layer [ conv (Q × (K−1)) | ssm (H × P × N) ]).
//
// Per layer and chunk of T tokens: RMSNorm, in_proj (rows [z | x | B | C | dt]), the causal conv +
// SiLU over xBC (one thread per channel over the T tokens), then one thread per state row (head h,
// row p) runs softplus(dt), the scan over the T tokens and the skip; one block per (token, group)
// gates with silu(z) and RMS-normalises the group; out_proj adds into the residual. Like the CPU, the
// scan is the sequential form, not SSD's chunked one.
#include <algorithm>
#include <vector>

#include "../models/weights.h"
#include "block_math.h"
#include "model_base.h"

namespace pyrnn::cuda {

namespace {

struct layer_w {
    const float *norm_w, *conv_w, *conv_b, *dt_b, *A, *Dskip, *gnorm;
    dmatrix in_proj, out_proj;
};

struct scan_args {
    const float *zxbcdt, *xbc;  // [T][W], [T][Q]
    const float *dt_b, *A, *Dskip;
    float* S;                   // (H, P, N) of this layer's state
    float* y;                   // [T][D]
    int64_t T, D, N, H, P, G, W, Q;
};

// Thread = row p of head h (one of D = H·P rows), over the chunk's T tokens.
__global__ void scan_kernel(scan_args a) {
    const int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (row >= a.D) return;
    const int64_t h = row / a.P, g = h / (a.H / a.G);
    float* Sp = a.S + row * a.N;
    for (int64_t t = 0; t < a.T; t++) {
        const float* xt = a.xbc + t * a.Q;
        const float* B = xt + a.D + g * a.N;
        const float dt = softplus_f(a.zxbcdt[t * a.W + a.D + a.Q + h] + a.dt_b[h]), dA = expf(dt * a.A[h]);
        const float xp = xt[row];
        a.y[t * a.D + row] = mamba2_scan_row(Sp, B, B + a.G * a.N, dt, dA, xp, a.N) + a.Dskip[h] * xp;
    }
}

// Block = (token t, group g): y ← y·silu(z), then RMSNorm of the group's n = D/G channels with its
// weight (double sums as ops.h).
__global__ void gate_norm_kernel(float* y, const float* zxbcdt, const float* gnorm, int64_t D, int64_t W, int64_t G,
                                 float eps) {
    __shared__ double scratch[32];
    const int64_t t = blockIdx.x / G, g = blockIdx.x % G, n = D / G;
    float* yg = y + t * D + g * n;
    const float* zg = zxbcdt + t * W + g * n;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = yg[i] * silu_f(zg[i]);
        yg[i] = v;
        ss += double(v) * v;
    }
    const float inv = float(1.0 / sqrt(block_sum(ss, scratch) / double(n) + double(eps)));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yg[i] = yg[i] * inv * gnorm[g * n + i];
}

class mamba2_device final : public model_base {
  public:
    mamba2_device(std::shared_ptr<const gguf_file> f, int device) : model_base(std::move(f), device) {
        const mamba2_weights h(*file_, weights_for::device);
        C = h.C, L = h.L, K = h.K, D = h.D, N = h.N, H = h.H, G = h.G, P = h.P, Q = h.Q, V = h.V, eps = h.eps;
        W = 2 * D + 2 * G * N + H;
        emb = mat(h.emb);
        norm_f = ws_.vec(h.norm_f, size_t(C));
        head = mat(h.head);
        for (const mamba2_layer& hl : h.layers) {
            layer_w d;
            d.norm_w = ws_.vec(hl.norm_w, size_t(C));
            d.conv_w = ws_.vec(hl.conv_w, size_t(Q * K)), d.conv_b = ws_.vec(hl.conv_b, size_t(Q));
            d.dt_b = ws_.vec(hl.dt_b, size_t(H)), d.A = ws_.vec(hl.A, size_t(H)), d.Dskip = ws_.vec(hl.Dskip, size_t(H));
            d.gnorm = ws_.vec(hl.gnorm, size_t(D));
            d.in_proj = mat(hl.in_proj), d.out_proj = mat(hl.out_proj);
            layers.push_back(d);
        }
        // h, with the widened host copies, goes at the end of this scope: they are on the device now
        // x [C] | xn [C] | zxbcdt [W] | xbc [Q] | y [D], per token
        work_ = device_buffer(sizeof(float) * size_t(k_chunk * (2 * C + W + Q + D)));
        xq_ = device_buffer(sizeof(block_q8_0) * size_t(k_chunk) * size_t(std::max(C, D) / QK + 1));
        init_io(V);
    }

    std::string arch() const override { return "mamba2"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }

  private:
    size_t layer_state() const { return size_t(Q * (K - 1) + H * P * N); }
    dmatrix mat(const matrix& m) { return ws_.mat(m, tensor_name(*file_, m)); }
    void run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) override;
    void mixer(const layer_w& ly, float* s, int64_t T);

    int64_t C = 0, L = 0, K = 0, D = 0, N = 0, H = 0, G = 0, P = 0, Q = 0, V = 0, W = 0;
    float eps = 1e-5f;
    dmatrix emb, head;
    const float* norm_f = nullptr;
    std::vector<layer_w> layers;
    device_buffer work_, xq_;
};

void mamba2_device::mixer(const layer_w& ly, float* s, int64_t T) {
    float* x = work_.as<float>();
    float* xn = x + k_chunk * C;
    float* zxbcdt = xn + k_chunk * C;
    float* xbc = zxbcdt + k_chunk * W;
    float* y = xbc + k_chunk * Q;
    block_q8_0* xq = xq_.as<block_q8_0>();
    rms_norm_rows(x, ly.norm_w, xn, T, C, eps, stream_);
    gemm(ly.in_proj, xn, C, zxbcdt, T, epilogue::none, xq, stream_);
    conv_silu(zxbcdt + D, W, ly.conv_w, ly.conv_b, s, xbc, T, Q, K, stream_);
    scan_kernel<<<blocks_for(D, 128), 128, 0, stream_>>>(
        scan_args{zxbcdt, xbc, ly.dt_b, ly.A, ly.Dskip, s + Q * (K - 1), y, T, D, N, H, P, G, W, Q});
    check_launch("scan_kernel");
    gate_norm_kernel<<<unsigned(T * G), 256, 0, stream_>>>(y, zxbcdt, ly.gnorm, D, W, G, eps);
    check_launch("gate_norm_kernel");
    gemm(ly.out_proj, y, D, x, T, epilogue::add, xq, stream_);
}

void mamba2_device::run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) {
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

std::unique_ptr<device_model> load_mamba2_device(std::shared_ptr<const gguf_file> f, int device) {
    return std::make_unique<mamba2_device>(std::move(f), device);
}

} // namespace pyrnn::cuda
