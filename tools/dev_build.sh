#!/usr/bin/env bash
# Build pyrnn._core in place for development: `tools/dev_build.sh && python -m pytest -q`.
# The module lands in pyrnn/ (git-ignored), so `python` run from the repo root imports this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${PYRNN_BUILD_DIR:-build/dev}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython_EXECUTABLE="$(command -v python3)" -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" >/dev/null
fi
cmake --build "$build" -- -j2 "${@}"
# Copy then rename: overwriting the file in place would corrupt it under any running process that has it mapped.
for so in "$build"/_core*.so; do cp -f "$so" "pyrnn/.$(basename "$so").tmp" && mv -f "pyrnn/.$(basename "$so").tmp" "pyrnn/$(basename "$so")"; done
