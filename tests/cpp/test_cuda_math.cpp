// test_cuda_math.cpp — the CUDA backend's per-element, per-block and per-row math
// (csrc/cuda/block_math.h), compiled here by the host compiler, against the CPU reference. This is
// the part of the GPU path that can be verified without a GPU: what the kernels compute per thread.
// A thread layout (which thread sums which blocks) is checked by emulating the GEMM kernel's lane
// order. What each check proves is said beside it; all but the lane-order check demand equal bits.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "cuda/block_math.h"
#include "kernels/kernels.h"
#include "models/ssm_ops.h"
#include "quant.h"

using namespace pyrnn;
namespace cu = pyrnn::cuda;

namespace {

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

bool same_bits(float a, float b) { return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b)); }

// splitmix64: the same numbers everywhere. Uniform in [−1, 1) times a scale 2⁻⁴..2³ per 32 values.
struct rng {
    uint64_t s;
    explicit rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ULL + 1) {}
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    float uniform() { return float(int64_t(next() >> 40) - (int64_t(1) << 23)) / float(1 << 23); }
    std::vector<float> floats(size_t n) {
        std::vector<float> v(n);
        float scale = 1.0f;
        for (size_t i = 0; i < n; i++) {
            if (i % QK == 0) scale = std::ldexp(1.0f, int(next() % 8) - 4);
            v[i] = scale * uniform();
        }
        return v;
    }
};

// Every half converts to the bits quant.cpp's fp16_to_fp32 gives (all 65536, NaNs included).
void check_half_to_float() {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) bad += bits(cu::half_to_float(uint16_t(h))) != bits(fp16_to_fp32(uint16_t(h)));
    check(bad == 0, "half_to_float: " + std::to_string(bad) + " of 65536 halves differ from fp16_to_fp32");
}

// float → half equals fp32_to_fp16 on a stride through all 2³² patterns (every exponent, both signs,
// NaN, inf) and on every pattern within ±64 of each rounding boundary (ties, overflow, subnormal edge).
void check_float_to_half() {
    int bad = 0;
    auto one = [&](uint32_t u) {
        float f;
        std::memcpy(&f, &u, 4);
        bad += cu::float_to_half(f) != fp32_to_fp16(f);
    };
    for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 4093) one(uint32_t(u));
    const uint32_t edges[] = {0x477ff000u, 0x38800000u, 0x33000000u, 0x7f800000u, 0x3f801000u, 0x3f803000u, 0u};
    for (uint32_t e : edges) {
        for (int d = -64; d <= 64; d++) {
            one(e + uint32_t(d));
            one((e + uint32_t(d)) | 0x80000000u);
        }
    }
    check(bad == 0, "float_to_half: " + std::to_string(bad) + " patterns differ from fp32_to_fp16");
}

const uint32_t kTypes[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0};

// Row sizes and every element of a row read as quant.h's row_bytes and to_f32 (equal bits).
void check_elements() {
    rng r(1);
    for (uint32_t t : kTypes) {
        for (int64_t n : {32, 96, 4096 + 32}) {
            check(cu::row_bytes_device(t, n) == row_bytes(t, uint64_t(n)),
                  std::string("row_bytes_device ") + find_type(t)->name);
            const std::vector<float> x = r.floats(size_t(n));
            std::vector<uint8_t> q(row_bytes(t, uint64_t(n)));
            quantize(t, x.data(), q.data(), 1, n);
            std::vector<float> ref(static_cast<size_t>(n));
            to_f32(t, q.data(), ref.data(), n);
            int bad = 0;
            for (int64_t i = 0; i < n; i++) bad += !same_bits(cu::load_element(t, q.data(), i), ref[size_t(i)]);
            check(bad == 0, std::string("load_element ") + find_type(t)->name + " n=" + std::to_string(n));
        }
    }
}

