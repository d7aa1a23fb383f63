// ops.h — the small operations every architecture shares, over rows of T tokens.
// Plain loops (the compiler vectorises them); the heavy work — matrix products — goes through the
// kernel table. Shapes: x is [T][n] row-major unless noted.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../kernels/kernels.h"
#include "../kernels/packed.h"
#include "../threads.h"
#include "model.h"

namespace pyrnn {

// Rows [r0, r1) of y = W · x for T tokens, into y (row r0 of token 0; token stride ldy): the rows
// the loader packed (kernels/packed.h) with the packed kernel, the others from the file's bytes.
// r0 must be a multiple of PACK_ROWS where it falls among the packed rows.
inline void gemm_rows(const matrix& w, int64_t r0, int64_t r1, const float* x, float* y, int64_t T, int64_t ldy) {
    const kernel_table& k = kernels();
    const int64_t p1 = std::min(r1, w.packed_rows);
    if (r0 < p1) {
        const uint8_t* groups = w.packed + uint64_t(r0 / PACK_ROWS) * packed_group_bytes(w.type, w.cols);
        k.packed[w.type](groups, x, y, p1 - r0, w.cols, T, ldy);
    }
    const int64_t u0 = std::max(r0, w.packed_rows);
    if (u0 < r1) {
        const auto* rows = static_cast<const uint8_t*>(w.data) + uint64_t(u0) * row_bytes(w.type, uint64_t(w.cols));
        k.gemm[w.type](rows, x, y + (u0 - r0), r1 - u0, w.cols, T, ldy);
    }
}

// y[t] = W · x[t] for each of T tokens: x [T][w.cols] → y [T][w.rows]. Decode (few tokens): the
// weight rows are split over the current pool's threads, each row read once for all T tokens, in
// slices of whole packed groups. Prefill (T ≥ 32): the tokens are split instead, in slices that are
// multiples of 8 (the kernels' token tile, so each token meets the same code path as in one call and
// the bits do not depend on the thread count); each thread quantizes only its own tokens'
// activations (a row split would make every task quantize all T of them) and the weights, read once
// per thread, stay in cache.
inline void matmul(const matrix& w, const float* x, float* y, int64_t T) {
    thread_pool* pool = current_pool();
    if (pool != nullptr && T >= 32) {
        const int64_t per = ((T + pool->size() - 1) / pool->size() + 7) / 8 * 8;
        const int n_slices = int((T + per - 1) / per);
        pool->run(n_slices, [&](int i) {
            const int64_t t0 = i * per, t1 = std::min(T, t0 + per);
            gemm_rows(w, 0, w.rows, x + t0 * w.cols, y + t0 * w.rows, t1 - t0, w.rows);
        });
        return;
    }
    // One slice of rows per thread: a quantized kernel quantizes x at every call, so more tasks than
    // threads would repeat that work (at C = 768, ~4 µs against ~3 µs for a 96-row q8_0 slice),
    // while one per thread does it concurrently, in the time of once.
    const int64_t min_rows = 32; // below this a task costs more to hand out than to run
    const int n_tasks = pool ? int(std::min<int64_t>(pool->size(), (w.rows + min_rows - 1) / min_rows)) : 1;
    if (n_tasks <= 1) {
        gemm_rows(w, 0, w.rows, x, y, T, w.rows);
        return;
    }
    const int64_t per = ((w.rows + n_tasks - 1) / n_tasks + PACK_ROWS - 1) / PACK_ROWS * PACK_ROWS;
    pool->run(n_tasks, [&](int i) {
        const int64_t r0 = i * per, r1 = std::min(w.rows, r0 + per);
        if (r0 < r1) gemm_rows(w, r0, r1, x, y + r0, T, w.rows);
    });
}

// Row r of a matrix (an embedding lookup), widened to float: out has w.cols elements.
inline void get_row(const matrix& w, int64_t r, float* out) {
    const auto* base = static_cast<const uint8_t*>(w.data);
    to_f32(w.type, base + uint64_t(r) * row_bytes(w.type, uint64_t(w.cols)), out, w.cols);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// fn(i0, i1) over slices of [0, n) on the current pool's threads (the recurrences: heads or channels
// are independent). Each index is handled whole by one thread, so results do not depend on the
// thread count.
template <typename Fn>
void parallel_for(int64_t n, Fn fn) {
    thread_pool* pool = current_pool();
    const int n_tasks = pool ? int(std::min<int64_t>(pool->size(), n)) : 1;
    if (n_tasks <= 1) {
        fn(int64_t(0), n);
        return;
    }
    const int64_t per = (n + n_tasks - 1) / n_tasks;
    pool->run(n_tasks, [&](int i) {
        const int64_t i0 = i * per, i1 = std::min(n, i0 + per);
        if (i0 < i1) fn(i0, i1);
    });
}

// fn(t) for each of T tokens, on the current pool's threads (elementwise work, independent per token:
// the bits do not depend on the thread count). One token (decode) runs inline.
template <typename Fn>
void for_tokens(int64_t T, Fn fn) {
    parallel_for(T, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) fn(t);
    });
}

