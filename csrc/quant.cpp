#include "quant.h"

#include <algorithm>
#include <cmath>

namespace pyrnn {

static const type_traits k_types[GGML_TYPE_COUNT] = {
    /*  0 */ {"f32", 1, 4},
    /*  1 */ {"f16", 1, 2},
    /*  2 */ {"q4_0", 32, 18},
    /*  3 */ {"q4_1", 32, 20},
    /*  4 */ {nullptr, 0, 0},
    /*  5 */ {nullptr, 0, 0},
    /*  6 */ {"q5_0", 32, 22},
    /*  7 */ {"q5_1", 32, 24},
    /*  8 */ {"q8_0", 32, 34},
    /*  9 */ {"q8_1", 32, 36},
    /* 10 */ {"q2_K", 256, 84},
    /* 11 */ {"q3_K", 256, 110},
    /* 12 */ {"q4_K", 256, 144},
    /* 13 */ {"q5_K", 256, 176},
    /* 14 */ {"q6_K", 256, 210},
    /* 15 */ {"q8_K", 256, 292},
    /* 16 */ {"iq2_xxs", 256, 66},
    /* 17 */ {"iq2_xs", 256, 74},
    /* 18 */ {"iq3_xxs", 256, 98},
    /* 19 */ {"iq1_s", 256, 50},
    /* 20 */ {"iq4_nl", 32, 18},
    /* 21 */ {"iq3_s", 256, 110},
    /* 22 */ {"iq2_s", 256, 82},
    /* 23 */ {"iq4_xs", 256, 136},
    /* 24 */ {"i8", 1, 1},
    /* 25 */ {"i16", 1, 2},
    /* 26 */ {"i32", 1, 4},
    /* 27 */ {"i64", 1, 8},
    /* 28 */ {"f64", 1, 8},
    /* 29 */ {"iq1_m", 256, 56},
    /* 30 */ {"bf16", 1, 2},
    /* 31 */ {nullptr, 0, 0},
    /* 32 */ {nullptr, 0, 0},
    /* 33 */ {nullptr, 0, 0},
    /* 34 */ {"tq1_0", 256, 54},
    /* 35 */ {"tq2_0", 256, 66},
    /* 36 */ {nullptr, 0, 0},
    /* 37 */ {nullptr, 0, 0},
    /* 38 */ {nullptr, 0, 0},
    /* 39 */ {"mxfp4", 32, 17},
};

const type_traits* find_type(uint32_t id) {
    if (id >= GGML_TYPE_COUNT || k_types[id].name == nullptr) return nullptr;
    return &k_types[id];
}

// ---- dequantize ---------------------------------------------------------------------------

static uint32_t load_qh(const uint8_t* qh) {
    uint32_t v;
    std::memcpy(&v, qh, 4);
    return v;
}

template <typename F> static void each_block(const void* src, int64_t n, size_t block_bytes, F f) {
    const auto* p = static_cast<const uint8_t*>(src);
    for (int64_t b = 0; b < n / QK; b++) f(p + b * block_bytes, b * QK);
}

bool to_f32(uint32_t t, const void* src, float* dst, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(src);
    switch (t) {
    case GGML_TYPE_F32: std::memcpy(dst, src, size_t(n) * 4); return true;
    case GGML_TYPE_F16: for (int64_t i = 0; i < n; i++) dst[i] = fp16_to_fp32(h[i]); return true;
    case GGML_TYPE_BF16: for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_fp32(h[i]); return true;
    case GGML_TYPE_Q4_0:
        each_block(src, n, sizeof(block_q4_0), [&](const uint8_t* p, int64_t o) {
            const auto* b = reinterpret_cast<const block_q4_0*>(p);
            const float d = fp16_to_fp32(b->d);
            for (int j = 0; j < QK / 2; j++) {
                dst[o + j] = d * float((b->qs[j] & 0x0f) - 8);
                dst[o + j + QK / 2] = d * float((b->qs[j] >> 4) - 8);
            }
        });
        return true;
    case GGML_TYPE_Q4_1:
        each_block(src, n, sizeof(block_q4_1), [&](const uint8_t* p, int64_t o) {
            const auto* b = reinterpret_cast<const block_q4_1*>(p);
            const float d = fp16_to_fp32(b->d), m = fp16_to_fp32(b->m);
            for (int j = 0; j < QK / 2; j++) {
                dst[o + j] = d * float(b->qs[j] & 0x0f) + m;
                dst[o + j + QK / 2] = d * float(b->qs[j] >> 4) + m;
            }
        });
        return true;
    case GGML_TYPE_Q5_0:
        each_block(src, n, sizeof(block_q5_0), [&](const uint8_t* p, int64_t o) {
            const auto* b = reinterpret_cast<const block_q5_0*>(p);
            const float d = fp16_to_fp32(b->d);
            const uint32_t qh = load_qh(b->qh);
            for (int j = 0; j < QK / 2; j++) {
                const int lo = (b->qs[j] & 0x0f) | int(((qh >> j) & 1) << 4);
                const int hi = (b->qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
                dst[o + j] = d * float(lo - 16);
                dst[o + j + QK / 2] = d * float(hi - 16);
            }
        });
        return true;
    case GGML_TYPE_Q5_1:
        each_block(src, n, sizeof(block_q5_1), [&](const uint8_t* p, int64_t o) {
            const auto* b = reinterpret_cast<const block_q5_1*>(p);
            const float d = fp16_to_fp32(b->d), m = fp16_to_fp32(b->m);
            const uint32_t qh = load_qh(b->qh);
            for (int j = 0; j < QK / 2; j++) {
                const int lo = (b->qs[j] & 0x0f) | int(((qh >> j) & 1) << 4);
                const int hi = (b->qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
                dst[o + j] = d * float(lo) + m;
                dst[o + j + QK / 2] = d * float(hi) + m;
            }
        });
        return true;
    case GGML_TYPE_Q8_0:
        each_block(src, n, sizeof(block_q8_0), [&](const uint8_t* p, int64_t o) {
            const auto* b = reinterpret_cast<const block_q8_0*>(p);
            const float d = fp16_to_fp32(b->d);
            for (int j = 0; j < QK; j++) dst[o + j] = d * float(b->qs[j]);
        });
        return true;
    default: return false;
    }
}

// ---- quantize (ggml's reference rounding, so files match llama-quantize's) -------------------

// Float → integer code, defined for every input: a NaN or infinite value (a file with non-finite
// weights, an activation that overflowed) would make the plain cast undefined behaviour. In-range
// values convert exactly as the plain cast does; NaN becomes lo.
static int to_code(float v, float lo, float hi) { return int(std::fmin(std::fmax(v, lo), hi)); }

// NaN when any of x[0..QK) is NaN or infinite, else 0: added to a block's scale, so that non-finite
// input gives NaN output (as the float kernels do) instead of silently quantized garbage.
static float nan_if_nonfinite(const float* x) {
    float s = 0.0f;
    for (int j = 0; j < QK; j++) s += x[j] * 0.0f;
    return s;
}

void quantize_row_q4_0(const float* x, block_q4_0* y, int64_t n) {
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f, max = 0.0f; // max keeps its sign: the extreme value maps to −8 exactly
        for (int j = 0; j < QK; j++) {
            if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
        }
        const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t lo = uint8_t(std::min(15, to_code(x[j] * id + 8.5f, 0.0f, 127.0f)));
            const uint8_t hi = uint8_t(std::min(15, to_code(x[j + QK / 2] * id + 8.5f, 0.0f, 127.0f)));
            y[b].qs[j] = uint8_t(lo | (hi << 4));
        }
    }
}

void quantize_row_q4_1(const float* x, block_q4_1* y, int64_t n) {
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        float min = x[0], max = x[0];
        for (int j = 1; j < QK; j++) { min = std::min(min, x[j]); max = std::max(max, x[j]); }
        const float d = (max - min) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        y[b].m = fp32_to_fp16(min);
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t lo = uint8_t(std::min(15, to_code((x[j] - min) * id + 0.5f, 0.0f, 127.0f)));
            const uint8_t hi = uint8_t(std::min(15, to_code((x[j + QK / 2] - min) * id + 0.5f, 0.0f, 127.0f)));
            y[b].qs[j] = uint8_t(lo | (hi << 4));
        }
    }
}

