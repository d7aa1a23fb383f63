// rwkv7.cu — RWKV-7 on the device: the same equations, weights and state layout as
// models/rwkv7.cpp (per layer [ att_x (C) | ffn_x (C) | S (H × N × N), S[h][v][k] ]).
//
// Per layer and chunk of T tokens: LayerNorm, token shift, the 6 lerps (one kernel), the products
// (LoRA activations fused into the first product of each pair, residual adds into the last), and
// one fused kernel per head for everything between the products and the output projection —
// decay, kk normalisation, value residual, the state recurrence over the T tokens (the head's N×N
// state held in shared memory for the whole chunk), GroupNorm, bonus and gate.
#include <algorithm>
#include <vector>

#include "../models/weights.h"
#include "block_math.h"
#include "model_base.h"

namespace pyrnn::cuda {

namespace {

struct layer_w {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *lerp, *w0, *a0, *v0 = nullptr, *k_k, *k_a, *r_k, *lnx_w, *lnx_b,
                                                 *ffn_lerp_k;
    dmatrix w1, w2, a1, a2, v1, v2, g1, g2, wr, wk, wv, wo, ffn_key, ffn_value;
};

struct wkv_args {
    const float *r, *k, *v, *wl, *a, *g, *vg; // [T][C] (vg unused in layer 0)
    float* v_first;                           // [T][C]: written by layer 0, read by the others
    const float *w0, *a0, *v0, *k_k, *k_a, *r_k, *lnx_w, *lnx_b;
    float* S_all; // (H, N, N) of this layer's state
    float* y;     // [T][C]
    int64_t T, C, N;
    bool first_layer;
};

// Block h = head h, thread i = value row i (threads ≥ N idle but take part in the reductions).
// Shared: the head's state transposed (element (i, j) at j·N + i: thread i walks its row with stride N,
// conflict-free), then w, kk, a, k, r of the current token, then 32 doubles of reduction scratch.
__global__ void wkv_kernel(wkv_args p) {
    extern __shared__ float sh[];
    const int64_t N = p.N, h = blockIdx.x, i = threadIdx.x, c = h * N + i;
    const bool live = i < N;
    float* S = sh;
    float *w = S + N * N, *kk = w + N, *a = kk + N, *k = a + N, *r = k + N;
    double* scratch = reinterpret_cast<double*>(sh + ((N * N + 5 * N + 1) & ~int64_t(1))); // 8-byte aligned
    float* Sg = p.S_all + h * N * N;
    if (live) {
        for (int64_t j = 0; j < N; j++) S[j * N + i] = Sg[i * N + j];
    }
    for (int64_t t = 0; t < p.T; t++) {
        const int64_t tc = t * p.C + c;
        float kk_i = 0.0f, v_i = 0.0f, k_i = 0.0f, r_i = 0.0f;
        if (live) {
            const float a_i = sigmoid_f(p.a0[c] + p.a[tc]);
            w[i] = expf(-0.606531f * sigmoid_f(p.w0[c] + p.wl[tc]));
            kk_i = p.k[tc] * p.k_k[c];
            k_i = p.k[tc] * (1.0f + (a_i - 1.0f) * p.k_a[c]);
            a[i] = a_i;
            k[i] = k_i;
            r_i = r[i] = p.r[tc];
            v_i = p.v[tc];
            if (p.first_layer) {
                p.v_first[tc] = v_i;
            } else {
                v_i += (p.v_first[tc] - v_i) * sigmoid_f(p.v0[c] + p.vg[tc]);
            }
        }
        const float ss = float(block_sum(double(kk_i) * kk_i, scratch)); // per-head L2 norm of kk
        kk_i *= 1.0f / fmaxf(sqrtf(ss), 1e-12f);
        if (live) kk[i] = kk_i;
        __syncthreads();
        float y = live ? rwkv7_wkv_row(S + i, N, w, kk, a, k, r, v_i, N) : 0.0f;
        // GroupNorm of the head (eps 64e-5, double sums as ops.h), then the bonus and the gate
        const double mean = block_sum(live ? y : 0.0f, scratch) / double(N);
        const double d = live ? y - mean : 0.0;
        const double var = block_sum(d * d, scratch) / double(N);
        const float bonus = float(block_sum(live ? r_i * k_i * p.r_k[c] : 0.0f, scratch));
        if (live) {
            const float inv = float(1.0 / sqrt(var + double(64e-5f)));
            y = (y - float(mean)) * inv * p.lnx_w[c] + p.lnx_b[c];
            p.y[tc] = (y + bonus * v_i) * p.g[tc];
        }
        // block_sum ends with a barrier: w, kk, a, k, r may be overwritten for the next token
    }
    if (live) {
        for (int64_t j = 0; j < N; j++) Sg[i * N + j] = S[j * N + i];
    }
}

class rwkv7_device final : public model_base {
  public:
    rwkv7_device(std::shared_ptr<const gguf_file> f, int device) : model_base(std::move(f), device) {
        const rwkv7_weights h(*file_, weights_for::device, [](const rwkv7_weights& w) {
            if (w.N == 0 || w.C % w.N != 0 || w.N > 1024) {
                throw format_error("rwkv7.wkv.head_size: expected a divisor of embedding_length " +
                                   std::to_string(w.C) + " (at most 1024 on the device), found " + std::to_string(w.N));
            }
        });
        C = h.C, L = h.L, N = h.N, H = h.H, F = h.F, V = h.V, eps = h.eps;
        emb = mat(h.emb);
        ln0_w = ws_.vec(h.ln0_w, size_t(C));
        ln0_b = ws_.vec(h.ln0_b, size_t(C));
        ln_out_w = ws_.vec(h.ln_out_w, size_t(C));
        ln_out_b = ws_.vec(h.ln_out_b, size_t(C));
        head = mat(h.head);
        int64_t lora_max = 1, cols_max = std::max(C, F);
        for (const rwkv7_layer& hl : h.layers) {
            layers.push_back(upload(hl));
            const layer_w& ly = layers.back();
            for (const dmatrix* m : {&ly.w1, &ly.a1, &ly.g1, &ly.v1}) lora_max = std::max(lora_max, m->rows);
            for (const dmatrix* m : {&ly.w2, &ly.a2, &ly.g2, &ly.v2}) cols_max = std::max(cols_max, m->cols);
        }
        // h, with the widened host copies, goes at the end of this scope: they are on the device now
        const size_t TC = size_t(k_chunk * C);
        work_ = device_buffer(sizeof(float) * (TC * 20 + size_t(k_chunk) * size_t(std::max(F, lora_max))));
        xq_ = device_buffer(sizeof(block_q8_0) * size_t(k_chunk) * size_t(cols_max / QK + 1));
        shared_bytes_ = sizeof(float) * size_t(N * N + 5 * N + 1) + 32 * sizeof(double);
        allow_shared_memory(wkv_kernel, shared_bytes_, "rwkv7.wkv.head_size", N);
        init_io(V);
    }

