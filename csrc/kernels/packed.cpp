// packed.cpp — the 16-row layout of packed.h: plain byte moves, no intrinsics (any ISA's kernel
// may read it).
#include "packed.h"

#include <cstddef>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include <cstring>

#include "../quant.h"

namespace pyrnn {

namespace {

// 4-byte chunks per block: Q4_0 stores 16 bytes of nibbles, Q8_0 32 bytes of q.
int64_t chunks(uint32_t type) { return type == GGML_TYPE_Q4_0 ? 4 : 8; }

// Where a block's 2-byte scale and its quant bytes are, and what packing does to the bytes.
struct block_view {
    uint64_t size; // bytes per block in the file
    uint64_t qs;   // offset of the quant bytes in a block
    uint8_t flip;  // XORed into each quant byte (Q8_0: signed → q + 128)
};

block_view view(uint32_t type) {
    if (type == GGML_TYPE_Q4_0) return {sizeof(block_q4_0), offsetof(block_q4_0, qs), 0x00};
    return {sizeof(block_q8_0), offsetof(block_q8_0, qs), 0x80};
}

} // namespace

uint64_t packed_scale_bytes(int64_t nb) { return (uint64_t(nb) * PACK_ROWS * 2 + 63) / 64 * 64; }

namespace {

// Bytes per element of the float types, which pack column by column; 0 for the block types.
uint64_t float_bytes(uint32_t type) {
    return type == GGML_TYPE_F32 ? 4 : type == GGML_TYPE_F16 || type == GGML_TYPE_BF16 ? 2 : 0;
}

} // namespace

bool packable(uint32_t type) { return type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q8_0 || float_bytes(type) != 0; }

uint64_t packed_group_bytes(uint32_t type, int64_t cols) {
    if (float_bytes(type) != 0) return (uint64_t(cols) * PACK_ROWS * float_bytes(type) + 63) / 64 * 64;
    const int64_t nb = cols / QK;
    return packed_scale_bytes(nb) + uint64_t(nb * chunks(type)) * 64;
}

packed_matrix pack_rows(uint32_t type, const void* w, int64_t rows, int64_t cols) {
    packed_matrix p;
    p.rows = rows / PACK_ROWS * PACK_ROWS;
    if (!packable(type) || p.rows == 0) {
        p.rows = 0;
        return p;
    }
    const uint64_t gb = packed_group_bytes(type, cols);
    // From 2 MiB on, 2 MiB-aligned and advised into transparent huge pages: decode streams every
    // packed byte once per token, and with 4 KiB pages the TLB misses cost more than the layout
    // saves (RWKV-4 169M F16 decode 46 → 39 tok/s packed on 4 KiB pages, 48–51 on huge pages).
    const uint64_t total = gb * uint64_t(p.rows / PACK_ROWS);
    const bool huge = total >= (uint64_t(2) << 20);
    const size_t align = huge ? size_t(2) << 20 : 64;
    p.bytes = std::unique_ptr<uint8_t, aligned_release>(static_cast<uint8_t*>(::operator new(total, std::align_val_t(align))),
                                                        aligned_release{align});
#ifdef __linux__
    if (huge) ::madvise(p.bytes.get(), total / (uint64_t(2) << 20) * (uint64_t(2) << 20), MADV_HUGEPAGE);
#endif
    if (const uint64_t e = float_bytes(type); e != 0) { // column c of a group: its 16 rows' values
        const auto* src = static_cast<const uint8_t*>(w);
        for (int64_t g = 0; g < p.rows / PACK_ROWS; g++) {
            uint8_t* out = p.bytes.get() + uint64_t(g) * gb;
            std::memset(out, 0, gb); // the padding to 64 bytes (F16/BF16, odd column counts)
            for (int64_t c = 0; c < cols; c++)
                for (int64_t r = 0; r < PACK_ROWS; r++) {
                    std::memcpy(out + uint64_t(c * PACK_ROWS + r) * e, src + (uint64_t(g * PACK_ROWS + r) * uint64_t(cols) + uint64_t(c)) * e, e);
                }
        }
        return p;
    }
    const int64_t nb = cols / QK, nc = chunks(type);
    const uint64_t rb = uint64_t(nb) * view(type).size;
    const block_view bv = view(type);
    const auto* src = static_cast<const uint8_t*>(w);
    for (int64_t g = 0; g < p.rows / PACK_ROWS; g++) {
        uint8_t* out = p.bytes.get() + uint64_t(g) * gb;
        std::memset(out, 0, packed_scale_bytes(nb)); // the padding after the scales
        uint8_t* qs = out + packed_scale_bytes(nb);
        for (int64_t r = 0; r < PACK_ROWS; r++) {
            const uint8_t* row = src + uint64_t(g * PACK_ROWS + r) * rb;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t* blk = row + uint64_t(b) * bv.size;
                std::memcpy(out + (b * PACK_ROWS + r) * 2, blk, 2); // d: the block's first field
                for (int64_t i = 0; i < nc; i++) {
                    uint8_t* dst = qs + ((b * nc + i) * PACK_ROWS + r) * 4;
                    for (int j = 0; j < 4; j++) dst[j] = uint8_t(blk[bv.qs + 4 * i + j] ^ bv.flip);
                }
            }
        }
    }
    return p;
}

