// rwkv5_6.cu — RWKV-5 and RWKV-6 on the device: the same equations, weights and state layout as
// models/rwkv5.cpp and models/rwkv6.cpp (per layer [ att_x (C) | ffn_x (C) | S (H × N × N), S[h][k][v] ]).
//
// The two versions differ only in how a layer makes r, k, v, g and the decay w: RWKV-5 lerps with
// fixed mixes and has a fixed decay; RWKV-6 adds the data-dependent mixes (a LoRA, "ddlerp") and a
// data-dependent decay (another LoRA). Everything after that is shared: one fused kernel per head
// for the recurrence over the chunk's T tokens (the head's N×N state in shared memory), GroupNorm
// and gate; then the output projection, and the channel mix.
#include <algorithm>
#include <vector>

#include "../models/weights.h"
#include "block_math.h"
#include "model_base.h"

namespace pyrnn::cuda {

namespace {

// What a layer of either version holds besides its mixes.
struct common_w {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; // (C)
    const float* u;                             // (C) bonus of the current token
    const float *lnx_w, *lnx_b;                 // (C) GroupNorm(H)
    const float *ffn_lerp_k, *ffn_lerp_r;       // (C)
    dmatrix wr, wk, wv, wg, wo;                 // (C, C); wg empty when ungated (RWKV-5.0)
    dmatrix ffn_key, ffn_value, ffn_recept;     // (F, C), (C, F), (C, C)
};

struct wkv_args {
    const float *r, *k, *v, *g; // [T][C]; g null when ungated
    const float* w;             // RWKV-5: (C) the decay; RWKV-6: [T][C] the decay LoRA's output
    const float* decay;         // RWKV-6: (C) the base, w = exp(−exp(decay + lora)); RWKV-5: null
    const float *u, *lnx_w, *lnx_b;
    float* S_all; // (H, N, N) of this layer's state, key-major
    float* y;     // [T][C]
    int64_t T, C, N;
    float gn_eps;
};

// Block h = head h, thread j = value column j (threads ≥ N idle but take part in the reductions).
// Shared: the head's state as in global memory (S[i][j] at i·N + j: thread j walks its column with
// stride N, consecutive threads on consecutive banks), then r, k, w, u of the current token, then
// 32 doubles of reduction scratch.
__global__ void wkv_kernel(wkv_args p) {
    extern __shared__ float sh[];
    const int64_t N = p.N, h = blockIdx.x, j = threadIdx.x, c = h * N + j;
    const bool live = j < N;
    float* S = sh;
    float *r = S + N * N, *k = r + N, *w = k + N, *u = w + N;
    double* scratch = reinterpret_cast<double*>(sh + ((N * N + 4 * N + 1) & ~int64_t(1))); // 8-byte aligned
    float* Sg = p.S_all + h * N * N;
    if (live) {
        for (int64_t i = 0; i < N; i++) S[i * N + j] = Sg[i * N + j];
        u[j] = p.u[c];
    }
    for (int64_t t = 0; t < p.T; t++) {
        const int64_t tc = t * p.C + c;
        float v_j = 0.0f;
        if (live) {
            r[j] = p.r[tc];
            k[j] = p.k[tc];
            w[j] = p.decay ? expf(-expf(p.decay[c] + p.w[tc])) : p.w[c];
            v_j = p.v[tc];
        }
        __syncthreads();
        float y = live ? rwkv6_wkv_col(S + j, N, r, k, u, w, v_j, N) : 0.0f;
        // GroupNorm of the head (double sums as ops.h), then the gate
        const double mean = block_sum(y, scratch) / double(N);
        const double d = live ? y - mean : 0.0;
        const double var = block_sum(d * d, scratch) / double(N);
        if (live) {
            const float inv = float(1.0 / sqrt(var + double(p.gn_eps)));
            y = (y - float(mean)) * inv * p.lnx_w[c] + p.lnx_b[c];
            p.y[tc] = p.g ? y * p.g[tc] : y;
        }
        // block_sum ends with a barrier: r, k, w may be overwritten for the next token
    }
    if (live) {
        for (int64_t i = 0; i < N; i++) Sg[i * N + j] = S[i * N + j];
    }
}

// RWKV-6's data-dependent mixes: out[j] = x + (prev − x) ⊙ (lerp[j] + lora[j]) for j < 5 (w, k, v, r, g);
// lora block j at lora + j·stride, out block j at out + j·stride.
__global__ void ddlerp_kernel(const float* x, const float* prev, const float* lerp, const float* lora, float* out,
                              int64_t stride, int64_t T, int64_t C) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= T * C) return;
    const float xc = x[i], sx = prev[i] - xc;
    for (int j = 0; j < 5; j++) out[j * stride + i] = xc + sx * (lerp[j * C + i % C] + lora[j * stride + i]);
}

