// rwkv4.cu — RWKV-4 on the device: the same equations, weights and state layout as models/rwkv4.cpp
// (per layer [ att_x (C) | ffn_x (C) | aa (A) | bb (A) | pp (A) ], pp = −1e30 at the start).
//
// Per layer and chunk of T tokens: LayerNorm, token shift and pip's μ-mixes (one kernel), the r, k, v
// products, then one thread per channel runs the wkv recurrence over the T tokens (aa, bb, pp in
// registers) and gates with sigmoid(r); the output projection adds into the residual. The channel
// mix is LayerNorm, shift, mixes, the three products and a gated add.
#include <algorithm>
#include <vector>

#include "../models/weights.h"
#include "block_math.h"
#include "model_base.h"

namespace pyrnn::cuda {

namespace {

struct layer_w {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *mix_k, *mix_v, *mix_r, *w, *u, *ffn_mix_k, *ffn_mix_r;
    dmatrix wk, wv, wr, wo, ffn_key, ffn_value, ffn_receptance;
};

// Up to 3 of pip's token-shift mixes: out[j][t] = xn[t] ⊙ μ[j] + prev[t] ⊙ (1 − μ[j]).
struct mix_set {
    const float* mu[3];
    float* out[3];
    int n;
};

__global__ void mix_kernel(const float* xn, const float* prev, mix_set m, int64_t T, int64_t C) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= T * C) return;
    const int64_t c = i % C;
    for (int j = 0; j < m.n; j++) m.out[j][i] = xn[i] * m.mu[j][c] + prev[i] * (1.0f - m.mu[j][c]);
}

// Thread = channel c < A over the T tokens; r[t] ← sigmoid(r[t]) · wkv[t] in place.
__global__ void wkv_kernel(float* r, const float* k, const float* v, const float* w, const float* u, float* aa,
                           float* bb, float* pp, int64_t T, int64_t A) {
    const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= A) return;
    float a = aa[c], b = bb[c], p = pp[c];
    const float wc = w[c], uc = u[c];
    for (int64_t t = 0; t < T; t++) {
        const int64_t i = t * A + c;
        const float wkv = rwkv4_wkv_step(a, b, p, wc, uc, k[i], v[i]);
        r[i] = sigmoid_f(r[i]) * wkv;
    }
    aa[c] = a, bb[c] = b, pp[c] = p;
}

class rwkv4_device final : public model_base {
  public:
    rwkv4_device(std::shared_ptr<const gguf_file> f, int device) : model_base(std::move(f), device) {
        const rwkv4_weights h(*file_, weights_for::device);
        C = h.C, A = h.A, L = h.L, F = h.F, V = h.V, eps = h.eps;
        emb = mat(h.emb);
        ln0_w = vec(h.ln0_w, C), ln0_b = vec(h.ln0_b, C), ln_out_w = vec(h.ln_out_w, C), ln_out_b = vec(h.ln_out_b, C);
        head = mat(h.head);
        for (const rwkv4_layer& hl : h.layers) {
            layer_w d;
            d.ln1_w = vec(hl.ln1_w, C), d.ln1_b = vec(hl.ln1_b, C), d.ln2_w = vec(hl.ln2_w, C), d.ln2_b = vec(hl.ln2_b, C);
            d.mix_k = vec(hl.mix_k, C), d.mix_v = vec(hl.mix_v, C), d.mix_r = vec(hl.mix_r, C);
            d.w = vec(hl.w, A), d.u = vec(hl.u, A);
            d.ffn_mix_k = vec(hl.ffn_mix_k, C), d.ffn_mix_r = vec(hl.ffn_mix_r, C);
            d.wk = mat(hl.wk), d.wv = mat(hl.wv), d.wr = mat(hl.wr), d.wo = mat(hl.wo);
            d.ffn_key = mat(hl.ffn_key), d.ffn_value = mat(hl.ffn_value), d.ffn_receptance = mat(hl.ffn_receptance);
            layers.push_back(d);
        }
        // h, with the decays and widened host copies, goes at the end of this scope: they are on the device now
        init_.assign(state_size(), 0.0f); // models/rwkv4.cpp init_state: pp = −1e30, all else 0
        for (int64_t l = 0; l < L; l++) {
            std::fill_n(init_.begin() + int64_t(l * layer_state()) + 2 * C + 2 * A, A, -1e30f);
        }
        width_ = std::max(C, A);
        work_ = device_buffer(sizeof(float) * size_t(k_chunk) * size_t(k_slots * width_ + F));
        xq_ = device_buffer(sizeof(block_q8_0) * size_t(k_chunk) * size_t(std::max({C, A, F}) / QK + 1));
        init_io(V);
    }

    std::string arch() const override { return "rwkv4"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }
    std::unique_ptr<device_state> new_state() const override {
        auto s = std::make_unique<flat_state>(state_size());
        s->upload(init_.data());
        return s;
    }