// Activation blocks quantize to the bytes of quantize_row_q8_0, including all-zero blocks, huge
// values, and blocks holding NaN or ±inf (whose scale must come out NaN, as on the CPU).
void check_quantize_q8_0() {
    rng r(2);
    std::vector<std::vector<float>> cases;
    for (int i = 0; i < 200; i++) cases.push_back(r.floats(QK));
    cases.push_back(std::vector<float>(QK, 0.0f));
    std::vector<float> big = r.floats(QK);
    for (float& v : big) v *= 1e30f;
    cases.push_back(big);
    for (float special : {NAN, INFINITY, -INFINITY}) {
        std::vector<float> v = r.floats(QK);
        v[7] = special;
        cases.push_back(v);
    }
    int bad = 0;
    for (const auto& x : cases) {
        block_q8_0 a{}, b{};
        cu::quantize_block_q8_0(x.data(), &a);
        quantize_row_q8_0(x.data(), &b, QK);
        bad += std::memcmp(&a, &b, sizeof a) != 0;
    }
    check(bad == 0, "quantize_block_q8_0: " + std::to_string(bad) + " blocks differ from quantize_row_q8_0");
}

// One output of the GEMM from block_math, summed two ways: in block order (must equal ref.cpp's
// gemm bit for bit: same products, same order) and in the device kernel's order — lane l of a warp
// sums blocks l, l+32, ..., then a butterfly (xor 16, 8, 4, 2, 1) adds the lanes — which must stay
// within the float summation bound 2·(k+8)·2⁻²⁴·Σ|terms| of the exact sum.
void check_gemm() {
    const kernel_table* ref = kernels_for("ref");
    rng r(3);
    for (uint32_t t : kTypes) {
        const bool quant = t == GGML_TYPE_Q8_0 || t == GGML_TYPE_Q4_0;
        for (int64_t cols : {32, 96, 160, 4096 + 32}) {
            const int64_t rows = 7, n = 3;
            const std::vector<float> wf = r.floats(size_t(rows * cols)), x = r.floats(size_t(n * cols));
            std::vector<uint8_t> w(rows * row_bytes(t, uint64_t(cols)));
            quantize(t, wf.data(), w.data(), rows, cols);
            std::vector<float> y(size_t(rows * n));
            ref->gemm[t](w.data(), x.data(), y.data(), rows, cols, n, rows);
            const int64_t nb = cols / QK, k = quant ? nb : cols; // terms per output
            std::vector<block_q8_0> xq(size_t(n * nb));
            for (int64_t i = 0; i < n; i++) quantize_row_q8_0(x.data() + i * cols, xq.data() + i * nb, cols);
            int bad_seq = 0, bad_lane = 0;
            for (int64_t row = 0; row < rows; row++) {
                const uint8_t* wr = w.data() + row * row_bytes(t, uint64_t(cols));
                for (int64_t tok = 0; tok < n; tok++) {
                    auto term = [&](int64_t j) -> float {
                        if (t == GGML_TYPE_Q8_0) return cu::dot_block(reinterpret_cast<const block_q8_0*>(wr)[j], xq[size_t(tok * nb + j)]);
                        if (t == GGML_TYPE_Q4_0) return cu::dot_block(reinterpret_cast<const block_q4_0*>(wr)[j], xq[size_t(tok * nb + j)]);
                        return cu::load_element(t, wr, j) * x[size_t(tok * cols + j)];
                    };
                    float seq = 0.0f, lane[32] = {};
                    double exact = 0.0, abs_sum = 0.0;
                    for (int64_t j = 0; j < k; j++) {
                        const float v = term(j);
                        seq += v;
                        lane[j % 32] += v;
                        exact += v;
                        abs_sum += std::fabs(double(v));
                    }
                    for (int o = 16; o > 0; o >>= 1) {
                        float next[32];
                        for (int l = 0; l < 32; l++) next[l] = lane[l] + lane[l ^ o];
                        std::memcpy(lane, next, sizeof lane);
                    }
                    const float want = y[size_t(tok * rows + row)];
                    bad_seq += !same_bits(seq, want);
                    bad_lane += std::fabs(double(lane[0]) - exact) > 2.0 * double(k + 8) * std::ldexp(1.0, -24) * abs_sum;
                }
            }
            const std::string what = std::string(find_type(t)->name) + " cols=" + std::to_string(cols);
            check(bad_seq == 0, "gemm in block order differs from ref.cpp: " + what);
            check(bad_lane == 0, "gemm in the kernel's lane order exceeds the summation bound: " + what);
        }
    }
}

