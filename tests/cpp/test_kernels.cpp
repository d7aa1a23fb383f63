// test_kernels.cpp — every kernel table this CPU runs against an exact model of the spec, on odd
// sizes, plus which ISA dispatch chose. Plain C++17, no framework; ctest runs it natively and, for
// AArch64 cross builds, under qemu once per emulated CPU.
//
//   test_kernels                      # checks every ISA in available_isas(); the best must be active
//   test_kernels --expect-isa neon    # ... and the active table must be "neon" (fails otherwise)
//   PYRNN_ISA=ref test_kernels --expect-isa ref --dispatch-only   # forcing works; no kernel runs
//
// The spec (ref.cpp): y[t][r] = Σ_c W[r,c]·X[t][c]; for quantized W, X is first quantized to 8 bits
// per block (q8_0, or q8_1 for the types with a minimum) and each block adds
// d_w·d_x·Σ q_w·q_x (+ m_w·s_x). The test evaluates that in double from the raw blocks, then
// asserts for the reference and every ISA:
//   |y − y_exact| ≤ 2·(k + 8)·2⁻²⁴·S
// where S is the same sum over absolute values of every product and k the number of terms
// (cols, or blocks): the worst-case float summation bound (γ_k, Higham) in any order, doubled for
// the rounding of the products and scales. It does not depend on the ISA's summation order, so one
// bound serves every kernel. Output cells outside the kernel's rows (ldy > rows) must stay untouched.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "quant.h"

using namespace pyrnn;