// The model both versions share: hyperparameters, the embedding and head, the common layer weights,
// the work buffers, the channel mix and the chunk's layer loop. A version supplies time_mix() up to
// the recurrence, which it hands to wkv().
class rwkv56_device : public model_base {
  public:
    int64_t n_vocab() const override { return V; }
    int64_t n_embd() const override { return C; }
    int64_t n_layer() const override { return L; }
    size_t state_size() const override { return size_t(L) * layer_state(); }

  protected:
    rwkv56_device(std::shared_ptr<const gguf_file> f, int device) : model_base(std::move(f), device) {}

    // Once the hyperparameters and layers are set: the work buffers for `hidden` floats per token
    // (the widest LoRA or FFN activation) and activations of up to `cols_max` columns to quantize.
    void init_buffers(int64_t hidden, int64_t cols_max);
    dmatrix mat(const matrix& m) { return m.data ? ws_.mat(m, tensor_name(*file_, m)) : dmatrix{}; }
    const float* vec(const float* v) { return ws_.vec(v, size_t(C)); }
    // The hyperparameters, embedding, norms and head that rwkv5_weights and rwkv6_weights share.
    template <typename Weights> void upload_model(const Weights& h);
    template <typename Layer> common_w upload_common(const Layer& h, const float* u, const matrix& ffn_recept);
    float* buf(int i) const { return work_.as<float>() + size_t(i) * size_t(k_chunk * C); } // [k_chunk][C] slots
    float* hidden() const { return buf(k_slots); }
    block_q8_0* xq() const { return xq_.as<block_q8_0>(); }

    // Feeds r, k, v, g (buf 13..16) and the decay through the recurrence, GroupNorm and gate into
    // buf 18, then adds the output projection to the residual x (buf 0).
    void wkv(const common_w& ly, const float* w, const float* decay, float* s, int64_t T);

    static constexpr int k_slots = 20;
    int64_t C = 0, L = 0, N = 0, H = 0, F = 0, V = 0, rescale_every = 0;
    float eps = 1e-5f, gn_eps = 64e-5f;
    dmatrix emb, head;
    const float *ln0_w = nullptr, *ln0_b = nullptr, *ln_out_w = nullptr, *ln_out_b = nullptr;
    std::vector<common_w> common;

  private:
    size_t layer_state() const { return size_t(2 * C + H * N * N); }
    // Buffers 3..18 as the version's time mix leaves them: the layer's r, k, v, g in 13..16.
    virtual void time_mix(int64_t l, float* s, int64_t T) = 0;
    void channel_mix(const common_w& ly, float* s, int64_t T);
    void run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) override;

    device_buffer work_, xq_;
    size_t shared_bytes_ = 0;
};

template <typename Weights>
void rwkv56_device::upload_model(const Weights& h) {
    C = h.C, L = h.L, N = h.N, H = h.H, F = h.F, V = h.V, eps = h.eps;
    emb = mat(h.emb);
    ln0_w = ws_.vec(h.ln0_w, size_t(C)), ln0_b = ws_.vec(h.ln0_b, size_t(C)); // optional
    ln_out_w = vec(h.ln_out_w), ln_out_b = vec(h.ln_out_b);
    head = mat(h.head);
}