// RWKV-7 state rows: models/rwkv7.cpp's loop (transcribed below as the spec) against rwkv7_wkv_row
// over a whole head, both on the CPU's row-major S and on the kernel's transposed shared-memory tile
// (stride N); several tokens in a row, equal bits.
void check_rwkv7_row() {
    rng r(4);
    for (int64_t N : {1, 7, 64}) {
        std::vector<float> S0 = r.floats(size_t(N * N));
        std::vector<float> S_cpu = S0, S_row = S0, S_tile(size_t(N * N));
        for (int64_t i = 0; i < N; i++) {
            for (int64_t j = 0; j < N; j++) S_tile[size_t(j * N + i)] = S0[size_t(i * N + j)];
        }
        int bad = 0;
        for (int tok = 0; tok < 3; tok++) {
            std::vector<float> w = r.floats(size_t(N)), kk = r.floats(size_t(N)), a = r.floats(size_t(N)),
                               k = r.floats(size_t(N)), rr = r.floats(size_t(N)), v = r.floats(size_t(N));
            for (float& e : w) e = std::exp(-0.606531f * (0.5f + 0.5f * e)); // a decay in (0, 1)
            for (int64_t i = 0; i < N; i++) { // models/rwkv7.cpp time_mix, one head
                float* Si = &S_cpu[size_t(i * N)];
                float sa = 0.0f;
                for (int64_t j = 0; j < N; j++) sa -= Si[j] * kk[size_t(j)];
                float yi = 0.0f;
                for (int64_t j = 0; j < N; j++) {
                    Si[j] = Si[j] * w[size_t(j)] + sa * kk[size_t(j)] * a[size_t(j)] + v[size_t(i)] * k[size_t(j)];
                    yi += Si[j] * rr[size_t(j)];
                }
                const float y1 = cu::rwkv7_wkv_row(&S_row[size_t(i * N)], 1, w.data(), kk.data(), a.data(), k.data(),
                                                   rr.data(), v[size_t(i)], N);
                const float y2 = cu::rwkv7_wkv_row(&S_tile[size_t(i)], N, w.data(), kk.data(), a.data(), k.data(),
                                                   rr.data(), v[size_t(i)], N);
                bad += !same_bits(y1, yi) + !same_bits(y2, yi);
            }
        }
        for (int64_t i = 0; i < N; i++) {
            for (int64_t j = 0; j < N; j++) {
                bad += !same_bits(S_row[size_t(i * N + j)], S_cpu[size_t(i * N + j)]);
                bad += !same_bits(S_tile[size_t(j * N + i)], S_cpu[size_t(i * N + j)]);
            }
        }
        check(bad == 0, "rwkv7_wkv_row N=" + std::to_string(N) + ": " + std::to_string(bad) + " values differ");
    }
}

// RWKV-4 channel steps: models/rwkv4.cpp's loop (transcribed as the spec, std::max and std::exp)
// against rwkv4_wkv_step over 6 tokens from the initial pp = −1e30, decays w = −exp(d) for d in
// [−6, 4) and keys of several units (the max trick's both branches); equal bits for wkv and state.
void check_rwkv4_step() {
    rng r(10);
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        float aa = 0.0f, bb = 0.0f, pp = -1e30f, da = 0.0f, db = 0.0f, dp = -1e30f;
        const float w = -std::exp(5.0f * r.uniform() - 1.0f), u = 2.5f * r.uniform();
        for (int tok = 0; tok < 6; tok++) {
            const float k = 8.0f * r.uniform(), v = r.uniform();
            float ww = u + k;
            float p = std::max(pp, ww);
            float e1 = std::exp(pp - p);
            float e2 = std::exp(ww - p);
            const float wkv = (e1 * aa + e2 * v) / (e1 * bb + e2);
            ww = w + pp;
            p = std::max(ww, k);
            e1 = std::exp(ww - p);
            e2 = std::exp(k - p);
            aa = e1 * aa + e2 * v;
            bb = e1 * bb + e2;
            pp = p;
            bad += !same_bits(cu::rwkv4_wkv_step(da, db, dp, w, u, k, v), wkv);
            bad += !same_bits(da, aa) + !same_bits(db, bb) + !same_bits(dp, pp);
        }
    }
    check(bad == 0, "rwkv4_wkv_step: " + std::to_string(bad) + " values differ");
}