namespace {

constexpr double kUnit = 1.0 / (1 << 24); // float unit roundoff, 2⁻²⁴

const uint32_t kFloatTypes[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16};
const uint32_t kQuantTypes[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1};
const int64_t kRows[] = {1, 7, 31, 33};
// Every tile remainder path: avx2 tiles 4 tokens, avx512 8 (then one pass of the 1..7 left), so
// 1, 2, 3 (no full tile), 5 (4 + 1), 8 (one full avx512 tile), 15 (8 + 7), 17 (2·8 + 1, 4·4 + 1).
const int64_t kTokens[] = {1, 2, 3, 5, 8, 15, 17};
// Float rows have no blocks: odd column counts test every tail of the vector loops (8 lanes for
// avx2/neon, 16 with masked tails for avx512: 15, 17, 31, 33 hit both sides of a vector).
const int64_t kFloatCols[] = {1, 3, 7, 13, 15, 17, 31, 32, 33, 100, 4096 + 32};
const int64_t kQuantCols[] = {32, 64, 96, 160, 288, 4096 + 32};

// Uniform in [−1, 1) times a scale 2⁻⁴..2³ that changes every 32 values (so block scales differ).
// splitmix64, not <random>: the same numbers on every compiler, and no long double arithmetic
// (software quad precision on AArch64, very slow under qemu when clang does not fold it).
std::vector<float> random_floats(size_t n, uint32_t seed) {
    uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 1;
    auto next = [&state] {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    };
    std::vector<float> v(n);
    float scale = 1.0f;
    for (size_t i = 0; i < n; i++) {
        if (i % QK == 0) scale = std::ldexp(1.0f, int(next() % 8) - 4);
        v[i] = scale * (float(int64_t(next() >> 40) - (int64_t(1) << 23)) / float(1 << 23));
    }
    return v;
}

// One quantized weight block as integers: weight j = d·q[j] + m.
struct int_block {
    double d = 0, m = 0;
    int q[QK] = {};
};

uint32_t qh_of(const uint8_t* qh) {
    uint32_t v;
    std::memcpy(&v, qh, 4);
    return v;
}

// Decodes block i of a row of type t (written independently of ref.cpp, from ggml's layouts).
int_block decode_block(uint32_t t, const uint8_t* row, int64_t i) {
    int_block b;
    auto nibble_pair = [&](const uint8_t* qs, uint32_t qh, bool five, int offset) {
        for (int j = 0; j < QK / 2; j++) {
            int lo = qs[j] & 0x0f, hi = qs[j] >> 4;
            if (five) {
                lo |= int((qh >> j) & 1) << 4;
                hi |= int((qh >> (j + 16)) & 1) << 4;
            }
            b.q[j] = lo - offset;
            b.q[j + QK / 2] = hi - offset;
        }
    };
    switch (t) {
    case GGML_TYPE_Q8_0: {
        const auto* p = reinterpret_cast<const block_q8_0*>(row) + i;
        b.d = fp16_to_fp32(p->d);
        for (int j = 0; j < QK; j++) b.q[j] = p->qs[j];
        break;
    }
    case GGML_TYPE_Q4_0: {
        const auto* p = reinterpret_cast<const block_q4_0*>(row) + i;
        b.d = fp16_to_fp32(p->d);
        nibble_pair(p->qs, 0, false, 8);
        break;
    }
    case GGML_TYPE_Q4_1: {
        const auto* p = reinterpret_cast<const block_q4_1*>(row) + i;
        b.d = fp16_to_fp32(p->d);
        b.m = fp16_to_fp32(p->m);
        nibble_pair(p->qs, 0, false, 0);
        break;
    }
    case GGML_TYPE_Q5_0: {
        const auto* p = reinterpret_cast<const block_q5_0*>(row) + i;
        b.d = fp16_to_fp32(p->d);
        nibble_pair(p->qs, qh_of(p->qh), true, 16);
        break;
    }
    case GGML_TYPE_Q5_1: {
        const auto* p = reinterpret_cast<const block_q5_1*>(row) + i;
        b.d = fp16_to_fp32(p->d);
        b.m = fp16_to_fp32(p->m);
        nibble_pair(p->qs, qh_of(p->qh), true, 0);
        break;
    }
    default: std::abort();
    }
    return b;
}

bool has_min(uint32_t t) { return t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1; }

// Exact value and magnitude of y[t][r] per the spec, in double.
struct exact {
    double value, magnitude;
};

exact exact_float(uint32_t t, const uint8_t* wrow, const float* x, int64_t cols) {
    std::vector<float> w(static_cast<size_t>(cols));
    to_f32(t, wrow, w.data(), cols); // exact widening: f16/bf16 values are floats
    double v = 0, s = 0;
    for (int64_t c = 0; c < cols; c++) {
        const double p = double(w[size_t(c)]) * double(x[c]);
        v += p;
        s += std::fabs(p);
    }
    return {v, s};
}

// xq: the token's activation quantized as the spec says (q8_0 or q8_1 blocks).
exact exact_quant(uint32_t t, const uint8_t* wrow, const void* xq, int64_t nb) {
    double v = 0, s = 0;
    for (int64_t i = 0; i < nb; i++) {
        const int_block w = decode_block(t, wrow, i);
        const int8_t* xqs;
        double dx, sx = 0;
        if (has_min(t)) {
            const auto& xb = static_cast<const block_q8_1*>(xq)[i];
            xqs = xb.qs;
            dx = fp16_to_fp32(xb.d);
            sx = fp16_to_fp32(xb.s);
        } else {
            const auto& xb = static_cast<const block_q8_0*>(xq)[i];
            xqs = xb.qs;
            dx = fp16_to_fp32(xb.d);
        }
        int dot = 0, adot = 0; // ≤ 32·128·128: exact in int
        for (int j = 0; j < QK; j++) {
            const int p = w.q[j] * xqs[j];
            dot += p;
            adot += p < 0 ? -p : p;
        }
        v += w.d * dx * double(dot) + w.m * sx;
        s += std::fabs(w.d * dx) * double(adot) + std::fabs(w.m * sx);
    }
    return {v, s};
}

std::string case_name(const std::string& isa, uint32_t t, int64_t rows, int64_t cols, int64_t n, bool q_min = false) {
    return isa + " " + find_type(t)->name + (q_min ? " (q = -128)" : "") + " rows=" + std::to_string(rows) +
           " cols=" + std::to_string(cols) + " n=" + std::to_string(n);
}

// One gemm case for every table in `isas`: one check per (isa, case). With q_min (Q8_0), every
// third weight byte is −128: a valid byte that no quantizer writes (they stop at ±127), where the
// int8 sign tricks can wrap (sign(−128, −x) is −128 again) and a pair of products reaches 2·128·127.
void check_gemm(const std::vector<std::string>& isas, uint32_t t, int64_t rows, int64_t cols, int64_t n,
                bool q_min = false) {
    const bool quant = find_type(t)->block_size > 1;
    const auto seed = uint32_t(t * 1000003u + uint32_t(rows * 7919 + cols * 31 + n));
    const std::vector<float> wf = random_floats(size_t(rows * cols), seed);
    const std::vector<float> x = random_floats(size_t(n * cols), seed + 1);
    const uint64_t rb = row_bytes(t, uint64_t(cols));
    std::vector<uint8_t> w(size_t(rb * uint64_t(rows)));
    if (!quantize(t, wf.data(), w.data(), rows, cols)) std::abort();
    if (q_min) {
        if (t != GGML_TYPE_Q8_0) std::abort();
        auto* blocks = reinterpret_cast<block_q8_0*>(w.data());
        for (int64_t i = 0; i < rows * (cols / QK); i++) {
            for (int j = 0; j < QK; j += 3) blocks[i].qs[j] = -128;
        }
    }

    // The exact model, with the activations quantized by the reference quantizer as the spec says.
    const int64_t nb = cols / QK;
    std::vector<block_q8_0> x0(size_t(quant ? n * nb : 0));
    std::vector<block_q8_1> x1(size_t(quant ? n * nb : 0));
    std::vector<exact> want(size_t(n * rows));
    for (int64_t tok = 0; tok < n; tok++) {
        if (quant && has_min(t)) quantize_row_q8_1(x.data() + tok * cols, x1.data() + tok * nb, cols);
        if (quant && !has_min(t)) quantize_row_q8_0(x.data() + tok * cols, x0.data() + tok * nb, cols);
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t* wrow = w.data() + uint64_t(r) * rb;
            want[size_t(tok * rows + r)] =
                !quant ? exact_float(t, wrow, x.data() + tok * cols, cols)
                : has_min(t) ? exact_quant(t, wrow, x1.data() + tok * nb, nb)
                             : exact_quant(t, wrow, x0.data() + tok * nb, nb);
        }
    }
    const double k = double(quant ? nb : cols) + 8;

