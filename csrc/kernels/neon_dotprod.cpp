// neon_dotprod.cpp — the quantized GEMMs with SDOT (vdotq_s32: four 4-way int8 dots per
// instruction, ARMv8.2 dotprod: Cortex-A55/A76 and later, Apple M1+, Graviton2+). This file alone
// is built with -march=armv8.2-a+dotprod; dispatch reaches it only after the CPU said it has
// dotprod (a Raspberry Pi 3/4's Cortex-A53/A72 has not), and it overrides the neon table's five
// quantized entries and its two packed ones only. Float weights stay with neon.cpp: dotprod adds nothing to them.
#include <arm_neon.h>

#include "kernels.h"
#include "neon_quant.h"

namespace pyrnn {

namespace {

struct dot_sdot {
    static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
    template <int k>
    static int32x4_t dot4_lane(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_laneq_s32(acc, a, b, k); }
};

} // namespace

void override_neon_dotprod(kernel_table& t) {
    t.isa = "neon_dotprod";
    set_quant_gemms<dot_sdot>(t);
}

} // namespace pyrnn
