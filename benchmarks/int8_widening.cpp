// int8_widening.cpp — the AVX2 packed Q8_0 inner loop (avx2.cpp half_packed<pk_q8_0>) with the
// int16 → int32 widening done three ways, timed on L1-resident bytes; every form is checked
// against the vpmaddwd form, on random bytes, on the extreme ones (all products 127·127) and on
// weights of −128 (where the |x|-first form is expected to differ).
//
//     g++ -O2 -mavx2 -mfma -o /tmp/int8_widening benchmarks/int8_widening.cpp && /tmp/int8_widening
//
// Why: on a Zen 1-class core vpmaddubsw and vpmaddwd share one 128-bit multiply pipe, so Q8_0's
// maddubs + madd per 32 products bounds the GEMM at 8 products per cycle (docs/PERFORMANCE.md).
// The question was whether a widening off that pipe raises the bound:
//   madd   vpmaddwd(pairs, 1): the kernel's form;
//   shift  Σ hi words by vpsrad 16, and Σ of the lanes with the low word's sign bit flipped; the low
//          words' sum is then Σlanes − 65536·Σhi − 8·32768 (mod 2³², exact since the true sum fits);
//   mixed  every other k by shift, the rest by madd.
// A fourth form, maddubs(|x|, sign(w, x)), needs no |w| kept in registers, but sign(−128, x < 0)
// wraps, and a Q8_0 file may hold q = −128: it is timed for the record, not a candidate.
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

constexpr int NT = 4; // tokens per pass, as the kernel's PTILE
enum form { madd, shift, mixed, abs_x };

__m256i word(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// One pairs vector p (int16 pairs from maddubs, the k-th of a block) into the int32 sums, as form F:
// s gets vpmaddwd's lanes; hi and all the shift form's terms (finish() folds them into s).
template <form F>
void widen(int k, __m256i p, __m256i& s, __m256i& hi, __m256i& all) {
    if (F == madd || F == abs_x || (F == mixed && k % 2 == 0)) {
        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
    } else {
        hi = _mm256_add_epi32(hi, _mm256_srai_epi32(p, 16));
        all = _mm256_add_epi32(all, _mm256_xor_si256(p, _mm256_set1_epi32(0x8000)));
    }
}

template <form F>
__m256i finish(__m256i s, __m256i hi, __m256i all) {
    constexpr int n_shift = F == shift ? 8 : F == mixed ? 4 : 0;
    if (n_shift == 0) return s;
    const __m256i lo = _mm256_sub_epi32(_mm256_sub_epi32(all, _mm256_slli_epi32(hi, 16)), _mm256_set1_epi32(n_shift * 32768));
    return _mm256_add_epi32(s, _mm256_add_epi32(hi, lo));
}

// 8 rows × nb blocks of packed Q8_0 (signed q, 8 chunks of 8 rows × 4 bytes per block) against NT
// tokens of quantized x (xa: |x|): out[j][r], the integer dot products.
template <form F>
__attribute__((noinline)) void run(const int8_t* W, const int8_t* X, const int8_t* XA, int nb, int32_t* out) {
    __m256i acc[NT];
    for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_si256();
    for (int b = 0; b < nb; b++) {
        __m256i w[8], a[8];
        for (int i = 0; i < 8; i++) {
            w[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(W + b * 256 + 32 * i));
            a[i] = _mm256_abs_epi8(w[i]);
        }
        for (int j = 0; j < NT; j++) {
            const int8_t* xq = X + (j * nb + b) * 32;
            const int8_t* xa = XA + (j * nb + b) * 32;
            __m256i s = acc[j], hi = _mm256_setzero_si256(), all = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                const __m256i p = F == abs_x ? _mm256_maddubs_epi16(word(xa + 4 * k), _mm256_sign_epi8(w[k], word(xq + 4 * k)))
                                             : _mm256_maddubs_epi16(a[k], _mm256_sign_epi8(word(xq + 4 * k), w[k]));
                widen<F>(k, p, s, hi, all);
            }
            acc[j] = finish<F>(s, hi, all);
        }
    }
    for (int j = 0; j < NT; j++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * j), acc[j]);
}

using kernel = void (*)(const int8_t*, const int8_t*, const int8_t*, int, int32_t*);

} // namespace

int main() {
    const int nb = 24; // 768 columns: the weights (48 KiB) and x stay in L1/L2
    std::vector<int8_t> W(size_t(nb) * 256), X(size_t(NT) * nb * 32), XA(X.size());
    uint32_t s = 1;
    auto next = [&] { s = s * 1103515245u + 12345u; return int8_t(s >> 16); };
    auto q8 = [&] { const int8_t q = next(); return q == -128 ? int8_t(-127) : q; }; // as the quantizers give
    for (auto& v : W) v = q8();
    for (auto& v : X) v = q8();
    const struct { kernel f; const char* name; } forms[] = {
        {run<madd>, "madd"}, {run<shift>, "shift"}, {run<mixed>, "mixed"}, {run<abs_x>, "abs_x"}};
    int32_t ref[8 * NT], out[8 * NT];
    bool all_ok = true;
    for (int pass = 0; pass < 3; pass++) { // random bytes, every product at its largest, weights of −128
        if (pass == 1) {
            std::fill(W.begin(), W.end(), int8_t(-127));
            std::fill(X.begin(), X.end(), int8_t(-127));
        }
        if (pass == 2) {
            std::fill(W.begin(), W.end(), int8_t(-128));
            for (auto& v : X) v = q8();
        }
        for (size_t i = 0; i < X.size(); i++) XA[i] = int8_t(X[i] < 0 ? -X[i] : X[i]);
        run<madd>(W.data(), X.data(), XA.data(), nb, ref);
        for (const auto& fm : forms) {
            fm.f(W.data(), X.data(), XA.data(), nb, out);
            const bool ok = std::memcmp(out, ref, sizeof ref) == 0;
            const bool expect_same = !(pass == 2 && fm.f == forms[3].f); // abs_x wraps on −128
            all_ok = all_ok && ok == expect_same;
            if (pass == 0) {
                const int reps = 200000;
                const auto t0 = std::chrono::steady_clock::now();
                for (int r = 0; r < reps; r++) fm.f(W.data(), X.data(), XA.data(), nb, out);
                const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / reps;
                std::printf("%-6s %8.1f ns per call  %6.2f G products/s  %s\n", fm.name, ns, double(nb) * 256 * NT / ns,
                            ok ? "same sums" : "DIFFERENT SUMS");
            } else {
                std::printf("%-6s %s: %s%s\n", fm.name, pass == 1 ? "extreme bytes" : "weights -128",
                            ok ? "same sums" : "DIFFERENT SUMS", expect_same ? "" : " (expected: sign(-128, x < 0) wraps)");
            }
        }
    }
    return all_ok ? 0 : 1;
}