    // Runs f on the first `nr` rows (its weights at wp) and checks them against the exact model.
    auto verify = [&](const std::string& name, gemm_fn f, const void* wp, int64_t nr) {
        const int64_t ldy = nr + 3; // the 3 cells past each token's row belong to someone else
        const float sentinel = 12345.0f;
        std::vector<float> y(size_t(n * ldy), sentinel);
        f(wp, x.data(), y.data(), nr, cols, n, ldy);
        double worst = 0; // largest |error| / tolerance
        bool untouched = true;
        for (int64_t tok = 0; tok < n; tok++) {
            for (int64_t r = 0; r < nr; r++) {
                const exact& e = want[size_t(tok * rows + r)];
                const double tol = 2 * k * kUnit * e.magnitude + 1e-30;
                const double got = y[size_t(tok * ldy + r)];
                const double ratio = std::isfinite(got) ? std::fabs(got - e.value) / tol : 1e300;
                if (ratio > worst) worst = ratio;
            }
            for (int64_t r = nr; r < ldy; r++) untouched = untouched && y[size_t(tok * ldy + r)] == sentinel;
        }
        check(worst <= 1.0, name + ": error " + std::to_string(worst) + " of tolerance");
        check(untouched, name + ": wrote outside its rows (ldy > rows)");
        // A token's result must not depend on the tokens beside it: the same bits as a call for it
        // alone (decode reads rows one at a time, tiles several; both sum a cell in one order).
        bool same = true;
        for (int64_t tok = 0; tok < n && n > 1; tok++) {
            std::vector<float> one(static_cast<size_t>(nr));
            f(wp, x.data() + tok * cols, one.data(), nr, cols, 1, nr);
            same = same && std::memcmp(one.data(), y.data() + tok * ldy, size_t(nr) * sizeof(float)) == 0;
        }
        check(same, name + ": a token's row differs from a call with that token alone");
    };
    for (const std::string& isa : isas) {
        const kernel_table* table = kernels_for(isa);
        verify(case_name(isa, t, rows, cols, n, q_min), table->gemm[t], w.data(), rows);
        // The packed kernel on the first rows / 16 · 16 rows, repacked (packed.h); unpacking gives
        // the file's bytes back.
        if (table->packed[t] != nullptr && rows >= PACK_ROWS) {
            const packed_matrix p = pack_rows(t, w.data(), rows, cols);
            std::vector<uint8_t> back(size_t(rb * uint64_t(p.rows)));
            unpack_rows(t, p, cols, back.data());
            check(p.rows == rows / PACK_ROWS * PACK_ROWS && std::memcmp(back.data(), w.data(), back.size()) == 0,
                  case_name(isa, t, rows, cols, n, q_min) + ": unpack(pack(w)) differs from w");
            verify(case_name(isa, t, p.rows, cols, n, q_min) + " packed", table->packed[t], p.data(), p.rows);
        }
    }
}