void quantize_row_q5_0(const float* x, block_q5_0* y, int64_t n) {
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++) {
            if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
        }
        const float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t lo = uint8_t(std::min(31, to_code(x[j] * id + 16.5f, 0.0f, 127.0f)));
            const uint8_t hi = uint8_t(std::min(31, to_code(x[j + QK / 2] * id + 16.5f, 0.0f, 127.0f)));
            y[b].qs[j] = uint8_t((lo & 0x0f) | ((hi & 0x0f) << 4));
            qh |= uint32_t((lo & 0x10) >> 4) << j;
            qh |= uint32_t((hi & 0x10) >> 4) << (j + QK / 2);
        }
        std::memcpy(y[b].qh, &qh, 4);
    }
}

void quantize_row_q5_1(const float* x, block_q5_1* y, int64_t n) {
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        float min = x[0], max = x[0];
        for (int j = 1; j < QK; j++) { min = std::min(min, x[j]); max = std::max(max, x[j]); }
        const float d = (max - min) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        y[b].m = fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t lo = uint8_t(to_code((x[j] - min) * id + 0.5f, 0.0f, 255.0f));
            const uint8_t hi = uint8_t(to_code((x[j + QK / 2] - min) * id + 0.5f, 0.0f, 255.0f));
            y[b].qs[j] = uint8_t((lo & 0x0f) | ((hi & 0x0f) << 4));
            qh |= uint32_t((lo & 0x10) >> 4) << j;
            qh |= uint32_t((hi & 0x10) >> 4) << (j + QK / 2);
        }
        std::memcpy(y[b].qh, &qh, 4);
    }
}

