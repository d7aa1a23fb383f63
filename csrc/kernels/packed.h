// packed.h — weight matrices repacked at load time, 16 rows side by side, for the kernels that
// compute several rows at once, one row per 32-bit lane (16 per AVX-512 register, 8 per AVX2
// register, 4 per NEON register).
//
//   packed_matrix p = pack_rows(GGML_TYPE_Q4_0, w, rows, cols);   // rows ≥ 16; the first rows/16·16
//   kernels().packed[GGML_TYPE_Q4_0](p.data(), x, y, p.rows, cols, n, ldy); // as gemm, on those rows
//
// Why: the file's layout puts one row's block after another, so a kernel that reads a row at a time
// must unpack nibbles with lane shuffles and reduce each row's vector to a scalar — for Q4_0 that
// work, not memory, limits decode. Here byte group i (4 bytes) of 16 rows' block b sits in one
// 64-byte chunk: one load feeds vpdpbusd for 16 rows at once, whose 16 int32 lanes are the 16 rows'
// partial sums: no shuffle, no horizontal sum, and one input stream per 16 rows.
//
// F32, F16, BF16 (float models; the LoRA matrices of quantized files): a group is its 16 rows column
// by column, out[c][r] (padded to a multiple of 64 bytes), so a kernel adds W[:, c]·x_c to 16 rows
// at once, with no horizontal sum (the row form reduces a vector per row: most of the work when a
// row has only 32–64 columns) and one input stream per 16 rows.
//
// Layout of one quantized group of 16 rows with nb = cols / 32 blocks per row (groups follow each other):
//   d:   nb × 16 fp16    the scales, block-major: d[b][r] (padded to a multiple of 64 bytes)
//   qs:  nb × chunks × 64 bytes, chunk i of block b = rows 0..15's bytes 4i..4i+3 of that block
//     Q4_0: 4 chunks of the stored nibble bytes (low nibbles: elements 4i..4i+3, high: 16+4i..)
//     Q8_0: 8 chunks of q + 128 as unsigned bytes (elements 4i..4i+3), so vpdpbusd multiplies
//           them by x's signed bytes; the kernel starts from −128·Σq_x to take the 128 back out.
// The bytes keep every bit of the file's (unpack_rows gives them back), so results are the spec's
// (ref.cpp) within float rounding, as for any other kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <new>

#include "../quant.h"

namespace pyrnn {

constexpr int64_t PACK_ROWS = 16; // rows per packed group

// Frees what ::operator new(size, align) gave.
struct aligned_release {
    size_t align = 64;
    void operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t(align)); }
};

// Owned bytes of a packed matrix (64-byte aligned; 2 MiB from 2 MiB on, for huge pages).
struct packed_matrix {
    std::unique_ptr<uint8_t, aligned_release> bytes;
    int64_t rows = 0; // rows packed: a multiple of PACK_ROWS (the rest stay in the file's layout)
    const uint8_t* data() const { return bytes.get(); }
};

// Bytes of a group's scales (nb blocks × 16 fp16), padded so that its quant bytes start 64-aligned.
// (Not inline: avx512.cpp calls it, and an inline copy compiled there could serve other callers.)
uint64_t packed_scale_bytes(int64_t nb);

// True for the types this layout has (Q4_0, Q8_0, F32, F16, BF16).
bool packable(uint32_t type);

// Bytes of one packed group of 16 rows of `cols` columns (for Q4_0/Q8_0 a multiple of 32).
uint64_t packed_group_bytes(uint32_t type, int64_t cols);

// The first rows / 16 · 16 rows of w (type, rows × cols, the file's layout), repacked. Throws
// std::bad_alloc when memory runs out; rows < 16 gives an empty result (rows = 0).
packed_matrix pack_rows(uint32_t type, const void* w, int64_t rows, int64_t cols);

// The inverse, for tests: p's p.rows rows back in the file's layout (row_bytes(type, cols) each).
void unpack_rows(uint32_t type, const packed_matrix& p, int64_t cols, void* out);

// A call's activations for the packed Q4_0/Q8_0 kernels: token t's block b at k = t·nb + b, as
// quantized (its 32 q, broadcast 4 at a time), its scale as a float, and −off·Σq, where the integer
// block sum starts (off: the stored weights' offset, Q4_0's 8 or Q8_0's 128 for q + 128; 0 where the
// kernel restores signed q).
struct packed_x {
    float* d;
    int32_t* start;
    block_q8_0* blocks;
};

// Bytes of memory prepare_packed_x needs for n tokens of cols floats.
size_t packed_x_bytes(int64_t n, int64_t cols);

// Quantizes x (n tokens of cols floats) with quantize_x (quantize_row_q8_0 or an ISA's byte-exact
// twin) into mem (packed_x_bytes(n, cols) bytes, 4-byte aligned) and fills the scales and starts.
// Plain C++ in packed.cpp: the ISA files call it rather than each carrying a copy.
packed_x prepare_packed_x(void* mem, const float* x, int64_t n, int64_t cols, int32_t off,
                          void (*quantize_x)(const float*, block_q8_0*, int64_t));

} // namespace pyrnn