void check_dot_f32(const std::vector<std::string>& isas) {
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(15), int64_t(16), int64_t(17), int64_t(33),
                      int64_t(4096 + 32)}) {
        const std::vector<float> a = random_floats(size_t(n), uint32_t(n)), b = random_floats(size_t(n), uint32_t(n + 7));
        double v = 0, s = 0;
        for (int64_t i = 0; i < n; i++) {
            v += double(a[size_t(i)]) * b[size_t(i)];
            s += std::fabs(double(a[size_t(i)]) * b[size_t(i)]);
        }
        for (const std::string& isa : isas) {
            const double got = kernels_for(isa)->dot_f32(a.data(), b.data(), n);
            check(std::fabs(got - v) <= 2 * (double(n) + 8) * kUnit * s,
                  isa + " dot_f32 n=" + std::to_string(n) + ": " + std::to_string(got) + " vs " + std::to_string(v));
        }
    }
}

// Each table's activation quantizer writes exactly the reference's q8_0 bytes (the gemm kernels
// above are judged against the reference's quantization, so any difference would be a silent drift).
// Blocks: random, all zero, ties (x·(1/d) = k + ½ exactly, where roundf goes away from zero and
// round-to-even would not), values just under ½, and a block with inf and one with NaN (scale NaN).
void check_quantize_q8_0(const std::vector<std::string>& isas) {
    for (int64_t blocks : {int64_t(1), int64_t(3), int64_t(7), int64_t(129)}) {
        const int64_t n = blocks * QK;
        std::vector<float> x = random_floats(size_t(n), uint32_t(blocks) + 5);
        if (blocks >= 7) {
            for (int j = 0; j < QK; j++) x[size_t(QK + j)] = 0.0f;
            for (int j = 0; j < QK; j++) x[size_t(2 * QK + j)] = j == 0 ? 127.0f : float(j % 9) - 4.5f; // d = 1: ties
            for (int j = 0; j < QK; j++) x[size_t(3 * QK + j)] = j == 0 ? -127.0f : (j % 2 ? 0.49999997f : -2.5f);
            x[size_t(4 * QK + 3)] = INFINITY;
            x[size_t(5 * QK + 30)] = NAN;
        }
        std::vector<block_q8_0> want(static_cast<size_t>(blocks)), got(static_cast<size_t>(blocks));
        quantize_row_q8_0(x.data(), want.data(), n);
        for (const std::string& isa : isas) {
            std::memset(got.data(), 0x5a, got.size() * sizeof(block_q8_0));
            kernels_for(isa)->quantize_q8_0(x.data(), got.data(), n);
            int64_t bad = -1;
            for (int64_t b = 0; b < blocks && bad < 0; b++) {
                if (std::memcmp(&want[size_t(b)], &got[size_t(b)], sizeof(block_q8_0)) != 0) bad = b;
            }
            check(bad < 0, isa + " quantize_q8_0 blocks=" + std::to_string(blocks) + ": block " + std::to_string(bad) +
                               " differs from quantize_row_q8_0");
        }
    }
}

