// cephes.h — the constants of the vector e^x and ln x that the SIMD twins share (avx512.cpp's exp16
// and log16, avx2.cpp's exp8 and log8, neon.cpp's exp4 and log4): Cephes expf/logf's polynomials
// (Moshier, Cephes Math Library), ln 2 split in two parts so that n·ln2_hi is exact, and the clamp
// of e^x's argument (e^−104 rounds to 0, e^89 to inf).
#pragma once

namespace pyrnn::cephes {

constexpr float exp_lo = -104.0f, exp_hi = 89.0f;
constexpr float log2e = 1.44269504088896341f;
constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
constexpr float sqrt2 = 1.41421356f; // ln x reduces x's mantissa to [√½, √2]

// e^r ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2; P's coefficients from the highest power down.
constexpr float exp_p[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                            4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
// ln(1 + f) ≈ f − f²/2 + f³·P(f) on f in [√½ − 1, √2 − 1]; from the highest power down.
constexpr float log_p[9] = {7.0376836292e-2f,  -1.1514610310e-1f, 1.1676998740e-1f,
                            -1.2420140846e-1f, 1.4249322787e-1f,  -1.6668057665e-1f,
                            2.0000714765e-1f,  -2.4999993993e-1f, 3.3333331174e-1f};

} // namespace pyrnn::cephes