size_t packed_x_bytes(int64_t n, int64_t cols) {
    const size_t count = size_t(n * (cols / QK) > 0 ? n * (cols / QK) : 1);
    return count * (sizeof(float) + sizeof(int32_t) + sizeof(block_q8_0));
}

packed_x prepare_packed_x(void* mem, const float* x, int64_t n, int64_t cols, int32_t off,
                          void (*quantize_x)(const float*, block_q8_0*, int64_t)) {
    const int64_t nb = cols / QK, count = n * nb > 0 ? n * nb : 1;
    packed_x px; // the scales and starts first (4-byte aligned), then the 34-byte blocks
    px.d = static_cast<float*>(mem);
    px.start = reinterpret_cast<int32_t*>(px.d + count);
    px.blocks = reinterpret_cast<block_q8_0*>(px.start + count);
    for (int64_t t = 0; t < n; t++) quantize_x(x + t * cols, px.blocks + t * nb, cols);
    for (int64_t k = 0; k < n * nb; k++) {
        int32_t sum = 0;
        for (int i = 0; i < QK; i++) sum += px.blocks[k].qs[i];
        px.d[k] = fp16_to_fp32(px.blocks[k].d);
        px.start[k] = -off * sum;
    }
    return px;
}

void unpack_rows(uint32_t type, const packed_matrix& p, int64_t cols, void* out) {
    if (const uint64_t e = float_bytes(type); e != 0) {
        const uint64_t gb = packed_group_bytes(type, cols);
        auto* dst = static_cast<uint8_t*>(out);
        for (int64_t row = 0; row < p.rows; row++)
            for (int64_t c = 0; c < cols; c++) {
                const uint8_t* in = p.data() + uint64_t(row / PACK_ROWS) * gb + uint64_t(c * PACK_ROWS + row % PACK_ROWS) * e;
                std::memcpy(dst + (uint64_t(row) * uint64_t(cols) + uint64_t(c)) * e, in, e);
            }
        return;
    }
    const int64_t nb = cols / QK, nc = chunks(type);
    const uint64_t gb = packed_group_bytes(type, cols);
    const block_view bv = view(type);
    auto* dst = static_cast<uint8_t*>(out);
    for (int64_t row = 0; row < p.rows; row++) {
        const int64_t g = row / PACK_ROWS, r = row % PACK_ROWS;
        const uint8_t* in = p.data() + uint64_t(g) * gb;
        const uint8_t* qs = in + packed_scale_bytes(nb);
        for (int64_t b = 0; b < nb; b++) {
            uint8_t* blk = dst + (uint64_t(row) * uint64_t(nb) + uint64_t(b)) * bv.size;
            std::memcpy(blk, in + (b * PACK_ROWS + r) * 2, 2);
            for (int64_t i = 0; i < nc; i++) {
                const uint8_t* s = qs + ((b * nc + i) * PACK_ROWS + r) * 4;
                for (int j = 0; j < 4; j++) blk[bv.qs + 4 * i + j] = uint8_t(s[j] ^ bv.flip);
            }
        }
    }
}

} // namespace pyrnn
