// retnet.cu — RetNet on the device: the same equations, weights and state layout as models/retnet.cpp
// (state [ n | per layer: S (H × dv × dk) | scale (H) ], n the token count as uint32 bits).
//
// Per layer and chunk of T tokens: RMSNorm, the q, k, v, g products, one kernel that scales k and
// rotates q and k at their positions (read from the state on the device, so a captured decode graph
// stays valid as n grows), then the retention in its recurrent form over the T tokens — one warp per
// state row (head h, value row i), lanes over the key channels — and the head normalisers; per-head
// RMSNorm, the swish gate and the output projection. The FFN is a GLU. After the last layer n += T.
//
// The CPU's prefill uses the chunkwise form (retnet.cpp retention_chunk); the device uses the step
// form for every token, the same numbers up to rounding.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../models/weights.h"
#include "block_math.h"
#include "model_base.h"

namespace pyrnn::cuda {

namespace {

struct layer_w {
    const float *attn_norm, *ffn_norm;
    dmatrix wq, wk, wv, wg, wo, ffn_gate, ffn_up, ffn_down;
};

__device__ __forceinline__ uint32_t token_count(const float* state) {
    uint32_t n;
    memcpy(&n, state, sizeof n);
    return n;
}

// Thread = channel pair (t, h, i..i+1): k *= k_scale, then q and k rotated at position n + t.
__global__ void rotate_kernel(float* q, float* k, const float* angle, const float* state, float k_scale, int64_t T,
                              int64_t D, int64_t dk) {
    const int64_t pair = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (pair >= T * D / 2) return;
    const int64_t e = 2 * pair, t = e / D, i = e % dk;
    const float n = float(token_count(state) + uint32_t(t));
    retnet_rotate_pair(q[e], q[e + 1], n, angle[i], angle[i + 1]);
    float k0 = k[e] * k_scale, k1 = k[e + 1] * k_scale;
    retnet_rotate_pair(k0, k1, n, angle[i], angle[i + 1]);
    k[e] = k0, k[e + 1] = k1;
}

struct retention_args {
    const float *q, *k, *v; // [T][D], [T][D], [T][Dv]
    const float* gamma;     // (H)
    float* S;               // (H, dv, dk) of this layer's state
    const float* scale;     // (H) before the chunk (retention_scale_kernel advances it afterwards)
    float* o;               // [T][Dv]
    int64_t T, D, Dv, dk, dv;
};

constexpr int k_row_warps = 4; // state rows per block

// Block (h, rows): warp = value row i of head h over the T tokens; lane l takes key channels l, l+32, …
// Every warp runs the head's normaliser recurrence itself (the same floats), so rows need no sync.
__global__ void retention_kernel(retention_args p) {
    const int lane = threadIdx.x % 32;
    const int64_t h = blockIdx.x, i = int64_t(blockIdx.y) * k_row_warps + threadIdx.x / 32;
    if (i >= p.dv) return; // a whole warp leaves together
    float* Si = p.S + (h * p.dv + i) * p.dk;
    const float gamma = p.gamma[h];
    float s = p.scale[h];
    for (int64_t t = 0; t < p.T; t++) {
        float a, inv;
        retnet_scale_step(s, gamma, a, inv);
        const float vi = p.v[t * p.Dv + h * p.dv + i] * inv;
        const float* kh = p.k + t * p.D + h * p.dk;
        const float* qh = p.q + t * p.D + h * p.dk;
        const float o = warp_sum(retnet_row_part(Si, kh, qh, a, vi, lane, 32, p.dk));
        if (lane == 0) p.o[t * p.Dv + h * p.dv + i] = o;
    }
}

// scale[h] after T more tokens (after retention_kernel, which reads the old values).
__global__ void retention_scale_kernel(const float* gamma, float* scale, int64_t H, int64_t T) {
    const int64_t h = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (h >= H) return;
    float s = scale[h], a, inv;
    for (int64_t t = 0; t < T; t++) retnet_scale_step(s, gamma[h], a, inv);
    scale[h] = s;
}

// o ← o · g·sigmoid(g) (the swish gate), elementwise over n.
__global__ void swish_gate_kernel(float* o, const float* g, int64_t n) {
    const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e < n) o[e] *= g[e] * sigmoid_f(g[e]);
}

__global__ void glu_kernel(float* a, const float* b, int64_t n, int act) {
    const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e < n) a[e] = retnet_glu(act, a[e], b[e]);
}