template <typename Layer>
common_w rwkv56_device::upload_common(const Layer& h, const float* u, const matrix& ffn_recept) {
    common_w d;
    d.ln1_w = vec(h.ln1_w), d.ln1_b = vec(h.ln1_b), d.ln2_w = vec(h.ln2_w), d.ln2_b = vec(h.ln2_b);
    d.u = vec(u), d.lnx_w = vec(h.lnx_w), d.lnx_b = vec(h.lnx_b);
    d.ffn_lerp_k = vec(h.ffn_lerp_k), d.ffn_lerp_r = vec(h.ffn_lerp_r);
    d.wr = mat(h.wr), d.wk = mat(h.wk), d.wv = mat(h.wv), d.wg = mat(h.wg), d.wo = mat(h.wo);
    d.ffn_key = mat(h.ffn_key), d.ffn_value = mat(h.ffn_value), d.ffn_recept = mat(ffn_recept);
    return d;
}

void rwkv56_device::init_buffers(int64_t hidden, int64_t cols_max) {
    // The head's state tile must fit one block's shared memory (N = 64 in every released model: 17 KB).
    shared_bytes_ = sizeof(float) * size_t(N * N + 4 * N + 2) + 32 * sizeof(double);
    if (N > 1024) { // one thread per value column
        throw cuda_error(arch() + ".wkv.head_size: expected at most 1024 on the device, found " + std::to_string(N));
    }
    allow_shared_memory(wkv_kernel, shared_bytes_, arch() + ".wkv.head_size", N);
    work_ = device_buffer(sizeof(float) * size_t(k_chunk) * size_t(k_slots * C + std::max(hidden, F)));
    xq_ = device_buffer(sizeof(block_q8_0) * size_t(k_chunk) * size_t(std::max({cols_max, C, F}) / QK + 1));
    init_io(V);
}

void rwkv56_device::wkv(const common_w& ly, const float* w, const float* decay, float* s, int64_t T) {
    wkv_args a{buf(13), buf(14), buf(15), ly.wg.data ? buf(16) : nullptr, w, decay, ly.u, ly.lnx_w, ly.lnx_b,
               s + 2 * C, buf(18), T, C, N, gn_eps};
    const unsigned threads = unsigned((N + 31) / 32 * 32);
    wkv_kernel<<<unsigned(H), threads, shared_bytes_, stream_>>>(a);
    check_launch("wkv_kernel");
    gemm(ly.wo, buf(18), C, buf(0), T, epilogue::add, xq(), stream_);
}

// Work slots (each [k_chunk][C]): 0 x, 1 xn, 2 prev, 3..7 mixes, 8..12 LoRA outputs, 13 r, 14 k, 15 v,
// 16 g, 17 decay LoRA, 18 y, 19 xxx / the final norm; then the hidden [k_chunk][max(F, LoRA widths)].
void rwkv56_device::channel_mix(const common_w& ly, float* s, int64_t T) {
    float *x = buf(0), *xn = buf(1), *prev = buf(2), *xk = buf(3), *xr = buf(4), *rr = buf(5), *out = buf(6);
    layer_norm_rows(x, ly.ln2_w, ly.ln2_b, xn, T, C, eps, stream_);
    token_shift(xn, s + C, prev, T, C, stream_);
    lerp_rows(xn, prev, lerp_set{{ly.ffn_lerp_k, ly.ffn_lerp_r}, {xk, xr}, 2}, T, C, stream_);
    gemm(ly.ffn_key, xk, C, hidden(), T, epilogue::relu_sq, xq(), stream_);
    gemm(ly.ffn_value, hidden(), F, out, T, epilogue::none, xq(), stream_);
    gemm(ly.ffn_recept, xr, C, rr, T, epilogue::sigmoid, xq(), stream_);
    add_product(x, rr, out, T * C, stream_);
}

