#!/usr/bin/env bash
# The owed GPU run (docs/CUDA.md, "What is owed") in one command, sized for a short device lease:
#
#   tools/gpu_check.sh [OUT]          # OUT: logs and the benchmark table (default build/gpu-check)
#   GPU_CHECK_BENCH=0 tools/gpu_check.sh   # correctness only (build, test_cuda_math, tests/test_cuda.py)
#   GPU_CHECK_BUILD=0 tools/gpu_check.sh   # use the pyrnn/_core*.so already there (built elsewhere with
#                                          # CUDA_ARCHS=90 tools/build_cuda.sh and carried over)
#
# 1. says what the machine has (GPU, driver, nvcc, Python modules) and stops early if a need is missing;
# 2. builds the CUDA backend for this GPU's architecture only, with every core;
# 3. runs test_cuda_math and the GPU tests (every architecture × F32/F16/Q8_0/Q4_0 against the CPU);
# 4. makes real-shape random models (RWKV-7 0.1B and 0.4B, Mamba 130M; F16 and Q8_0, numpy only) and
#    runs benchmarks/cuda_bench.py on each.
# Each step's output is in OUT; the exit status is the tests' (a failed test still lets the benchmark run).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/gpu-check}
mkdir -p "$out"
export PATH="/usr/local/cuda/bin:$PATH"

echo "== machine" | tee "$out/machine.txt"
if ! nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv | tee -a "$out/machine.txt"; then
  echo "gpu_check: nvidia-smi failed: no NVIDIA GPU or driver here" >&2
  exit 2
fi
build_it=${GPU_CHECK_BUILD:-1}
missing=""
tools="python3" mods="numpy pytest safetensors tokenizers"
[ "$build_it" = 1 ] && tools="$tools nvcc cmake ninja" mods="$mods pybind11"
for tool in $tools; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
for mod in $mods; do python3 -c "import $mod" 2>/dev/null || missing="$missing python:$mod"; done
[ "$build_it" = 1 ] && nvcc --version | tail -1 | tee -a "$out/machine.txt"
if [ -n "$missing" ]; then
  echo "gpu_check: missing:$missing" | tee -a "$out/machine.txt" >&2
  exit 2
fi

if [ "$build_it" = 1 ]; then
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')
  build="build/cuda-sm$arch"
  echo "== build ($build, sm_$arch)"
  if ! CUDA_ARCHS="$arch" PYRNN_JOBS="$(nproc)" PYRNN_BUILD_DIR="$build" tools/build_cuda.sh >"$out/build.txt" 2>&1; then
    tail -30 "$out/build.txt" >&2
    echo "gpu_check: the build failed (log: $out/build.txt)" >&2
    exit 1
  fi
  tail -1 "$out/build.txt" # test_cuda_math's summary
  for so in "$build"/_core*.so; do
    cp -f "$so" "pyrnn/.$(basename "$so").tmp" && mv -f "pyrnn/.$(basename "$so").tmp" "pyrnn/$(basename "$so")"
  done
fi
if ! python3 -c "import sys, pyrnn._core as c; sys.exit(0 if c.cuda_built() else 1)"; then
  echo "gpu_check: pyrnn/_core is not a -DPYRNN_CUDA=ON build" >&2
  exit 2
fi

echo "== GPU tests"
python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py 2>&1 | tee "$out/test_cuda.txt"
status=${PIPESTATUS[0]}

if [ "${GPU_CHECK_BENCH:-1}" != "0" ]; then
  echo "== benchmark"
  models="$out/models"
  python3 benchmarks/make_models.py "$models" --only rwkv7-0.1b mamba-130m rwkv7-0.4b --types f16 q8_0 \
    >"$out/make_models.txt" 2>&1 || { tail -20 "$out/make_models.txt" >&2; exit 1; }
  for m in rwkv7-0.1b mamba-130m rwkv7-0.4b; do
    for t in f16 q8_0; do
      echo "-- $m $t" | tee -a "$out/bench.txt"
      python3 benchmarks/cuda_bench.py "$models/$m-$t.gguf" 2>&1 | tee -a "$out/bench.txt"
    done
  done
  rm -rf "$models" # hundreds of MB; the table is in bench.txt
fi
exit "$status"
