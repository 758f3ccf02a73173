#!/usr/bin/env bash
# setup.sh - one command from a fresh Debian/Ubuntu machine to a built (and tested) feed_mpi.
#
#   ./tools/setup.sh            install missing packages, configure and build (build/)
#   ./tools/setup.sh test       ... then run the whole test suite (ctest), then the fuzz
#                               targets' short runs (clang build in build-fuzz, ctest -L fuzz)
#   ./tools/setup.sh demo       ... then run the main job on real Fashion-MNIST (tools/demo.sh)
#
# Options (before or after the command):
#   --build-dir DIR   build folder (default: build, or build-asan with --sanitize)
#   --sanitize        AddressSanitizer + UndefinedBehaviorSanitizer build
#   --no-install      never call apt-get (fail with the list of missing packages instead)
#   --no-fuzz         test: skip the fuzz part (no clang needed)
#
# Idempotent and non-interactive: packages already installed are left alone, `apt-get
# update` runs once and only when something is missing, an existing build folder is reused.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmd=build
build_dir=""
sanitize=OFF
install=1
fuzz=1
while [ $# -gt 0 ]; do
  case "$1" in
    build|test|demo) cmd=$1 ;;
    --build-dir) build_dir=$2; shift ;;
    --sanitize) sanitize=ON ;;
    --no-install) install=0 ;;
    --no-fuzz) fuzz=0 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$1' (see ./tools/setup.sh --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$build_dir" ] || { [ "$sanitize" = ON ] && build_dir=build-asan || build_dir=build; }
case "$build_dir" in /*) ;; *) build_dir="$here/$build_dir" ;; esac

# Build tools, the libraries (the engine's five; libjpeg and libpng for feed_convert
# imagefolder), the Python reference stack (tests compare against PyTorch and PIL; ONNX and
# OpenCV check the export of tools/feed2torch.py; matplotlib draws tools/plot.py's
# figures), the real data set of the main job, what
# the tests call (mpirun, timeout), and SLURM + munge for the test that runs jobs/slurm on a
# private one-node cluster.
packages=(
  build-essential cmake pkg-config git ca-certificates
  libopenmpi-dev openmpi-bin libdnnl-dev libopenblas-dev libhdf5-dev libinih-dev zlib1g-dev
  libjpeg-dev libpng-dev
  python3 python3-numpy python3-h5py python3-torch python3-pil python3-onnx python3-opencv
  python3-matplotlib
  dataset-fashion-mnist coreutils procps
  slurm-wlm munge
)
# The fuzz part of `test`: clang and its libFuzzer/sanitizer runtimes (docs/fuzzing.md).
if [ "$cmd" = test ] && [ $fuzz -eq 1 ]; then packages+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ $install -eq 0 ]; then
    echo "setup.sh: missing Debian packages: ${missing[*]}" >&2
    echo "  hint: apt-get install ${missing[*]}  (or run without --no-install)" >&2
    exit 2
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2; exit 2; }
    sudo=sudo
  fi
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DFEED_SANITIZE=$sanitize
cmake --build "$build_dir" -j "$jobs"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
case "$cmd" in
  build) echo "setup.sh: built in $build_dir" ;;
  test)
    ctest --test-dir "$build_dir" --output-on-failure
    if [ $fuzz -eq 1 ]; then
      # The libFuzzer targets (tests/fuzz): a second build with clang, then their short runs
      # (seeds, regression inputs, a few seconds of fuzzing each; under a minute).
      fuzz_dir="$build_dir-fuzz"
      cmake -S "$here" -B "$fuzz_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DFEED_FUZZ=ON
      cmake --build "$fuzz_dir" -j "$jobs" --target fuzz
      ctest --test-dir "$fuzz_dir" -L fuzz --output-on-failure
    fi
    ;;
  demo) exec "$here/tools/demo.sh" "$build_dir" ;;
esac