// RWKV-5/6 state columns: the loop models/rwkv5.cpp and models/rwkv6.cpp share (transcribed below
// as the spec, row by row over the key index i) against rwkv6_wkv_col column by column on the same
// row-major S[k][v] (stride N: the kernel's shared tile is laid out the same); several tokens in a
// row, decays from full forgetting (0) to almost none, negative bonuses; equal bits.
void check_rwkv6_col() {
    rng r(6);
    for (int64_t N : {1, 7, 64}) {
        std::vector<float> S_cpu = r.floats(size_t(N * N)), S_dev = S_cpu;
        int bad = 0;
        for (int tok = 0; tok < 3; tok++) {
            std::vector<float> w = r.floats(size_t(N)), u = r.floats(size_t(N)), k = r.floats(size_t(N)),
                               rr = r.floats(size_t(N)), v = r.floats(size_t(N)), y(size_t(N), 0.0f);
            for (float& e : w) e = std::exp(-std::exp(4.0f * e)); // exp(−exp(d)), d in [−4, 4): 0.98 .. 1e−24
            if (N > 1) w[1] = 0.0f;                                // an underflowed decay
            for (int64_t i = 0; i < N; i++) { // models/rwkv6.cpp time_mix, one head
                float* Si = &S_cpu[size_t(i * N)];
                for (int64_t j = 0; j < N; j++) {
                    const float kv = k[size_t(i)] * v[size_t(j)];
                    y[size_t(j)] += rr[size_t(i)] * (u[size_t(i)] * kv + Si[j]);
                    Si[j] = kv + w[size_t(i)] * Si[j];
                }
            }
            for (int64_t j = 0; j < N; j++) {
                const float yj = cu::rwkv6_wkv_col(&S_dev[size_t(j)], N, rr.data(), k.data(), u.data(), w.data(),
                                                   v[size_t(j)], N);
                bad += !same_bits(yj, y[size_t(j)]);
            }
        }
        for (size_t i = 0; i < S_cpu.size(); i++) bad += !same_bits(S_dev[i], S_cpu[i]);
        check(bad == 0, "rwkv6_wkv_col N=" + std::to_string(N) + ": " + std::to_string(bad) + " values differ");
    }
}

// Mamba-1 scan: models/mamba.cpp's inner loop (transcribed as the spec) against mamba_scan_step
// over several tokens; equal bits for the outputs and the state.
void check_mamba_step() {
    rng r(5);
    for (int64_t N : {1, 16, 17}) {
        std::vector<float> h_cpu = r.floats(size_t(N)), h_dev = h_cpu, A = r.floats(size_t(N));
        for (float& e : A) e = -std::exp(e); // A = −exp(A_log) < 0
        int bad = 0;
        for (int tok = 0; tok < 4; tok++) {
            const std::vector<float> B = r.floats(size_t(N)), Cm = r.floats(size_t(N));
            float dt = r.uniform();
            softplus_ref(&dt, &dt, 1);
            const float u = r.uniform();
            float yc = 0.0f;
            for (int64_t k = 0; k < N; k++) {
                h_cpu[size_t(k)] = h_cpu[size_t(k)] * std::exp(dt * A[size_t(k)]) + dt * B[size_t(k)] * u;
                yc += h_cpu[size_t(k)] * Cm[size_t(k)];
            }
            bad += !same_bits(cu::mamba_scan_step(h_dev.data(), A.data(), B.data(), Cm.data(), dt, u, N), yc);
        }
        for (int64_t k = 0; k < N; k++) bad += !same_bits(h_dev[size_t(k)], h_cpu[size_t(k)]);
        check(bad == 0, "mamba_scan_step N=" + std::to_string(N));
    }
    int bad = 0; // activations: the same bits as the reference kernels on a sweep that crosses softplus's threshold
    for (int i = -4000; i <= 4000; i++) {
        const float v = float(i) * 0.01f;
        float sp, si;
        softplus_ref(&v, &sp, 1);
        silu_ref(&v, &si, 1);
        bad += !same_bits(cu::softplus_f(v), sp) + !same_bits(cu::silu_f(v), si);
    }
    check(bad == 0, "softplus_f / silu_f differ from softplus_ref / silu_ref");
}

