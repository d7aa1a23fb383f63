#!/usr/bin/env bash
# Compile-check the CUDA backend (-DPYRNN_CUDA=ON) into build/cuda: nvcc is needed, a GPU is not.
# Builds the library, the Python module and the C++ tests, then runs test_cuda_math (the kernels'
# per-element math on the CPU). CI runs it so the backend cannot rot; see docs/CUDA.md.
#   tools/build_cuda.sh                 # -j1 (nvcc is heavy); PYRNN_JOBS=4 for more
#   CUDA_ARCHS=90 tools/build_cuda.sh   # one architecture (faster); default 75;80;86;89;90
set -euo pipefail
cd "$(dirname "$0")/.."
build=${PYRNN_BUILD_DIR:-build/cuda}
export PATH="/usr/local/cuda/bin:$PATH"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPYRNN_CUDA=ON -DPYRNN_TESTS=ON \
    ${CUDA_ARCHS:+-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS"} \
    -DPython_EXECUTABLE="$(command -v python3)" -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" >/dev/null
fi
cmake --build "$build" -- -j"${PYRNN_JOBS:-1}"
"$build/test_cuda_math"