// LayerNorm over n features of one row (biased variance, as torch), y may alias x.
inline void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= double(n);
    double var = 0.0;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= double(n);
    const float m = float(mean), inv = float(1.0 / std::sqrt(var + double(eps)));
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * inv * w[i] + b[i];
}

// LayerNorm of each of T rows.
inline void layer_norm_rows(const float* x, const float* w, const float* b, float* y, int64_t T, int64_t n, float eps) {
    for (int64_t t = 0; t < T; t++) layer_norm(x + t * n, w, b, y + t * n, n, eps);
}

// RMSNorm over n features: x · rsqrt(mean(x²) + eps) · w (no affine when w is null). y may alias x.
inline void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += double(x[i]) * x[i];
    const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * inv * (w ? w[i] : 1.0f);
}

inline void rms_norm_rows(const float* x, const float* w, float* y, int64_t T, int64_t n, float eps) {
    for (int64_t t = 0; t < T; t++) rms_norm(x + t * n, w, y + t * n, n, eps);
}

// GroupNorm of one row of G groups of n/G features each, affine over all n.
inline void group_norm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t G, float eps) {
    const int64_t g_n = n / G;
    for (int64_t g = 0; g < G; g++) {
        const int64_t o = g * g_n;
        double mean = 0.0;
        for (int64_t i = 0; i < g_n; i++) mean += x[o + i];
        mean /= double(g_n);
        double var = 0.0;
        for (int64_t i = 0; i < g_n; i++) var += (x[o + i] - mean) * (x[o + i] - mean);
        var /= double(g_n);
        const float m = float(mean), inv = float(1.0 / std::sqrt(var + double(eps)));
        for (int64_t i = 0; i < g_n; i++) y[o + i] = (x[o + i] - m) * inv * w[o + i] + b[o + i];
    }
}

// Token shift: prev[t] = t ? x[t-1] : carry; then carry ← x[T-1]. x, prev: [T][n].
inline void token_shift(const float* x, float* prev, float* carry, int64_t T, int64_t n) {
    for (int64_t i = 0; i < n; i++) prev[i] = carry[i];
    for (int64_t t = 1; t < T; t++) {
        for (int64_t i = 0; i < n; i++) prev[t * n + i] = x[(t - 1) * n + i];
    }
    for (int64_t i = 0; i < n; i++) carry[i] = x[(T - 1) * n + i];
}

// The logits a chunk contributes. x holds the chunk's T tokens [T][C] after the last layer; the
// chunk starts at token `start` of an n-token call. With all_logits every token's logits go to
// logits + start·V; otherwise only the call's last token's, when this chunk holds it.
// norm_rows(in, out, rows) applies the model's final norm.
template <typename NormRows>
void chunk_logits(const float* x, int64_t T, int64_t C, size_t start, size_t n, bool all_logits, const matrix& head,
                  float* logits, NormRows norm_rows) {
    if (!all_logits && start + size_t(T) < n) return;
    const int64_t first = all_logits ? 0 : T - 1;
    std::vector<float> xo(size_t((T - first) * C));
    norm_rows(x + first * C, xo.data(), T - first);
    matmul(head, xo.data(), all_logits ? logits + int64_t(start) * head.rows : logits, T - first);
}

} // namespace pyrnn