__global__ void advance_kernel(float* state, uint32_t T) {
    uint32_t n = token_count(state) + T;
    memcpy(state, &n, sizeof n);
}

static_assert(int(retnet_activation::gelu) == 0 && int(retnet_activation::silu) == 1 &&
                  int(retnet_activation::relu) == 2,
              "retnet_glu (block_math.h) numbers the activations as retnet_activation does");

class retnet_device final : public model_base {
  public:
    retnet_device(std::shared_ptr<const gguf_file> f, int device) : model_base(std::move(f), device) {
        const retnet_weights h(*file_, weights_for::device);
        D = h.D, L = h.L, H = h.H, dk = h.dk, dv = h.dv, Dv = h.Dv, F = h.F, V = h.V;
        eps = h.eps, embd_scale = h.embd_scale, act = int(h.ffn_act);
        emb = mat(h.emb);
        embd_norm = ws_.vec(h.embd_norm, size_t(D));
        out_norm = ws_.vec(h.out_norm, size_t(D));
        head = mat(h.head);
        angle = ws_.vec(h.angle, size_t(dk));
        gamma = ws_.vec(h.gamma.data(), size_t(H));
        for (const retnet_layer& hl : h.layers) {
            layer_w d;
            d.attn_norm = ws_.vec(hl.attn_norm, size_t(D)), d.ffn_norm = ws_.vec(hl.ffn_norm, size_t(D));
            d.wq = mat(hl.wq), d.wk = mat(hl.wk), d.wv = mat(hl.wv), d.wg = mat(hl.wg), d.wo = mat(hl.wo);
            d.ffn_gate = mat(hl.ffn_gate), d.ffn_up = mat(hl.ffn_up), d.ffn_down = mat(hl.ffn_down);
            layers.push_back(d);
        }
        // h, with the widened host copies, goes at the end of this scope: they are on the device now
        // x [D] | u [D] | q [D] | k [D] | v [Dv] | g [Dv] | o [Dv] | a [F] | b [F], per token
        work_ = device_buffer(sizeof(float) * size_t(k_chunk * (4 * D + 3 * Dv + 2 * F)));
        xq_ = device_buffer(sizeof(block_q8_0) * size_t(k_chunk) * size_t(std::max({D, Dv, F}) / QK + 1));
        init_io(V);
    }

    std::string arch() const override { return "retnet"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return D; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return 1 + size_t(L) * layer_state(); }

  private:
    size_t layer_state() const { return size_t(H * dv * dk + H); }
    dmatrix mat(const matrix& m) { return ws_.mat(m, tensor_name(*file_, m)); }
    void run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) override;
    void retention(const layer_w& ly, float* s, const float* state, int64_t T);
    void ffn(const layer_w& ly, int64_t T);
    float* x() const { return work_.as<float>(); }
    float* u() const { return x() + k_chunk * D; }
    float* q() const { return u() + k_chunk * D; }
    float* k() const { return q() + k_chunk * D; }
    float* v() const { return k() + k_chunk * D; }
    float* g() const { return v() + k_chunk * Dv; }
    float* o() const { return g() + k_chunk * Dv; }
    float* a() const { return o() + k_chunk * Dv; }
    float* b() const { return a() + k_chunk * F; }
    block_q8_0* xq() const { return xq_.as<block_q8_0>(); }

    int64_t D = 0, L = 0, H = 0, dk = 0, dv = 0, Dv = 0, F = 0, V = 0;
    float eps = 1e-6f, embd_scale = 1.0f;
    int act = 0;
    dmatrix emb, head;
    const float *embd_norm = nullptr, *out_norm = nullptr, *angle = nullptr, *gamma = nullptr;
    std::vector<layer_w> layers;
    device_buffer work_, xq_;
};