// Mamba-2 scan rows: models/mamba2.cpp's loop for one head (transcribed as the spec, with the dot
// product summed in order as dot_f32_ref; the CPU's SIMD dot sums in another order) against
// mamba2_scan_row over several tokens; equal bits for the outputs and the state.
void check_mamba2_row() {
    rng r(7);
    for (int64_t N : {1, 16, 17, 128}) {
        const int64_t P = 3;
        std::vector<float> S_cpu = r.floats(size_t(P * N)), S_dev = S_cpu;
        const float A = -std::exp(r.uniform());
        int bad = 0;
        for (int tok = 0; tok < 4; tok++) {
            const std::vector<float> B = r.floats(size_t(N)), Cm = r.floats(size_t(N)), x = r.floats(size_t(P));
            float dt = r.uniform();
            softplus_ref(&dt, &dt, 1);
            const float dA = std::exp(dt * A);
            std::vector<float> dtB(static_cast<size_t>(N));
            for (int64_t k = 0; k < N; k++) dtB[size_t(k)] = dt * B[size_t(k)];
            for (int64_t p = 0; p < P; p++) {
                float* Sp = &S_cpu[size_t(p * N)];
                for (int64_t k = 0; k < N; k++) Sp[k] = Sp[k] * dA + dtB[size_t(k)] * x[size_t(p)];
                float yc = 0.0f;
                for (int64_t k = 0; k < N; k++) yc += Sp[k] * Cm[size_t(k)];
                const float yd = cu::mamba2_scan_row(&S_dev[size_t(p * N)], B.data(), Cm.data(), dt, dA, x[size_t(p)], N);
                bad += !same_bits(yd, yc);
            }
        }
        for (size_t i = 0; i < S_cpu.size(); i++) bad += !same_bits(S_dev[i], S_cpu[i]);
        check(bad == 0, "mamba2_scan_row N=" + std::to_string(N) + ": " + std::to_string(bad) + " values differ");
    }
}

// RetNet, one head over 64 tokens: models/retnet.cpp retention_step (transcribed as the spec,
// its dot summed in order) against retnet_scale_step + retnet_row_part run as the kernel runs them
// (32 lanes, key channel j on lane j % 32, the lanes' partial sums added in the warp's butterfly
// order). The normaliser, the update factors and every state element must have equal bits (the
// update is elementwise); an output may differ only by summation order, within the bound of
// check_gemm. dk = 1, 37 and 256 (fewer, not a multiple of, and a multiple of 32 channels).
void check_retnet_rows() {
    rng r(8);
    for (int64_t dk : {1, 37, 256}) {
        const int64_t dv = 3;
        std::vector<float> S_cpu = r.floats(size_t(dv * dk)), S_dev = S_cpu;
        float s_cpu = 0.0f, s_dev = 0.0f; // the first token: scale 0, as in a fresh state
        int bad = 0, bad_sum = 0;
        for (int tok = 0; tok < 64; tok++) {
            const float gamma = 1.0f - std::ldexp(1.0f, -5 - tok % 4); // torchscale's γ of heads 0..3
            const std::vector<float> k = r.floats(size_t(dk)), q = r.floats(size_t(dk)), v = r.floats(size_t(dv));
            const float s_new = s_cpu * gamma + 1.0f, root = std::sqrt(s_new);
            const float a_cpu = std::sqrt(s_cpu) * gamma / root, inv_cpu = 1.0f / root;
            s_cpu = s_new;
            float a = 0.0f, inv = 0.0f;
            cu::retnet_scale_step(s_dev, gamma, a, inv);
            bad += !same_bits(s_dev, s_cpu) + !same_bits(a, a_cpu) + !same_bits(inv, inv_cpu);
            for (int64_t i = 0; i < dv; i++) {
                float* Si = &S_cpu[size_t(i * dk)];
                const float vi = v[size_t(i)] * inv_cpu;
                double exact = 0.0, abs_sum = 0.0;
                for (int64_t j = 0; j < dk; j++) {
                    Si[j] = Si[j] * a_cpu + vi * k[size_t(j)];
                    exact += double(Si[j]) * q[size_t(j)];
                    abs_sum += std::fabs(double(Si[j]) * q[size_t(j)]);
                }
                float lane[32];
                for (int l = 0; l < 32; l++) {
                    lane[l] = cu::retnet_row_part(&S_dev[size_t(i * dk)], k.data(), q.data(), a, v[size_t(i)] * inv, l,
                                                  32, dk);
                }
                for (int o = 16; o > 0; o >>= 1) {
                    float next[32];
                    for (int l = 0; l < 32; l++) next[l] = lane[l] + lane[l ^ o];
                    std::memcpy(lane, next, sizeof lane);
                }
                bad_sum += std::fabs(double(lane[0]) - exact) > 2.0 * double(dk + 8) * std::ldexp(1.0, -24) * abs_sum;
            }
        }
        for (size_t e = 0; e < S_cpu.size(); e++) bad += !same_bits(S_dev[e], S_cpu[e]);
        check(bad == 0, "retnet state dk=" + std::to_string(dk) + ": " + std::to_string(bad) + " values differ");
        check(bad_sum == 0, "retnet outputs dk=" + std::to_string(dk) + " exceed the summation bound");
    }
}