void rwkv56_device::run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) {
    float* x = buf(0);
    embed(emb, d_tokens, x, T, stream_);
    if (ln0_w) layer_norm_rows(x, ln0_w, ln0_b, x, T, C, eps, stream_);
    for (int64_t l = 0; l < L; l++) {
        float* s = state + size_t(l) * layer_state();
        time_mix(l, s, T);
        channel_mix(common[size_t(l)], s, T);
        // the other half of llama.cpp's rescaling: weights were divided when the file was made
        if (rescale_every > 0 && (l + 1) % rescale_every == 0) scale(x, 0.5f, T * C, stream_);
    }
    if (!logits) return;
    const int64_t rows = all_logits ? T : 1;
    layer_norm_rows(x + (T - rows) * C, ln_out_w, ln_out_b, buf(19), rows, C, eps, stream_);
    gemm(head, buf(19), C, logits, rows, epilogue::none, xq(), stream_);
}

// ---- RWKV-5: fixed mixes, fixed decay ------------------------------------------------------------

class rwkv5_device final : public rwkv56_device {
  public:
    rwkv5_device(std::shared_ptr<const gguf_file> f, int device) : rwkv56_device(std::move(f), device) {
        const rwkv5_weights h(*file_, weights_for::device);
        upload_model(h);
        gn_eps = h.gn_eps;
        for (const rwkv5_layer& hl : h.layers) {
            common.push_back(upload_common(hl, hl.u, hl.ffn_recept));
            mixes.push_back({vec(hl.lerp_r), vec(hl.lerp_k), vec(hl.lerp_v), ws_.vec(hl.lerp_g, size_t(C)), vec(hl.w)});
        }
        // h, with the decays and widened host copies, goes at the end of this scope: they are on the device now
        init_buffers(F, F);
    }
    std::string arch() const override { return "rwkv5"; }

  private:
    struct mix_w {
        const float *lerp_r, *lerp_k, *lerp_v, *lerp_g, *w; // (C); lerp_g null when ungated
    };

    void time_mix(int64_t l, float* s, int64_t T) override {
        const common_w& ly = common[size_t(l)];
        const mix_w& m = mixes[size_t(l)];
        float *xn = buf(1), *prev = buf(2), *xr = buf(3), *xk = buf(4), *xv = buf(5), *xg = buf(6);
        layer_norm_rows(buf(0), ly.ln1_w, ly.ln1_b, xn, T, C, eps, stream_);
        token_shift(xn, s, prev, T, C, stream_);
        lerp_rows(xn, prev, lerp_set{{m.lerp_r, m.lerp_k, m.lerp_v, m.lerp_g}, {xr, xk, xv, xg}, m.lerp_g ? 4 : 3},
                  T, C, stream_);
        gemm(ly.wr, xr, C, buf(13), T, epilogue::none, xq(), stream_);
        gemm(ly.wk, xk, C, buf(14), T, epilogue::none, xq(), stream_);
        gemm(ly.wv, xv, C, buf(15), T, epilogue::none, xq(), stream_);
        if (ly.wg.data) gemm(ly.wg, xg, C, buf(16), T, epilogue::silu, xq(), stream_);
        wkv(ly, m.w, nullptr, s, T);
    }

    std::vector<mix_w> mixes;
};

// ---- RWKV-6: data-dependent mixes and decay --------------------------------------------------------