    std::string arch() const override { return "rwkv7"; }
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }

  private:
    size_t layer_state() const { return size_t(2 * C + H * N * N); }
    dmatrix mat(const matrix& m) { return m.data ? ws_.mat(m, tensor_name(*file_, m)) : dmatrix{}; }
    layer_w upload(const rwkv7_layer& h);
    void run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) override;
    void time_mix(const layer_w& ly, bool first, float* s, int64_t T);
    void channel_mix(const layer_w& ly, float* s, int64_t T);
    float* buf(int i) const { return work_.as<float>() + size_t(i) * size_t(k_chunk * C); } // [k_chunk][C] slots

    int64_t C = 0, L = 0, N = 0, H = 0, F = 0, V = 0;
    float eps = 1e-5f;
    dmatrix emb, head;
    const float *ln0_w = nullptr, *ln0_b = nullptr, *ln_out_w = nullptr, *ln_out_b = nullptr;
    std::vector<layer_w> layers;
    device_buffer work_, xq_;
    size_t shared_bytes_ = 0;
};

// The device copy of a layer of models/weights.h (the same fields; vectors of C floats but lerp).
layer_w rwkv7_device::upload(const rwkv7_layer& h) {
    auto vec = [&](const float* v) { return ws_.vec(v, size_t(C)); };
    layer_w d;
    d.ln1_w = vec(h.ln1_w), d.ln1_b = vec(h.ln1_b), d.ln2_w = vec(h.ln2_w), d.ln2_b = vec(h.ln2_b);
    d.lerp = ws_.vec(h.lerp, size_t(6 * C));
    d.w0 = vec(h.w0), d.a0 = vec(h.a0), d.v0 = vec(h.v0);
    d.w1 = mat(h.w1), d.w2 = mat(h.w2), d.a1 = mat(h.a1), d.a2 = mat(h.a2);
    d.v1 = mat(h.v1), d.v2 = mat(h.v2), d.g1 = mat(h.g1), d.g2 = mat(h.g2);
    d.k_k = vec(h.k_k), d.k_a = vec(h.k_a), d.r_k = vec(h.r_k);
    d.wr = mat(h.wr), d.wk = mat(h.wk), d.wv = mat(h.wv), d.wo = mat(h.wo);
    d.lnx_w = vec(h.lnx_w), d.lnx_b = vec(h.lnx_b), d.ffn_lerp_k = vec(h.ffn_lerp_k);
    d.ffn_key = mat(h.ffn_key), d.ffn_value = mat(h.ffn_value);
    return d;
}