// ssm_scan against the reference. (1) Its exp: with h = 1, B = 0, dt = 1 one step leaves h = e^a, so
// a sweep of a over [−110, 95] (and ±inf, NaN) checks every lane: within 2 ulp of std::exp where
// the result is normal, 0 below e^−104, inf above 2^128, NaN for NaN (4104 lanes: whole 8-lane
// pieces for avx2 and neon, a masked last piece for avx512). (2) The scan: N = 1, 5, 16, 17, 24, 33,
// 40 (in registers, in pieces, masked pieces, the reference) × T = 1, 3, 8 tokens, with Mamba's
// signs (a < 0, dt > 0) and a stride between tokens, h and y within 4·T ulp-scale of the reference
// (its exp is the only difference).
void check_ssm_scan(const std::vector<std::string>& isas) {
    const int64_t sweep = 4104;
    std::vector<float> a(static_cast<size_t>(sweep));
    for (int64_t i = 0; i < sweep; i++) a[size_t(i)] = -110.0f + 205.0f * float(i) / float(sweep - 1);
    a[0] = -INFINITY, a[1] = INFINITY, a[2] = NAN, a[3] = 0.0f, a[4] = -103.97f, a[5] = 88.72f;
    std::vector<float> bc(size_t(2 * sweep), 0.0f);
    for (const std::string& isa : isas) {
        std::vector<float> h(size_t(sweep), 1.0f);
        const float one = 1.0f, zero = 0.0f;
        float y = 0;
        kernels_for(isa)->ssm_scan(h.data(), a.data(), sweep, &one, &zero, &y, 1, bc.data(), 0, 1);
        int64_t bad = -1;
        for (int64_t i = 0; i < sweep && bad < 0; i++) {
            const float want = std::exp(a[size_t(i)]), got = h[size_t(i)];
            bool ok;
            if (std::isnan(want)) ok = std::isnan(got);
            else if (want == 0.0f || std::isinf(want)) ok = got == want;
            else if (want < 1.1754944e-38f) ok = std::fabs(got - want) <= 2e-45f; // subnormal: absolute
            else ok = std::fabs(got - want) <= 2.0f * std::ldexp(1.0f, std::ilogb(want) - 23);
            if (!ok) bad = i;
        }
        check(bad < 0, isa + " ssm_scan exp: e^" + std::to_string(bad < 0 ? 0.0f : a[size_t(bad)]) + " = " +
                           std::to_string(bad < 0 ? 0.0f : h[size_t(bad)]) + " is off by more than 2 ulp");
    }
    for (int64_t N : {int64_t(1), int64_t(5), int64_t(16), int64_t(17), int64_t(24), int64_t(33), int64_t(40)}) {
        for (int64_t T : {int64_t(1), int64_t(3), int64_t(8)}) {
            const int64_t stride = 3, bc_stride = 2 * N + 1;
            std::vector<float> an = random_floats(size_t(N), uint32_t(N)), h0 = random_floats(size_t(N), uint32_t(N + 1));
            for (float& v : an) v = -std::exp(v); // A = −exp(A_log)
            std::vector<float> dt = random_floats(size_t(T * stride), uint32_t(T)), u = random_floats(size_t(T * stride), 7);
            for (float& v : dt) v = std::log1p(std::exp(v)); // softplus: > 0
            const std::vector<float> bcn = random_floats(size_t(T * bc_stride), uint32_t(N * T));
            std::vector<float> h_ref = h0, y_ref(size_t(T * stride), 0.0f);
            kernels_for("ref")->ssm_scan(h_ref.data(), an.data(), N, dt.data(), u.data(), y_ref.data(), stride, bcn.data(),
                                         bc_stride, T);
            for (const std::string& isa : isas) {
                std::vector<float> h = h0, y(size_t(T * stride), 0.0f);
                kernels_for(isa)->ssm_scan(h.data(), an.data(), N, dt.data(), u.data(), y.data(), stride, bcn.data(),
                                           bc_stride, T);
                double worst = 0, scale = 0;
                for (int64_t k = 0; k < N; k++) {
                    worst = std::max(worst, double(std::fabs(h[size_t(k)] - h_ref[size_t(k)])));
                    scale = std::max(scale, double(std::fabs(h_ref[size_t(k)])));
                }
                for (int64_t t = 0; t < T; t++) {
                    worst = std::max(worst, double(std::fabs(y[size_t(t * stride)] - y_ref[size_t(t * stride)])) / double(N));
                    scale = std::max(scale, double(std::fabs(y_ref[size_t(t * stride)])) / double(N));
                }
                check(worst <= 16.0 * double(T + 1) * kUnit * scale,
                      isa + " ssm_scan N=" + std::to_string(N) + " T=" + std::to_string(T) + ": error " +
                          std::to_string(worst) + " at scale " + std::to_string(scale));
            }
        }
    }
}