class rwkv6_device final : public rwkv56_device {
  public:
    rwkv6_device(std::shared_ptr<const gguf_file> f, int device) : rwkv56_device(std::move(f), device) {
        const rwkv6_weights h(*file_, weights_for::device);
        upload_model(h);
        rescale_every = h.rescale_every;
        int64_t hidden = 1, cols_max = 1;
        for (const rwkv6_layer& hl : h.layers) {
            common.push_back(upload_common(hl, hl.first, hl.ffn_receptance));
            mix_w m;
            m.lerp_x = vec(hl.lerp_x), m.lerp = ws_.vec(hl.lerp, size_t(5 * C)), m.decay = vec(hl.decay);
            m.mix_w1 = mat(hl.mix_w1), m.decay_w1 = mat(hl.decay_w1), m.decay_w2 = mat(hl.decay_w2);
            for (int j = 0; j < 5; j++) m.mix_w2[j] = mat(hl.mix_w2[j]);
            hidden = std::max({hidden, m.mix_w1.rows, m.decay_w1.rows});
            cols_max = std::max({cols_max, m.mix_w2[0].cols, m.decay_w2.cols});
            mixes.push_back(m);
        }
        // h, with the widened host copies, goes at the end of this scope: they are on the device now
        init_buffers(hidden, cols_max);
    }
    std::string arch() const override { return "rwkv6"; }

  private:
    struct mix_w {
        const float *lerp_x, *lerp, *decay; // (C), (5, C) w k v r g, (C)
        dmatrix mix_w1, mix_w2[5];          // (5·Dm, C), (C, Dm) each
        dmatrix decay_w1, decay_w2;         // (Dd, C), (C, Dd)
    };

    void time_mix(int64_t l, float* s, int64_t T) override {
        const common_w& ly = common[size_t(l)];
        const mix_w& m = mixes[size_t(l)];
        const int64_t Dm = m.mix_w1.rows / 5, stride = k_chunk * C;
        float *xn = buf(1), *prev = buf(2), *xxx = buf(19), *lora = buf(8), *mix = buf(3);
        const float *xw = buf(3), *xk = buf(4), *xv = buf(5), *xr = buf(6), *xg = buf(7);
        layer_norm_rows(buf(0), ly.ln1_w, ly.ln1_b, xn, T, C, eps, stream_);
        token_shift(xn, s, prev, T, C, stream_);
        lerp_rows(xn, prev, lerp_set{{m.lerp_x}, {xxx}, 1}, T, C, stream_);
        // mixes: tanh(xxx · w1) in 5 blocks of Dm, each lifted back to C by its w2[j], then the lerps
        gemm(m.mix_w1, xxx, C, hidden(), T, epilogue::tanh, xq(), stream_);
        for (int j = 0; j < 5; j++) {
            gemm(m.mix_w2[j], hidden() + j * Dm, 5 * Dm, lora + j * stride, T, epilogue::none, xq(), stream_);
        }
        ddlerp_kernel<<<blocks_for(T * C, 256), 256, 0, stream_>>>(xn, prev, m.lerp, lora, mix, stride, T, C);
        check_launch("ddlerp_kernel");
        gemm(ly.wr, xr, C, buf(13), T, epilogue::none, xq(), stream_);
        gemm(ly.wk, xk, C, buf(14), T, epilogue::none, xq(), stream_);
        gemm(ly.wv, xv, C, buf(15), T, epilogue::none, xq(), stream_);
        gemm(ly.wg, xg, C, buf(16), T, epilogue::silu, xq(), stream_);
        // the decay LoRA; w = exp(−exp(decay + ·)) is taken in the recurrence kernel
        gemm(m.decay_w1, xw, C, hidden(), T, epilogue::tanh, xq(), stream_);
        gemm(m.decay_w2, hidden(), m.decay_w1.rows, buf(17), T, epilogue::none, xq(), stream_);
        wkv(ly, buf(17), m.decay, s, T);
    }

    std::vector<mix_w> mixes;
};

} // namespace

std::unique_ptr<device_model> load_rwkv5_device(std::shared_ptr<const gguf_file> f, int device) {
    return std::make_unique<rwkv5_device>(std::move(f), device);
}

std::unique_ptr<device_model> load_rwkv6_device(std::shared_ptr<const gguf_file> f, int device) {
    return std::make_unique<rwkv6_device>(std::move(f), device);
}

} // namespace pyrnn::cuda
