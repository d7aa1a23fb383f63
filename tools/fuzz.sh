#!/usr/bin/env bash
# Fuzz the GGUF loader (parse → model → one forward step) with libFuzzer + ASan + UBSan.
#
#   tools/fuzz.sh            # 60 s (what CI runs)
#   tools/fuzz.sh 3600       # an hour, by hand; new interesting inputs accumulate in build/fuzz/corpus
#
# Seeds: fuzz/corpus/gguf (one tiny model per architecture) and tests/data/fuzz_regressions (past
# crashes). A crash leaves build/fuzz/artifacts/crash-* and a non-zero exit: fix the loader, then
# copy the file to tests/data/fuzz_regressions/ (tests/test_fuzz_regressions.py loads each one).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${PYRNN_FUZZ_BUILD_DIR:-build/fuzz}
cxx=${CXX_FUZZ:-$(command -v clang++ || true)}
[ -n "$cxx" ] || { echo "fuzz.sh: expected clang++ (apt-get install clang libclang-rt-14-dev), found none" >&2; exit 2; }
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPYRNN_FUZZ=ON -DPYRNN_PYTHON=OFF \
    -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
fi
cmake --build "$build" --target fuzz_gguf -- -j"${PYRNN_JOBS:-2}"
mkdir -p "$build/corpus" "$build/artifacts"
# The first corpus folder receives new inputs; the committed seeds are only read.
# detect_leaks stays on: a leak in the loader is a finding. -timeout: one input, seconds.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
"$build/fuzz_gguf" "$build/corpus" fuzz/corpus/gguf tests/data/fuzz_regressions \
  -dict=fuzz/gguf.dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -max_len=262144 -artifact_prefix="$build/artifacts/" -print_final_stats=1 "${@:2}"