  private:
    static constexpr int k_slots = 10;
    size_t layer_state() const { return size_t(2 * C + 3 * A); }
    dmatrix mat(const matrix& m) { return ws_.mat(m, tensor_name(*file_, m)); }
    const float* vec(const float* v, int64_t n) { return ws_.vec(v, size_t(n)); }
    // Work slots, each [k_chunk][max(C, A)]: 0 x, 1 xn, 2 prev, 3..5 mixes, 6 r, 7 k, 8 v, 9 out / the
    // final norm; then the hidden [k_chunk][F].
    float* buf(int i) const { return work_.as<float>() + size_t(i) * size_t(k_chunk * width_); }
    void run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) override;
    void time_mix(const layer_w& ly, float* s, int64_t T);
    void channel_mix(const layer_w& ly, float* s, int64_t T);
    void mix(const float* xn, const float* prev, const mix_set& m, int64_t T) {
        mix_kernel<<<blocks_for(T * C, 256), 256, 0, stream_>>>(xn, prev, m, T, C);
        check_launch("mix_kernel");
    }

    int64_t C = 0, A = 0, L = 0, F = 0, V = 0, width_ = 0;
    float eps = 1e-5f;
    dmatrix emb, head;
    const float *ln0_w = nullptr, *ln0_b = nullptr, *ln_out_w = nullptr, *ln_out_b = nullptr;
    std::vector<layer_w> layers;
    std::vector<float> init_; // the state before the first token
    device_buffer work_, xq_;
};

void rwkv4_device::time_mix(const layer_w& ly, float* s, int64_t T) {
    float *x = buf(0), *xn = buf(1), *prev = buf(2), *kx = buf(3), *vx = buf(4), *rx = buf(5);
    float *r = buf(6), *k = buf(7), *v = buf(8);
    float* aa = s + 2 * C;
    block_q8_0* xq = xq_.as<block_q8_0>();
    layer_norm_rows(x, ly.ln1_w, ly.ln1_b, xn, T, C, eps, stream_);
    token_shift(xn, s, prev, T, C, stream_);
    mix(xn, prev, mix_set{{ly.mix_k, ly.mix_v, ly.mix_r}, {kx, vx, rx}, 3}, T);
    gemm(ly.wr, rx, C, r, T, epilogue::none, xq, stream_);
    gemm(ly.wk, kx, C, k, T, epilogue::none, xq, stream_);
    gemm(ly.wv, vx, C, v, T, epilogue::none, xq, stream_);
    wkv_kernel<<<blocks_for(A, 128), 128, 0, stream_>>>(r, k, v, ly.w, ly.u, aa, aa + A, aa + 2 * A, T, A);
    check_launch("wkv_kernel");
    gemm(ly.wo, r, A, x, T, epilogue::add, xq, stream_);
}

void rwkv4_device::channel_mix(const layer_w& ly, float* s, int64_t T) {
    float *x = buf(0), *xn = buf(1), *prev = buf(2), *kx = buf(3), *rx = buf(4), *rr = buf(5), *out = buf(9);
    float* hid = buf(k_slots);
    block_q8_0* xq = xq_.as<block_q8_0>();
    layer_norm_rows(x, ly.ln2_w, ly.ln2_b, xn, T, C, eps, stream_);
    token_shift(xn, s + C, prev, T, C, stream_);
    mix(xn, prev, mix_set{{ly.ffn_mix_k, ly.ffn_mix_r}, {kx, rx}, 2}, T);
    gemm(ly.ffn_receptance, rx, C, rr, T, epilogue::sigmoid, xq, stream_);
    gemm(ly.ffn_key, kx, C, hid, T, epilogue::relu_sq, xq, stream_);
    gemm(ly.ffn_value, hid, F, out, T, epilogue::none, xq, stream_);
    add_product(x, rr, out, T * C, stream_);
}

void rwkv4_device::run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) {
    float* x = buf(0);
    embed(emb, d_tokens, x, T, stream_);
    layer_norm_rows(x, ln0_w, ln0_b, x, T, C, eps, stream_);
    for (int64_t l = 0; l < L; l++) {
        float* s = state + size_t(l) * layer_state();
        time_mix(layers[size_t(l)], s, T);
        channel_mix(layers[size_t(l)], s, T);
    }
    if (!logits) return;
    const int64_t rows = all_logits ? T : 1;
    layer_norm_rows(x + (T - rows) * C, ln_out_w, ln_out_b, buf(9), rows, C, eps, stream_);
    gemm(head, buf(9), C, logits, rows, epilogue::none, xq_.as<block_q8_0>(), stream_);
}

} // namespace

std::unique_ptr<device_model> load_rwkv4_device(std::shared_ptr<const gguf_file> f, int device) {
    return std::make_unique<rwkv4_device>(std::move(f), device);
}

} // namespace pyrnn::cuda
