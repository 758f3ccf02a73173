#!/usr/bin/env bash
# fuzz.sh - run one libFuzzer target of tests/fuzz for a long time (docs/fuzzing.md).
#
#   tools/fuzz.sh TARGET [SECONDS | --runs N] [--keep-going] [-- LIBFUZZER_FLAGS...]
#
# TARGET: config, dataset, dataset_gen, ckpt, ckpt_gen or cache (fuzz_ prefix optional).
# Default: 600 seconds. Builds build-fuzz/ (clang, -DFEED_FUZZ=ON) when needed and the seeds
# when missing. New inputs collect in a persistent corpus folder, fuzz-corpus/TARGET in the
# build folder; crashes go to fuzz-artifacts/ there, and the run stops at the first one.
# --keep-going: run in libFuzzer's fork mode and go on after crashes, timeouts and
#   out-of-memory (each is still saved) - for the raw-file targets, where libhdf5's own
#   crashes on damaged files would otherwise end every run early.
#
# Environment: FEED_FUZZ_BUILD (build folder, default build-fuzz), FEED_FUZZ_CORPUS
# (corpus root, default <build>/fuzz-corpus).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,16p' "$0"; exit 2; }
name=${1#fuzz_}
shift
case "$name" in config|dataset|dataset_gen|ckpt|ckpt_gen|cache) ;;
  *) echo "fuzz.sh: unknown target '$name' (config, dataset, dataset_gen, ckpt, ckpt_gen, cache)" >&2; exit 2 ;;
esac
limit=(-max_total_time=600)
keep_going=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) limit=(-runs="$2"); shift ;;
    --keep-going) keep_going=1 ;;
    --) shift; extra=("$@"); break ;;
    ''|*[!0-9]*) echo "fuzz.sh: unknown argument '$1'" >&2; exit 2 ;;
    *) limit=(-max_total_time="$1") ;;
  esac
  shift
done

build=${FEED_FUZZ_BUILD:-$here/build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
  command -v clang >/dev/null || { echo "fuzz.sh: needs clang and libclang-rt-14-dev (apt-get install clang)" >&2; exit 2; }
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DFEED_FUZZ=ON
fi
nice -n 10 cmake --build "$build" -j 2 --target fuzz

bin=$build/tests/fuzz
seeds=$bin/seeds
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# Leaks are not looked for: an input error longjmps out of the reader and leaves the
# allocations of the frames it skips (see tests/fuzz/fuzz_common.h) - a few KB per rejected
# input, so a run of millions of inputs needs more than libFuzzer's 2 GB RSS limit; a single
# allocation over 2 GB is still reported (-malloc_limit_mb).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
[ -d "$seeds/cache" ] || "$bin/fuzz_make_seeds" "$seeds" /usr/share/datasets/fashion-mnist

corpus=${FEED_FUZZ_CORPUS:-$build/fuzz-corpus}/$name
artifacts=$build/fuzz-artifacts
mkdir -p "$corpus" "$artifacts"
dirs=("$corpus" "$seeds/$name")
[ -d "$here/tests/fuzz/corpus/$name" ] && dirs+=("$here/tests/fuzz/corpus/$name")
flags=(-timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$artifacts/$name-")
# In fork mode a libhdf5 endless loop costs the whole -timeout; an input takes 2-30 ms, so
# 2 s tells a hang from a slow input and keeps the hangs from eating the run.
[ $keep_going -eq 1 ] && flags+=(-timeout=2 -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
echo "fuzz.sh: fuzz_$name ${limit[*]} on ${dirs[*]}"
exec nice -n 10 "$bin/fuzz_$name" "${flags[@]}" "${limit[@]}" "${extra[@]}" "${dirs[@]}"
