// quant.h — ggml tensor types: ids, block sizes, bytes per block, and fp16/bf16 conversion.
//
//   const type_traits* tt = find_type(tensor.type);   // nullptr for an unknown id
//   uint64_t bytes = row_bytes(GGML_TYPE_Q8_0, 4096);  // 4096 / 32 blocks × 34 bytes
//
// Type ids and block layouts are ggml's, so the same bytes mean the same numbers in llama.cpp.
#pragma once

#include <cstdint>
#include <cstring>

namespace pyrnn {

enum ggml_type : uint32_t {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    // 4, 5: Q4_2, Q4_3 — removed from ggml
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ2_XXS = 16,
    GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18,
    GGML_TYPE_IQ1_S = 19,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22,
    GGML_TYPE_IQ4_XS = 23,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30,
    // 31–33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8 — removed
    GGML_TYPE_TQ1_0 = 34,
    GGML_TYPE_TQ2_0 = 35,
    // 36–38: IQ4_NL_4_4, _4_8, _8_8 — removed
    GGML_TYPE_MXFP4 = 39,
    GGML_TYPE_COUNT = 40,
};

struct type_traits {
    const char* name;    // as llama.cpp prints it: "f32", "q8_0", ...
    uint32_t block_size; // elements per block (1 for plain types)
    uint32_t type_size;  // bytes per block
};

// ---- ggml block layouts (the same bytes mean the same numbers as in llama.cpp) ----------------
constexpr int QK = 32; // elements per block of every type below

struct block_q4_0 { // x = d · (q − 8), q in 0..15; byte j holds elements j (low nibble) and j+16 (high)
    uint16_t d;     // fp16 scale
    uint8_t qs[QK / 2];
};
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 is 18 bytes in ggml");

struct block_q4_1 { // x = d · q + m, q in 0..15; nibbles as q4_0
    uint16_t d, m;  // fp16 scale and minimum
    uint8_t qs[QK / 2];
};
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 is 20 bytes in ggml");

struct block_q5_0 { // x = d · (q − 16), q in 0..31; low 4 bits as q4_0, bit 4 of element j = bit j of qh
    uint16_t d;
    uint8_t qh[4];  // little-endian u32
    uint8_t qs[QK / 2];
};
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 is 22 bytes in ggml");

struct block_q5_1 { // x = d · q + m, q in 0..31; bits as q5_0
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK / 2];
};
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 is 24 bytes in ggml");

struct block_q8_0 { // x = d · q, q in −127..127
    uint16_t d;
    int8_t qs[QK];
};
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 is 34 bytes in ggml");

struct block_q8_1 { // x = d · q; s = d · Σq (lets q4_1/q5_1 dots add the minimum's share)
    uint16_t d, s;
    int8_t qs[QK];
};
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 is 36 bytes in ggml");

// Scalar reference quantizers (ggml's *_ref rounding), n a multiple of 32. dst holds n/32 blocks.
void quantize_row_q4_0(const float* x, block_q4_0* y, int64_t n);
void quantize_row_q4_1(const float* x, block_q4_1* y, int64_t n);
void quantize_row_q5_0(const float* x, block_q5_0* y, int64_t n);
void quantize_row_q5_1(const float* x, block_q5_1* y, int64_t n);
void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n);
void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t n);

// Quantizes `rows` rows of `cols` floats to type t (F32, F16, BF16 or a 32-block type above).
// Returns false for a type pyrnn does not write.
bool quantize(uint32_t t, const float* src, void* dst, int64_t rows, int64_t cols);

// nullptr when `id` is not a ggml type (unknown or removed id).
const type_traits* find_type(uint32_t id);

// Bytes of `n` elements of type `t`; `n` must be a multiple of the block size.
inline uint64_t row_bytes(uint32_t t, uint64_t n) {
    const type_traits* tt = find_type(t);
    return n / tt->block_size * tt->type_size;
}

// Widens n elements of type t (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) to float; n a
// multiple of the block size. Returns false for other types.
bool to_f32(uint32_t t, const void* src, float* dst, int64_t n);

// IEEE half <-> float, exact (no flush of subnormals), round-to-nearest-even on the way down.
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);

// bfloat16 is the top half of a float32.
inline float bf16_to_fp32(uint16_t h) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

} // namespace pyrnn
