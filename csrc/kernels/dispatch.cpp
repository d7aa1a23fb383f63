// dispatch.cpp — detects the CPU once and builds one kernel table per ISA it can run.
// Adding an ISA: its kernel file, one CMake line, one branch in build_tables().
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

#if defined(__aarch64__) || defined(_M_ARM64)
#if defined(__linux__) || defined(__ANDROID__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) // Linux's arm64 hwcap bit; old libc headers lack the name
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#endif

namespace pyrnn {

namespace {

struct cpu_caps {
    bool avx2 = false; // with FMA and F16C, as every AVX2 CPU since Haswell/Zen has
    bool avx512 = false; // AVX-512 F, BW, VL and VNNI (Ice Lake, Cascade Lake, Zen 4 and later)
    bool neon = false;    // AArch64 Advanced SIMD: part of the baseline, always true there
    bool dotprod = false; // ARMv8.2 SDOT/UDOT (FEAT_DotProd)
};

#if defined(__x86_64__) || defined(_M_X64)
void cpuid(int leaf, int sub, unsigned r[4]) {
#if defined(_MSC_VER)
    int v[4];
    __cpuidex(v, leaf, sub);
    for (int i = 0; i < 4; i++) r[i] = unsigned(v[i]);
#else
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

unsigned long long xcr0() {
#if defined(_MSC_VER)
    return _xgetbv(0);
#else
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<unsigned long long>(hi) << 32) | lo;
#endif
}

cpu_caps detect() {
    cpu_caps c;
    unsigned r[4];
    cpuid(0, 0, r);
    const unsigned max_leaf = r[0];
    cpuid(1, 0, r);
    const bool fma = r[2] & (1u << 12), osxsave = r[2] & (1u << 27), f16c = r[2] & (1u << 29);
    if (!osxsave || max_leaf < 7) return c;
    const unsigned long long xcr = xcr0();
    const bool os_avx = (xcr & 0x6) == 0x6;       // the OS saves XMM and YMM registers
    const bool os_avx512 = (xcr & 0xe6) == 0xe6;  // ... and opmask, upper ZMM0-15, ZMM16-31 (bits 5-7)
    cpuid(7, 0, r);
    const bool avx2 = r[1] & (1u << 5);
    c.avx2 = os_avx && avx2 && fma && f16c;
    // Skylake-SP/X has F, BW and VL but no VNNI: it stays on avx2 (the quantized kernels need VNNI).
    const bool f = r[1] & (1u << 16), bw = r[1] & (1u << 30), vl = r[1] & (1u << 31), vnni = r[2] & (1u << 11);
    c.avx512 = c.avx2 && os_avx512 && f && bw && vl && vnni;
    return c;
}
#elif defined(__aarch64__) || defined(_M_ARM64)
cpu_caps detect() {
    cpu_caps c;
    c.neon = true;
#if defined(__linux__) || defined(__ANDROID__)
    c.dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; // the kernel's word, as /proc/cpuinfo's "asimddp"
#elif defined(__APPLE__)
    // Every Apple silicon Mac (M1 = ARMv8.5) has dotprod; ask anyway, and assume it if the key is
    // missing (macOS 11 lacks hw.optional.arm.FEAT_DotProd).
    int v = 0;
    size_t len = sizeof(v);
    c.dotprod = sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, nullptr, 0) != 0 || v != 0;
#endif
    return c;
}
#else
cpu_caps detect() { return {}; }
#endif

struct tables {
    cpu_caps caps;
    std::vector<std::pair<std::string, kernel_table>> list; // ref first, best last
};

tables build_tables() {
    tables t;
    t.caps = detect();
    kernel_table ref;
    fill_ref(ref);
    t.list.emplace_back("ref", ref);
#ifdef PYRNN_HAVE_AVX2
    if (t.caps.avx2) {
        kernel_table k = ref;
        override_avx2(k);
        t.list.emplace_back("avx2", k);
#ifdef PYRNN_HAVE_AVX512
        if (t.caps.avx512) { // the avx2 table, with what AVX-512 speeds up overridden
            override_avx512(k);
            t.list.emplace_back("avx512", k);
        }
#endif
    }
#endif
#ifdef PYRNN_HAVE_NEON
    if (t.caps.neon) {
        kernel_table k = ref;
        override_neon(k);
        t.list.emplace_back("neon", k);
#ifdef PYRNN_HAVE_NEON_DOTPROD
        if (t.caps.dotprod) { // neon's float kernels, SDOT for the quantized ones
            override_neon_dotprod(k);
            t.list.emplace_back("neon_dotprod", k);
        }
#endif
    }
#endif
    return t;
}

const tables& all_tables() {
    static const tables t = build_tables();
    return t;
}

const kernel_table& select() {
    const tables& t = all_tables();
    const char* forced = std::getenv("PYRNN_ISA");
    if (forced == nullptr || *forced == '\0') return t.list.back().second;
    for (const auto& [name, table] : t.list) {
        if (name == forced) return table;
    }
    std::string names;
    for (const auto& entry : t.list) names += (names.empty() ? "" : ", ") + entry.first;
    throw std::runtime_error(std::string("PYRNN_ISA: expected one of ") + names +
                             " (built and supported by this CPU), found '" + forced + "'");
}

} // namespace

const kernel_table& kernels() {
    static const kernel_table& k = select();
    return k;
}

std::vector<std::string> available_isas() {
    std::vector<std::string> names;
    for (const auto& entry : all_tables().list) names.push_back(entry.first);
    return names;
}

const kernel_table* kernels_for(const std::string& isa) {
    for (const auto& entry : all_tables().list) {
        if (entry.first == isa) return &entry.second;
    }
    return nullptr;
}

std::string cpu_features() {
    const cpu_caps& c = all_tables().caps;
    std::string s;
#if defined(__x86_64__) || defined(_M_X64)
    s = "x86_64";
    if (c.avx2) s += " avx2 fma f16c";
    if (c.avx512) s += " avx512f avx512bw avx512vl avx512_vnni";
#elif defined(__aarch64__) || defined(_M_ARM64)
    s = "aarch64";
    if (c.neon) s += " asimd";
    if (c.dotprod) s += " asimddp";
#else
    s = "generic";
    (void)c;
#endif
    return s;
}

} // namespace pyrnn