// s: this layer's state; state: the whole state (its first float holds the position n).
void retnet_device::retention(const layer_w& ly, float* s, const float* state, int64_t T) {
    float* scale = s + H * dv * dk;
    rms_norm_rows(x(), ly.attn_norm, u(), T, D, eps, stream_);
    gemm(ly.wq, u(), D, q(), T, epilogue::none, xq(), stream_);
    gemm(ly.wk, u(), D, k(), T, epilogue::none, xq(), stream_);
    gemm(ly.wv, u(), D, v(), T, epilogue::none, xq(), stream_);
    gemm(ly.wg, u(), D, g(), T, epilogue::none, xq(), stream_);
    // torchscale: k *= key_dim ** -0.5, before the rotation
    rotate_kernel<<<blocks_for(T * D / 2, 256), 256, 0, stream_>>>(q(), k(), angle, state, 1.0f / sqrtf(float(dk)), T, D, dk);
    check_launch("rotate_kernel");
    const dim3 grid(unsigned(H), unsigned((dv + k_row_warps - 1) / k_row_warps));
    retention_kernel<<<grid, 32 * k_row_warps, 0, stream_>>>(retention_args{q(), k(), v(), gamma, s, scale, o(), T, D,
                                                                            Dv, dk, dv});
    check_launch("retention_kernel");
    retention_scale_kernel<<<blocks_for(H, 32), 32, 0, stream_>>>(gamma, scale, H, T);
    check_launch("retention_scale_kernel");
    rms_norm_rows(o(), nullptr, o(), T * H, dv, eps, stream_); // per head, no weight
    swish_gate_kernel<<<blocks_for(T * Dv, 256), 256, 0, stream_>>>(o(), g(), T * Dv);
    check_launch("swish_gate_kernel");
    gemm(ly.wo, o(), Dv, x(), T, epilogue::add, xq(), stream_);
}

// x += fc2( act(fc1 u) ⊙ gate u ),  u = RMSNorm(x)
void retnet_device::ffn(const layer_w& ly, int64_t T) {
    rms_norm_rows(x(), ly.ffn_norm, u(), T, D, eps, stream_);
    gemm(ly.ffn_gate, u(), D, a(), T, epilogue::none, xq(), stream_);
    gemm(ly.ffn_up, u(), D, b(), T, epilogue::none, xq(), stream_);
    glu_kernel<<<blocks_for(T * F, 256), 256, 0, stream_>>>(a(), b(), T * F, act);
    check_launch("glu_kernel");
    gemm(ly.ffn_down, a(), F, x(), T, epilogue::add, xq(), stream_);
}

void retnet_device::run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) {
    embed(emb, d_tokens, x(), T, stream_);
    if (embd_scale != 1.0f) scale(x(), embd_scale, T * D, stream_);
    if (embd_norm) rms_norm_rows(x(), embd_norm, x(), T, D, eps, stream_);
    for (int64_t l = 0; l < L; l++) {
        retention(layers[size_t(l)], state + 1 + size_t(l) * layer_state(), state, T);
        ffn(layers[size_t(l)], T);
    }
    advance_kernel<<<1, 1, 0, stream_>>>(state, uint32_t(T));
    check_launch("advance_kernel");
    if (!logits) return;
    const int64_t rows = all_logits ? T : 1;
    rms_norm_rows(x() + (T - rows) * D, out_norm, u(), rows, D, eps, stream_);
    gemm(head, u(), D, logits, rows, epilogue::none, xq(), stream_);
}

} // namespace

std::unique_ptr<device_model> load_retnet_device(std::shared_ptr<const gguf_file> f, int device) {
    return std::make_unique<retnet_device>(std::move(f), device);
}

} // namespace pyrnn::cuda
