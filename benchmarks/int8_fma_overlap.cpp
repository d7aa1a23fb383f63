// int8_fma_overlap.cpp — can float FMAs run beside the int8 dot products of a Q8_0 GEMM on a
// Zen 1-class core? Times, on L1-resident data, one thread:
//   int      the AVX2 packed Q8_0 inner loop (8 rows × 32 columns per block, 4 tokens; maddubs +
//            madd on the sign trick, as avx2.cpp's half_packed<pk_q8_0>, but with integer sums over
//            all blocks, no per-block scaling, and |w| computed once per block);
//   fma      an F32 GEMM tile: 16 rows × 4 tokens, 8 independent FMA chains;
//   int+fma  both in one loop: per int block, `fc` float columns, their FMAs spread between the
//            block's maddubs/madd pairs so the out-of-order core can issue them side by side.
// Every form's sums are checked against a scalar loop (integers; floats made of small integers,
// so their sums are exact in any order).
//
//     g++ -O2 -mavx2 -mfma -o /tmp/int8_fma_overlap benchmarks/int8_fma_overlap.cpp && /tmp/int8_fma_overlap
//
// Why: vpmaddubsw and vpmaddwd issue only on one 128-bit pipe there, FMAs on two. If FMAs could
// use the second pipe while int8 keeps the first busy, computing a third of a Q8_0 matrix's rows
// from F32 weights would add ~50% to the GEMM's products per cycle (docs/PERFORMANCE.md, "AVX2 on
// a Zen 1-class core"). The combined rate says whether they do.
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

constexpr int NT = 4;  // tokens per tile
constexpr int NB = 24; // blocks of 32 columns: 768 columns

struct data {
    std::vector<int8_t> w, x;   // int: [NB][8 chunks][8 rows × 4 bytes], x: [NT][NB × 32]
    std::vector<float> wf, xf;  // fma: [column][16 rows], xf: [NT][column]
    int fcols = 0;              // float columns in all
};

__m256i word(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// FC: float columns per int block (0: int only). INT: whether the int part runs.
template <bool INT, int FC>
__attribute__((noinline)) void run(const data& d, int32_t* out, float* outf) {
    __m256i acc[NT];
    __m256 f0[NT], f1[NT]; // rows 0–7 and 8–15 of the float tile
    for (int j = 0; j < NT; j++) {
        acc[j] = _mm256_setzero_si256();
        f0[j] = f1[j] = _mm256_setzero_ps();
    }
    auto fma_column = [&](int c) {
        const __m256 w0 = _mm256_loadu_ps(&d.wf[size_t(c) * 16]), w1 = _mm256_loadu_ps(&d.wf[size_t(c) * 16 + 8]);
        for (int j = 0; j < NT; j++) {
            const __m256 x = _mm256_broadcast_ss(&d.xf[size_t(j) * d.fcols + c]);
            f0[j] = _mm256_fmadd_ps(w0, x, f0[j]);
            f1[j] = _mm256_fmadd_ps(w1, x, f1[j]);
        }
    };
    for (int b = 0; b < NB; b++) {
        if (!INT) {
            for (int c = 0; c < 32; c++) fma_column(b * 32 + c); // the float form alone: 32 columns per block
            continue;
        }
        __m256i a[8];
        for (int i = 0; i < 8; i++) a[i] = _mm256_abs_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(&d.w[b * 256 + 32 * i])));
        int c = b * FC; // next float column
        for (int j = 0; j < NT; j++) {
            const int8_t* xq = &d.x[size_t(j * NB + b) * 32];
            __m256i s = acc[j];
            for (int k = 0; k < 8; k++) {
                const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&d.w[b * 256 + 32 * k]));
                const __m256i p = _mm256_maddubs_epi16(a[k], _mm256_sign_epi8(word(xq + 4 * k), w));
                s = _mm256_add_epi32(s, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
                if (FC > 0 && c < (b + 1) * FC && (j * 8 + k) % (NT * 8 / FC) == 0) fma_column(c++);
            }
            acc[j] = s;
        }
    }
    for (int j = 0; j < NT; j++) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * j), acc[j]);
        _mm256_storeu_ps(outf + 16 * j, f0[j]);
        _mm256_storeu_ps(outf + 16 * j + 8, f1[j]);
    }
}

// The scalar sums run<INT, FC> must give.
void reference(const data& d, bool with_int, int fcols, int32_t* out, float* outf) {
    for (int j = 0; j < NT; j++) {
        for (int r = 0; r < 8; r++) {
            int32_t s = 0;
            for (int b = 0; b < NB && with_int; b++)
                for (int k = 0; k < 8; k++)
                    for (int e = 0; e < 4; e++) s += d.w[b * 256 + 32 * k + 4 * r + e] * d.x[size_t(j * NB + b) * 32 + 4 * k + e];
            out[8 * j + r] = s;
        }
        for (int r = 0; r < 16; r++) {
            float s = 0;
            for (int c = 0; c < fcols; c++) s += d.wf[size_t(c) * 16 + r] * d.xf[size_t(j) * d.fcols + c];
            outf[16 * j + r] = s;
        }
    }
}

template <bool INT, int FC>
bool time_form(const data& d, const char* name) {
    const int fcols = INT ? FC * NB : 32 * NB;
    int32_t out[8 * NT], ref[8 * NT];
    float outf[16 * NT], reff[16 * NT];
    run<INT, FC>(d, out, outf);
    reference(d, INT, fcols, ref, reff);
    const bool ok = std::memcmp(out, ref, sizeof out) == 0 && std::memcmp(outf, reff, sizeof outf) == 0;
    const int reps = 100000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; r++) run<INT, FC>(d, out, outf);
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / reps;
    const double int_products = INT ? double(NB) * 256 * NT : 0, float_products = double(fcols) * 16 * NT;
    std::printf("%-16s %7.1f ns  int %6.2f + float %5.2f = %6.2f G products/s  %s\n", name, ns, int_products / ns,
                float_products / ns, (int_products + float_products) / ns, ok ? "sums exact" : "WRONG SUMS");
    return ok;
}

} // namespace

int main() {
    data d;
    d.fcols = 32 * NB;
    d.w.resize(size_t(NB) * 256);
    d.x.resize(size_t(NT) * NB * 32);
    d.wf.resize(size_t(d.fcols) * 16);
    d.xf.resize(size_t(NT) * d.fcols);
    uint32_t s = 1;
    auto next = [&] { s = s * 1103515245u + 12345u; return int8_t(s >> 16); };
    auto q8 = [&] { const int8_t q = next(); return q == -128 ? int8_t(-127) : q; }; // as the quantizers give
    for (auto& v : d.w) v = q8();
    for (auto& v : d.x) v = q8();
    for (auto& v : d.wf) v = float(next() % 8); // small integers: every partial sum is exact
    for (auto& v : d.xf) v = float(next() % 8);
    bool ok = true;
    for (int pass = 0; pass < 2; pass++) {
        ok &= time_form<true, 0>(d, "int");
        ok &= time_form<false, 0>(d, "fma");
        ok &= time_form<true, 2>(d, "int+fma fc=2");
        ok &= time_form<true, 4>(d, "int+fma fc=4");
        ok &= time_form<true, 8>(d, "int+fma fc=8");
        ok &= time_form<true, 16>(d, "int+fma fc=16");
    }
    return ok ? 0 : 1;
}