// quantize → to_f32: every element within the format's step. q4_0/q5_0 map the block's signed
// extreme to −8/−16 exactly, so the opposite extreme may clip by one full step; the others round
// to nearest (half a step). fp16 storage of d and m adds at most 2⁻⁹ of the block's max |x|, or,
// where d is an fp16 subnormal (tiny blocks), half its spacing 2⁻²⁵ per unit of |q|.
// silu, softplus, sigmoid and exp against the reference (std::exp, std::log1p) over a sweep of [−110, 110] and
// the edges (±inf, NaN, ±0, subnormals, softplus's threshold 20, exp's clamps): NaN where the
// reference gives NaN, within `ulps` units in the last place of the reference's value where that is
// normal, within 2⁻¹⁴⁹ where it is subnormal or zero. The sweep's odd length leaves a masked tail;
// the second call runs in place (y = x).
void check_activations(const std::vector<std::string>& isas) {
    const int64_t sweep = 8201;
    std::vector<float> x(static_cast<size_t>(sweep));
    for (int64_t i = 0; i < sweep; i++) x[size_t(i)] = -110.0f + 220.0f * float(i) / float(sweep - 1);
    const float edges[] = {-INFINITY, INFINITY, NAN, 0.0f, -0.0f, 1e-30f, -1e-30f, 1e-40f, -1e-40f, 1e-8f, 20.0f,
                           std::nextafter(20.0f, 0.0f), std::nextafter(20.0f, 30.0f), -87.3f, -88.72f, 88.72f, -89.0f,
                           -103.97f, -104.5f, 0.3466f};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) x[i * 7] = edges[i];
    struct op {
        const char* name;
        void (*kernel_table::*fn)(const float*, float*, int64_t);
        double ulps;
    };
    // exp16's 2 ulp, then 1 + e, the quotient and the log each rounded here and in the reference:
    // measured worst 4 ulp (silu, near x = −17) and 2 ulp (softplus).
    const op ops[] = {{"silu", &kernel_table::silu, 6.0}, {"softplus", &kernel_table::softplus, 6.0},
                      {"sigmoid", &kernel_table::sigmoid, 6.0}, {"exp", &kernel_table::exp, 6.0}};
    for (const op& o : ops) {
        std::vector<float> want(static_cast<size_t>(sweep));
        (kernels_for("ref")->*o.fn)(x.data(), want.data(), sweep);
        for (const std::string& isa : isas) {
            std::vector<float> got(static_cast<size_t>(sweep)), inplace = x;
            (kernels_for(isa)->*o.fn)(x.data(), got.data(), sweep);
            (kernels_for(isa)->*o.fn)(inplace.data(), inplace.data(), sweep);
            int64_t bad = -1;
            double worst = 0; // in ulps, over normal results
            for (int64_t i = 0; i < sweep && bad < 0; i++) {
                const float w = want[size_t(i)], g = got[size_t(i)];
                bool ok;
                if (std::isnan(w)) {
                    ok = std::isnan(g);
                } else if (std::isinf(w)) {
                    ok = g == w;
                } else if (std::fabs(w) < 1.1754944e-38f) {
                    ok = std::fabs(g - w) <= 1.4e-45f;
                } else {
                    const double e = std::fabs(double(g) - double(w)) / std::ldexp(1.0, std::ilogb(w) - 23);
                    worst = std::max(worst, e);
                    ok = e <= o.ulps;
                }
                ok = ok && std::memcmp(&g, &inplace[size_t(i)], sizeof(float)) == 0;
                if (!ok) bad = i;
            }
            check(bad < 0, isa + " " + o.name + "(" + std::to_string(bad < 0 ? 0.0f : x[size_t(bad)]) + ") = " +
                               std::to_string(bad < 0 ? 0.0f : got[size_t(bad)]) + ", reference " +
                               std::to_string(bad < 0 ? 0.0f : want[size_t(bad)]) + " (or in place differs)");
            std::printf("%s %s: worst %.2f ulp\n", isa.c_str(), o.name, worst);
        }
    }
}

