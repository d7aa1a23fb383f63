#!/usr/bin/env bash
# C++ tests (ctest: test_kernels, test_threads, test_cuda_math), from clean build dirs:
#   1. natively on this machine (x86-64: ref + avx2),
#   2. cross-built for AArch64 with GCC, run under qemu-user twice: QEMU_CPU=cortex-a53 (no
#      dotprod: the neon table must be chosen) and cortex-a76 (dotprod: neon_dotprod),
#   3. the same with clang --target=aarch64-linux-gnu against the GCC cross sysroot (the stand-in
#      for Termux's clang; PYRNN_ARM_CLANG=0 skips it).
# qemu proves correctness, not speed. Installs what is missing with apt-get (Debian/Ubuntu).
#   tools/test_arm.sh            # as CI runs it
#   tools/test_arm.sh --keep     # reuse the build dirs (incremental, for development)
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
[ "${1:-}" = "--keep" ] && keep=1
clang_too=${PYRNN_ARM_CLANG:-1}
jobs=$(nproc 2>/dev/null || echo 2)
t_start=$(date +%s)
stamp() { echo "-- $1: $(( $(date +%s) - t_start )) s since start"; }

# ---- tools (skip apt when everything is there) ----------------------------------------------------
pkgs=()
command -v aarch64-linux-gnu-g++ >/dev/null || pkgs+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || pkgs+=(qemu-user qemu-user-static binfmt-support)
command -v cmake >/dev/null || pkgs+=(cmake)
command -v ninja >/dev/null || pkgs+=(ninja-build)
command -v g++ >/dev/null || pkgs+=(g++)
[ "$clang_too" = 1 ] && { command -v clang++ >/dev/null || pkgs+=(clang); }
if [ ${#pkgs[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" != 0 ] && sudo=sudo
  echo "-- installing: ${pkgs[*]}"
  # --no-install-recommends: qemu-user recommends qemu-user-binfmt, which conflicts with qemu-user-static
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  stamp "tools installed"
fi

# ---- configure, build, ctest -------------------------------------------------------------------
run_suite() { # name, extra cmake args...
  local dir=build/ctest-$1
  shift
  [ "$keep" = 1 ] || rm -rf "$dir"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPYRNN_PYTHON=OFF -DPYRNN_TESTS=ON "$@" >/dev/null
  cmake --build "$dir" --target test_kernels test_threads test_cuda_math -- -j"$jobs"
  (cd "$dir" && ctest --output-on-failure)
  stamp "$(basename "$dir") done"
}

echo "== C++ kernel tests: native ($(uname -m))"
run_suite native
echo "== C++ kernel tests: aarch64, GCC cross, under qemu"
run_suite arm64-gcc -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
if [ "$clang_too" = 1 ]; then
  echo "== C++ kernel tests: aarch64, clang --target=aarch64-linux-gnu, under qemu"
  run_suite arm64-clang -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu-clang.cmake
fi
