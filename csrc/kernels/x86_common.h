// x86_common.h — small AVX2-level helpers shared by avx2.cpp and avx512.cpp. Included by those two
// files only: everything here has internal linkage, so a copy compiled with AVX-512 flags can never
// be picked by the linker for a caller in the AVX2 file (or the reverse).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstdlib>

namespace pyrnn {
namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float half(uint16_t h) { return _cvtsh_ss(h); }

// 16 bytes of nibbles → 32 bytes: low nibbles in bytes 0..15, high nibbles in bytes 16..31
// (ggml's element order within a block).
inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

// Scratch memory, one per thread (thread_local), kept between calls, 64-byte aligned: a decode step
// makes ~100 gemm calls, and allocating and clearing per call cost more than quantizing x (µs at
// C = 768).
struct scratch {
    char* p = nullptr;
    size_t size = 0;
    char* get(size_t bytes) {
        if (bytes > size) {
            _mm_free(p);
            p = static_cast<char*>(_mm_malloc(bytes, 64));
            if (p == nullptr) std::abort();
            size = bytes;
        }
        return p;
    }
    ~scratch() { _mm_free(p); }
};

} // namespace
} // namespace pyrnn