// RetNet's rotation and GLU: models/retnet.cpp rotate and ffn (transcribed as the spec) against
// retnet_rotate_pair (positions 0 .. 2^20, where float(n)·θ is large) and retnet_glu (every
// activation, arguments over ±8); equal bits.
void check_retnet_elements() {
    rng r(9);
    int bad = 0;
    for (uint32_t pos : {0u, 1u, 77u, 4095u, 1u << 20}) {
        for (int pair = 0; pair < 64; pair++) {
            const float x0 = r.uniform(), x1 = r.uniform(), th0 = std::fabs(r.uniform()), th1 = std::fabs(r.uniform());
            const float n = float(pos);
            const float c0 = std::cos(n * th0), s0 = std::sin(n * th0), c1 = std::cos(n * th1), s1 = std::sin(n * th1);
            const float y0 = x0 * c0 - x1 * s0, y1 = x1 * c1 + x0 * s1;
            float d0 = x0, d1 = x1;
            cu::retnet_rotate_pair(d0, d1, n, th0, th1);
            bad += !same_bits(d0, y0) + !same_bits(d1, y1);
        }
    }
    for (int i = 0; i < 4096; i++) {
        const float z = 8.0f * r.uniform(), b = r.uniform();
        const float gelu = 0.5f * z * (1.0f + std::erf(z * 0.70710678118654752f));
        const float silu = z * (1.0f / (1.0f + std::exp(-z)));
        const float relu = z > 0.0f ? z : 0.0f;
        bad += !same_bits(cu::retnet_glu(0, z, b), gelu * b) + !same_bits(cu::retnet_glu(1, z, b), silu * b) +
               !same_bits(cu::retnet_glu(2, z, b), relu * b);
    }
    check(bad == 0, "retnet_rotate_pair / retnet_glu: " + std::to_string(bad) + " values differ");
}

// Causal conv + SiLU per channel against ssm_ops.h causal_conv then silu_ref (the CPU's own code), over
// kernel widths and chunk lengths shorter and longer than the carried window; outputs and carried
// state, equal bits.
void check_conv() {
    rng r(6);
    for (int64_t K : {1, 2, 4}) {
        for (int64_t T : {1, 2, 3, 7}) {
            const int64_t ch = 5, stride = 2 * ch; // as Mamba's xz rows: x part first
            const std::vector<float> x = r.floats(size_t(T * stride)), w = r.floats(size_t(ch * K)), b = r.floats(size_t(ch));
            std::vector<float> st_cpu = r.floats(size_t(ch * (K - 1))), st_dev = st_cpu;
            std::vector<float> out_cpu(size_t(T * ch)), out_dev(size_t(T * ch));
            ssm::causal_conv(x.data(), stride, w.data(), b.data(), st_cpu.data(), out_cpu.data(), T, ch, K);
            silu_ref(out_cpu.data(), out_cpu.data(), T * ch);
            for (int64_t c = 0; c < ch; c++) {
                cu::conv_silu_channel(x.data() + c, stride, w.data() + c * K, b[size_t(c)], st_dev.data() + c * (K - 1),
                                      out_dev.data() + c, ch, T, K);
            }
            int bad = 0;
            for (size_t i = 0; i < out_cpu.size(); i++) bad += !same_bits(out_cpu[i], out_dev[i]);
            for (size_t i = 0; i < st_cpu.size(); i++) bad += !same_bits(st_cpu[i], st_dev[i]);
            check(bad == 0, "conv_silu_channel K=" + std::to_string(K) + " T=" + std::to_string(T));
        }
    }
}

} // namespace

int main() {
    check_half_to_float();
    check_float_to_half();
    check_elements();
    check_quantize_q8_0();
    check_gemm();
    check_rwkv7_row();
    check_rwkv4_step();
    check_rwkv6_col();
    check_mamba_step();
    check_mamba2_row();
    check_retnet_rows();
    check_retnet_elements();
    check_conv();
    return report("test_cuda_math");
}