// Work slots (each [k_chunk][C]): 0 x, 1 v_first, 2 xn, 3..8 mix (r w k v a g), 9 r, 10 k, 11 v,
// 12 wl, 13 a, 14 g, 15 vg, 16 y, 17 xo, 18 prev, 19 spare; then the hidden [k_chunk][max(F, LoRA rank)].
void rwkv7_device::time_mix(const layer_w& ly, bool first, float* s, int64_t T) {
    float* x = buf(0);
    float* xn = buf(2);
    float* mix = buf(3);
    float* prev = buf(18);
    float* hid = buf(20);
    block_q8_0* xq = xq_.as<block_q8_0>();
    const int64_t TC = T * C;
    float *xr = mix, *xw = mix + TC, *xk = mix + 2 * TC, *xv = mix + 3 * TC, *xa = mix + 4 * TC, *xg = mix + 5 * TC;
    const float* lerp = ly.lerp; // (6, C): r, w, k, v, a, g
    layer_norm_rows(x, ly.ln1_w, ly.ln1_b, xn, T, C, eps, stream_);
    token_shift(xn, s, prev, T, C, stream_);
    lerp_rows(xn, prev,
              lerp_set{{lerp, lerp + C, lerp + 2 * C, lerp + 3 * C, lerp + 4 * C, lerp + 5 * C}, {xr, xw, xk, xv, xa, xg}, 6},
              T, C, stream_);
    gemm(ly.wr, xr, C, buf(9), T, epilogue::none, xq, stream_);
    gemm(ly.wk, xk, C, buf(10), T, epilogue::none, xq, stream_);
    gemm(ly.wv, xv, C, buf(11), T, epilogue::none, xq, stream_);
    auto lora = [&](const dmatrix& down, const dmatrix& up, const float* in, float* out, epilogue act) {
        gemm(down, in, C, hid, T, act, xq, stream_);
        gemm(up, hid, down.rows, out, T, epilogue::none, xq, stream_);
    };
    lora(ly.w1, ly.w2, xw, buf(12), epilogue::tanh);
    lora(ly.a1, ly.a2, xa, buf(13), epilogue::none);
    lora(ly.g1, ly.g2, xg, buf(14), epilogue::sigmoid);
    if (!first) lora(ly.v1, ly.v2, xv, buf(15), epilogue::none);
    wkv_args a{buf(9), buf(10), buf(11), buf(12), buf(13), buf(14), buf(15), buf(1),
               ly.w0, ly.a0, ly.v0, ly.k_k, ly.k_a, ly.r_k, ly.lnx_w, ly.lnx_b,
               s + 2 * C, buf(16), T, C, N, first};
    const unsigned threads = unsigned((N + 31) / 32 * 32);
    wkv_kernel<<<unsigned(H), threads, shared_bytes_, stream_>>>(a);
    check_launch("wkv_kernel");
    gemm(ly.wo, buf(16), C, x, T, epilogue::add, xq, stream_);
}

void rwkv7_device::channel_mix(const layer_w& ly, float* s, int64_t T) {
    float* x = buf(0);
    float* xn = buf(2);
    float* xk = buf(3);
    float* prev = buf(18);
    float* hid = buf(20);
    block_q8_0* xq = xq_.as<block_q8_0>();
    layer_norm_rows(x, ly.ln2_w, ly.ln2_b, xn, T, C, eps, stream_);
    token_shift(xn, s + C, prev, T, C, stream_);
    lerp_rows(xn, prev, lerp_set{{ly.ffn_lerp_k}, {xk}, 1}, T, C, stream_);
    gemm(ly.ffn_key, xk, C, hid, T, epilogue::relu_sq, xq, stream_);
    gemm(ly.ffn_value, hid, F, x, T, epilogue::add, xq, stream_);
}

void rwkv7_device::run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) {
    float* x = buf(0);
    embed(emb, d_tokens, x, T, stream_);
    if (ln0_w) layer_norm_rows(x, ln0_w, ln0_b, x, T, C, eps, stream_);
    for (int64_t l = 0; l < L; l++) {
        float* s = state + size_t(l) * layer_state();
        time_mix(layers[size_t(l)], l == 0, s, T);
        channel_mix(layers[size_t(l)], s, T);
    }
    if (!logits) return;
    const int64_t rows = all_logits ? T : 1;
    layer_norm_rows(x + (T - rows) * C, ln_out_w, ln_out_b, buf(17), rows, C, eps, stream_);
    gemm(head, buf(17), C, logits, rows, epilogue::none, xq_.as<block_q8_0>(), stream_);
}

} // namespace

std::unique_ptr<device_model> load_rwkv7_device(std::shared_ptr<const gguf_file> f, int device) {
    return std::make_unique<rwkv7_device>(std::move(f), device);
}

} // namespace pyrnn::cuda
