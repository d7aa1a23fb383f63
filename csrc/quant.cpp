#include "quant.h"

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

bool to_f32(uint32_t t, const void* src, float* dst, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(src);
    switch (t) {
    case GGML_TYPE_F32: std::memcpy(dst, src, size_t(n) * 4); return true;
    case GGML_TYPE_F16: for (int64_t i = 0; i < n; i++) dst[i] = fp16_to_fp32(h[i]); return true;
    case GGML_TYPE_BF16: for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_fp32(h[i]); return true;
    default: return false;
    }
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
