#!/usr/bin/env bash
# CI reliability checks (docs/RELIABILITY.md): libFuzzer on the GGUF loader, then the test suite
# against a core built with AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   tools/ci_reliability.sh            # fuzz 60 s + sanitized tests (what .ci/run calls)
#   FUZZ_SECONDS=600 tools/ci_reliability.sh
#
# Needs clang with the libFuzzer runtime (installed here when missing, Debian 12: libclang-rt-14-dev)
# and GCC's libasan (the sanitized Python module is built with the default compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, long) { return 0; }' |
     clang++ -x c++ - -fsanitize=fuzzer -o /tmp/pyrnn_fuzz_probe 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi

echo "== fuzz: GGUF loader, ${FUZZ_SECONDS:-60} s"
tools/fuzz.sh "${FUZZ_SECONDS:-60}" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::|INFO: Done|==[0-9]+==|SUMMARY)|ERROR|Test unit written" || true
test "${PIPESTATUS[0]}" -eq 0

echo "== sanitizers: build (ASan + UBSan)"
python3 -m pip install -q pybind11 ninja cmake  # the wheel was built in an isolated env: these are not installed
build=build/asan
if [ ! -f "$build/build.ninja" ]; then  # a configure that failed leaves a cache but no build.ninja
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPYRNN_SANITIZE=ON \
    -DPython_EXECUTABLE="$(command -v python3)" -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" >/dev/null
fi
cmake --build "$build" --target _core -- -j"${PYRNN_JOBS:-2}"
# A copy of the package with the sanitized module; python -m pytest run from there imports it first.
rm -rf "$build/pkg" && mkdir -p "$build/pkg" && cp -r pyrnn "$build/pkg/" && rm -f "$build"/pkg/pyrnn/_core*.so
cp "$build"/_core*.so "$build/pkg/pyrnn/"

echo "== sanitizers: tests"
# The whole suite, the PyTorch-reference modules (test_rwkv*, test_mamba*, test_retnet, the torch.save
# cases of test_torch_pickle) included: torch, transformers, torchscale and rwkv run unchanged with the
# sanitizer runtime preloaded (uninstrumented, so only pyrnn's code is checked; docs/RELIABILITY.md).
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# detect_leaks=0: CPython keeps interned objects alive at exit by design.
(
  cd "$build/pkg"
  python3 -c "import pyrnn, sys; f = pyrnn._core.__file__; print('sanitized module:', f); sys.exit('/pkg/' not in f)"
  # Those modules importorskip their references: import them here so a missing one fails instead of skipping.
  python3 -c "import torch, transformers, torchscale, rwkv; print('references: torch', torch.__version__)"
  # ASan is still live with them loaded: one byte past a 16-byte malloc must be reported
  # (exit 1 rather than abort here, so the shell prints no "Aborted" line for the expected failure).
  if ASAN_OPTIONS=detect_leaks=0 python3 -c "import torch, transformers, ctypes; torch.randn(64) @ torch.randn(64)
c = ctypes.CDLL(None); c.malloc.restype = ctypes.c_void_p
ctypes.memmove(c.malloc(16), ctypes.create_string_buffer(17), 17)" 2>../asan_probe.txt ||
     ! grep -q "heap-buffer-overflow" ../asan_probe.txt; then
    echo "ASan did not catch an overflow with torch loaded"; exit 1
  fi
  echo "ASan live with torch loaded: an overflow past malloc(16) is reported"
  # The hypothesis properties are pure Python (they ran in full in the main suite): a short pass here.
  PYRNN_FUZZ_EXAMPLES=25 python3 -m pytest -q -p no:cacheprovider --durations=8 "$OLDPWD/tests"
)
unset LD_PRELOAD
echo "== reliability checks: $((SECONDS - start)) s"