// wkv7 against the reference over N = 16, 64 (the SIMD path), and
// 5, 33, 80 (handed to the reference), T = 1, 3, 4, 17 tokens, with RWKV-7's ranges: decays
// w = exp(−0.607·σ) in (0.545, 1), kk unit-norm per head, ka = kk·a with a in (0, 1), and a stride
// between tokens. The state and every y within 4·N units of 2⁻²⁴ times the largest magnitude of the
// reference's (a summation bound over one step's N terms; the decays < 1 keep older steps' errors
// from growing; measured ≤ 4.1); and one call's bits equal T one-token calls' (prefill = steps).
void check_wkv7(const std::vector<std::string>& isas) {
    for (int64_t N : {int64_t(16), int64_t(64), int64_t(5), int64_t(33), int64_t(80)}) {
        for (int64_t T : {int64_t(1), int64_t(3), int64_t(4), int64_t(17)}) {
            const int64_t stride = N + 3;
            auto seq = [&](uint32_t seed) { return random_floats(size_t(T * stride), seed); };
            std::vector<float> r = seq(1), w = seq(2), k = seq(3), v = seq(4), kk = seq(5), ka = seq(6);
            for (float& e : w) e = std::exp(-0.606531f / (1.0f + std::exp(-e)));
            for (int64_t t = 0; t < T; t++) {
                float ss = 0;
                for (int64_t j = 0; j < N; j++) ss += kk[size_t(t * stride + j)] * kk[size_t(t * stride + j)];
                for (int64_t j = 0; j < N; j++) {
                    float& e = kk[size_t(t * stride + j)];
                    e /= std::sqrt(ss);
                    ka[size_t(t * stride + j)] = e / (1.0f + std::exp(-ka[size_t(t * stride + j)]));
                }
            }
            const std::vector<float> S0 = random_floats(size_t(N * N), uint32_t(N * 31 + T));
            std::vector<float> S_ref = S0, y_ref(size_t(T * stride), 0.0f);
            wkv7_ref(S_ref.data(), N, r.data(), w.data(), k.data(), v.data(), kk.data(), ka.data(), y_ref.data(), stride, T);
            double scale = 0;
            for (float e : S_ref) scale = std::max(scale, double(std::fabs(e)));
            for (float e : y_ref) scale = std::max(scale, double(std::fabs(e)));
            for (const std::string& isa : isas) {
                std::vector<float> S = S0, y(size_t(T * stride), 0.0f);
                kernels_for(isa)->wkv7(S.data(), N, r.data(), w.data(), k.data(), v.data(), kk.data(), ka.data(), y.data(),
                                       stride, T);
                double worst = 0;
                for (size_t i = 0; i < S.size(); i++) worst = std::max(worst, double(std::fabs(S[i] - S_ref[i])));
                for (int64_t t = 0; t < T; t++) {
                    for (int64_t i = 0; i < N; i++) {
                        worst = std::max(worst, double(std::fabs(y[size_t(t * stride + i)] - y_ref[size_t(t * stride + i)])));
                    }
                }
                check(worst <= 4.0 * double(N) * kUnit * scale,
                      isa + " wkv7 N=" + std::to_string(N) + " T=" + std::to_string(T) + ": error " +
                          std::to_string(worst / (kUnit * scale)) + " ulp of the largest value");
                // One call over T tokens gives the bits of T calls of one token (prefill = steps).
                std::vector<float> S1 = S0, y1(size_t(T * stride), 0.0f);
                for (int64_t t = 0; t < T; t++) {
                    const size_t o = size_t(t * stride);
                    kernels_for(isa)->wkv7(S1.data(), N, &r[o], &w[o], &k[o], &v[o], &kk[o], &ka[o], &y1[o], stride, 1);
                }
                check(S1 == S && y1 == y, isa + " wkv7 N=" + std::to_string(N) + " T=" + std::to_string(T) +
                                              ": one call differs from T single-token calls");
            }
        }
    }
}

void check_round_trips() {
    const int64_t cols = 4096 + 32, rows = 3;
    std::vector<float> x = random_floats(size_t(rows * cols), 99);
    for (int j = 0; j < QK; j++) x[size_t(QK + j)] = 0.0f;                     // an all-zero block
    for (int j = 0; j < QK; j++) x[size_t(2 * QK + j)] = j == 5 ? -3.0f : 0.0f; // one value
    for (int j = 0; j < QK; j++) x[size_t(3 * QK + j)] *= 1e-4f;                // tiny scale (fp16 subnormal d)
    for (int j = 0; j < QK; j++) x[size_t(4 * QK + j)] = 7.0f + 0.01f * float(j); // all positive (q*_1 minimum)
    for (uint32_t t : {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
                       GGML_TYPE_Q5_0, GGML_TYPE_Q5_1}) {
        std::vector<uint8_t> q(size_t(row_bytes(t, uint64_t(cols)) * rows));
        std::vector<float> back(size_t(rows * cols));
        check(quantize(t, x.data(), q.data(), rows, cols), std::string("quantize ") + find_type(t)->name);
        check(to_f32(t, q.data(), back.data(), rows * cols), std::string("to_f32 ") + find_type(t)->name);
        const uint64_t bb = find_type(t)->type_size;
        double worst = 0;
        for (int64_t i = 0; i < rows * cols; i++) {
            double tol;
            if (t == GGML_TYPE_F32) {
                tol = 0;
            } else if (t == GGML_TYPE_F16) {
                tol = std::ldexp(std::fabs(x[size_t(i)]), -11) + std::ldexp(1.0, -25); // half: 11-bit mantissa; subnormal step
            } else if (t == GGML_TYPE_BF16) {
                tol = std::ldexp(std::fabs(x[size_t(i)]), -8);
            } else {
                const int64_t blk = i / QK;
                float amax = 0;
                for (int j = 0; j < QK; j++) amax = std::max(amax, std::fabs(x[size_t(blk * QK + j)]));
                const int_block b = decode_block(t, q.data() + uint64_t(blk) * bb, 0);
                const double steps = t == GGML_TYPE_Q4_0 || t == GGML_TYPE_Q5_0 ? 1.0 : 0.5;
                const double qmax = t == GGML_TYPE_Q8_0 ? 127 : 32;
                tol = steps * std::fabs(b.d) * (1 + 1e-3) + std::ldexp(amax, -9) + (qmax + 2) * std::ldexp(1.0, -25);
            }
            const double err = std::fabs(double(back[size_t(i)]) - double(x[size_t(i)]));
            if (tol == 0 ? err > 0 : err / tol > worst) worst = tol == 0 ? 1e300 : err / tol;
        }
        check(worst <= 1.0, std::string("round trip ") + find_type(t)->name + ": error " + std::to_string(worst) +
                                " of tolerance");
    }
}