void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n) {
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d + nan_if_nonfinite(x));
        for (int j = 0; j < QK; j++) y[b].qs[j] = int8_t(to_code(std::round(x[j] * id), -127.0f, 127.0f));
    }
}

void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t n) {
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f + nan_if_nonfinite(x), id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            y[b].qs[j] = int8_t(to_code(std::round(x[j] * id), -127.0f, 127.0f));
            sum += y[b].qs[j];
        }
        y[b].s = fp32_to_fp16(float(sum) * d);
    }
}

bool quantize(uint32_t t, const float* src, void* dst, int64_t rows, int64_t cols) {
    const type_traits* tt = find_type(t);
    if (tt == nullptr || cols % tt->block_size != 0) return false;
    auto* out = static_cast<uint8_t*>(dst);
    const uint64_t rb = row_bytes(t, uint64_t(cols));
    for (int64_t r = 0; r < rows; r++) {
        const float* x = src + r * cols;
        uint8_t* y = out + uint64_t(r) * rb;
        switch (t) {
        case GGML_TYPE_F32: std::memcpy(y, x, size_t(cols) * 4); break;
        case GGML_TYPE_F16: {
            auto* h = reinterpret_cast<uint16_t*>(y);
            for (int64_t i = 0; i < cols; i++) h[i] = fp32_to_fp16(x[i]);
            break;
        }
        case GGML_TYPE_BF16: {
            auto* h = reinterpret_cast<uint16_t*>(y);
            for (int64_t i = 0; i < cols; i++) { // round to nearest even; NaN stays NaN
                uint32_t u;
                std::memcpy(&u, &x[i], 4);
                h[i] = (u & 0x7fffffffu) > 0x7f800000u ? uint16_t((u >> 16) | 0x40)
                                                       : uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
            }
            break;
        }
        case GGML_TYPE_Q4_0: quantize_row_q4_0(x, reinterpret_cast<block_q4_0*>(y), cols); break;
        case GGML_TYPE_Q4_1: quantize_row_q4_1(x, reinterpret_cast<block_q4_1*>(y), cols); break;
        case GGML_TYPE_Q5_0: quantize_row_q5_0(x, reinterpret_cast<block_q5_0*>(y), cols); break;
        case GGML_TYPE_Q5_1: quantize_row_q5_1(x, reinterpret_cast<block_q5_1*>(y), cols); break;
        case GGML_TYPE_Q8_0: quantize_row_q8_0(x, reinterpret_cast<block_q8_0*>(y), cols); break;
        default: return false;
        }
    }
    return true;
}

float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t u;
    if (exp == 0x1f) {                 // inf / nan
        u = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {             // normal
        u = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {            // ±0
        u = sign;
    } else {                           // subnormal: renormalise
        exp = 113;
        while ((mant & 0x400) == 0) {
            mant <<= 1;
            exp--;
        }
        u = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

uint16_t fp32_to_fp16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) {          // inf / nan (keep nan quiet)
        return uint16_t(sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
    }
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00); // rounds past 65504
    if (abs < 0x38800000u) {           // result is subnormal or zero
        if (abs < 0x33000000u) return sign; // below half the smallest subnormal
        const uint32_t exp = abs >> 23;
        const uint32_t mant = (abs & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - exp; // 14..24
        uint32_t r = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return uint16_t(sign | r);
    }
    // normal: rebias exponent, round mantissa to 10 bits (nearest even); carry may bump exponent
    uint32_t r = ((abs >> 13) - (112u << 10));
    const uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return uint16_t(sign | r);
}

} // namespace pyrnn