[[maybe_unused]] bool contains(const std::vector<std::string>& v, const std::string& s) {
    for (const auto& e : v) {
        if (e == s) return true;
    }
    return false;
}

// Which table dispatch chose, and that the list is what this CPU can run.
void check_dispatch(const std::string& expect) {
    const std::vector<std::string> isas = available_isas();
    const char* forced = std::getenv("PYRNN_ISA");
    const std::string active = kernels().isa;
    check(!isas.empty() && isas.front() == "ref", "available_isas() starts with ref");
    if (forced == nullptr || *forced == '\0') {
        check(active == isas.back(), "dispatch picks the best ISA: active " + active + ", best " + isas.back());
    }
    if (!expect.empty()) check(active == expect, "active ISA: expected " + expect + ", found " + active);
#if defined(__aarch64__)
    check(contains(isas, "neon"), "every AArch64 CPU runs the neon table");
    const bool dotprod = cpu_features().find("asimddp") != std::string::npos;
    check(contains(isas, "neon_dotprod") == dotprod, "neon_dotprod listed exactly when the CPU has asimddp (" +
                                                         cpu_features() + ")");
    // Without dotprod, neon is the best table and dotprod code is never reachable.
    if (expect == "neon") {
        check(!dotprod && kernels_for("neon_dotprod") == nullptr, "no dotprod table on a CPU without dotprod");
    }
#endif
#if defined(__x86_64__) || defined(_M_X64)
    // avx512 is listed exactly when dispatch saw F, BW, VL and VNNI with OS support (cpu_features
    // reports what it saw), and then on top of avx2.
    const bool avx512 = cpu_features().find("avx512_vnni") != std::string::npos;
    check(contains(isas, "avx512") == avx512, "avx512 listed exactly when detected (" + cpu_features() + ")");
    if (avx512) check(contains(isas, "avx2"), "an avx512 CPU also runs the avx2 table");
#endif
}

} // namespace

int main(int argc, char** argv) {
    std::string expect;
    bool dispatch_only = false; // only which table was chosen (for the PYRNN_ISA runs)
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a == "--expect-isa" && i + 1 < argc) {
            expect = argv[++i];
        } else if (a == "--dispatch-only") {
            dispatch_only = true;
        } else {
            std::fprintf(stderr, "usage: %s [--expect-isa NAME] [--dispatch-only]\n", argv[0]);
            return 2;
        }
    }
    const char* forced = std::getenv("PYRNN_ISA");
    std::printf("cpu: %s; isas:", cpu_features().c_str());
    const std::vector<std::string> isas = available_isas();
    for (const auto& isa : isas) std::printf(" %s", isa.c_str());
    std::printf("; PYRNN_ISA=%s\n", forced ? forced : "");

    try {
        check_dispatch(expect);
    } catch (const std::exception& e) {
        check(false, std::string("dispatch threw: ") + e.what());
    }
    if (dispatch_only) {
        return report("test_kernels");
    }
    check_dot_f32(isas);
    check_quantize_q8_0(isas);
    check_ssm_scan(isas);
    check_activations(isas);
    check_wkv7(isas);
    for (uint32_t t : kFloatTypes) {
        for (int64_t rows : kRows) {
            for (int64_t cols : kFloatCols) {
                for (int64_t n : kTokens) check_gemm(isas, t, rows, cols, n);
            }
        }
    }
    for (uint32_t t : kQuantTypes) {
        for (int64_t rows : kRows) {
            for (int64_t cols : kQuantCols) {
                for (int64_t n : kTokens) check_gemm(isas, t, rows, cols, n);
            }
        }
    }
    for (int64_t n : kTokens) check_gemm(isas, GGML_TYPE_Q8_0, 37, 96, n, true);
    check_round_trips();
    return report("test_kernels");
}
