#!/usr/bin/env bash
# compare_cache.sh - pFEED with 4 teachers from feature caches against live teachers, on real
# Fashion-MNIST with the recipe of tools/compare_methods.sh (whose teachers and live pFEED
# runs it reuses, running them first when missing): writes the 4 caches once (V views,
# 2 ranks), trains the students of the seeds from them, and prints test error and wall time
# beside the live runs.
#
#   tools/compare_cache.sh [--build DIR] [--out DIR] [--views V] [--dtype fp32|bf16|fp16]
#                          [--seeds "S1 S2"] [--parallel P] [--student-ranks R [--sync-bn]]
#
# Defaults: build/, runs/compare (teachers, live pfeed4_s<seed>), 8 views, fp32, seeds 100 101,
# 2 runs side by side, one OpenMP thread per process. One cache serves every seed: it is
# written with the first seed's augmentation, so the first seed's student sees exactly the
# live run's augmentations in epochs 1..V, the others use cache.seed = the first seed.
# --student-ranks R trains each student as R data-parallel replicas (distill.student_ranks,
# mpirun -np R, one run at a time; --sync-bn: distill.sync_bn = true) in
# pfeed4_cache_<dtype>_v<V>_r<R>[_sync]_s<seed>.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$here/build out=runs/compare views=8 dtype=fp32 seeds="100 101" parallel=2 ranks=1 sync=false
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --views) views=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --student-ranks) ranks=$2; shift 2 ;;
    --sync-bn) sync=true; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "compare_cache.sh: error: unknown argument '$1'" >&2
       echo "  hint: tools/compare_cache.sh --help" >&2; exit 2 ;;
  esac
done
feed=$build/feed_mpi
[ -x "$feed" ] || { echo "compare_cache.sh: error: $feed not found; hint: ./tools/setup.sh" >&2; exit 2; }
cd "$here"
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMP_NUM_THREADS=1
first=${seeds%% *}
live_missing=0
for s in $seeds; do [ -f "$out/pfeed4_s$s/done" ] || live_missing=1; done
if [ ! -f "$out/teachers/done" ] || [ $live_missing = 1 ]; then
  echo "== teachers and live pFEED runs: tools/compare_methods.sh =="
  tools/compare_methods.sh --build "$build" --out "$out" --seeds "$seeds" --parallel "$parallel"
fi
all4=$out/teachers/teacher_0.h5,$out/teachers/teacher_1.h5,$out/teachers/teacher_2.h5,$out/teachers/teacher_3.h5
recipe=(data.subset_per_class=1000 train.epochs=15 train.milestones=8,12 run.threads=1 distill.teachers=$all4
        cache.dir=$out/cache_${dtype}_v$views cache.views=$views cache.dtype=$dtype cache.seed=$first)
wall() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

cache_dir=$out/cache_${dtype}_v$views
if [ ! -f "$cache_dir/done" ]; then
  echo "== writing the caches: 4 teachers x $views views, $dtype, 2 ranks =="
  mkdir -p "$cache_dir"
  t0=$(date +%s.%N)
  mpirun --oversubscribe --bind-to none -np 2 "$feed" jobs/fashion_pfeed.ini run.mode=cache "${recipe[@]}" \
    | tee "$cache_dir/log.txt"
  wall "$t0" > "$cache_dir/wall_s"
  touch "$cache_dir/done"
fi
echo "== students from the caches =="
tag=${dtype}_v${views} launch=("$feed")
if [ "$ranks" -gt 1 ]; then
  tag=${tag}_r$ranks; [ $sync = true ] && tag=${tag}_sync
  launch=(mpirun --oversubscribe --bind-to none -np "$ranks" "$feed")
  recipe+=(distill.student_ranks=$ranks distill.sync_bn=$sync)
  parallel=1 # the replicas take the cores
fi
pids=()
for s in $seeds; do
  dir=$out/pfeed4_cache_${tag}_s$s
  [ -f "$dir/done" ] && continue
  mkdir -p "$dir"
  ( t0=$(date +%s.%N)
    if "${launch[@]}" jobs/fashion_pfeed.ini distill.source=cache run.seed=$s checkpoint.resume=none "${recipe[@]}" \
         run.dir="$dir" > "$dir/log.txt" 2>&1; then
      wall "$t0" > "$dir/wall_s"; touch "$dir/done"; echo "compare_cache.sh: seed $s done"
    else echo "compare_cache.sh: seed $s FAILED, see $dir/log.txt" >&2; fi ) &
  pids+=($!)
  if [ ${#pids[@]} -ge "$parallel" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
wait
final_error() { tail -n 1 "$1" | sed -n 's/.*"test_error":\([0-9.e-]*\).*/\1/p'; }
echo
echo "| pFEED, 4 teachers | seed | test error % | wall s (student) |"
echo "|---|---|---|---|"
for s in $seeds; do
  e=$(final_error "$out/pfeed4_s$s/student_metrics.jsonl")
  printf "| live (in-process teachers) | %s | %.2f | %s |\n" "$s" "$(awk -v e="$e" 'BEGIN{print 100*e}')" \
    "$(cat "$out/pfeed4_s$s/wall_s")"
done
for s in $seeds; do
  dir=$out/pfeed4_cache_${tag}_s$s
  e=$(final_error "$dir/student_metrics.jsonl")
  printf "| from %s caches, %s views%s | %s | %.2f | %s |\n" "$dtype" "$views" \
    "$([ "$ranks" -gt 1 ] && echo ", $ranks replicas$([ $sync = true ] && echo ", sync BN")")" "$s" \
    "$(awk -v e="$e" 'BEGIN{print 100*e}')" "$(cat "$dir/wall_s")"
done
echo
echo "cache writing (4 teachers, 2 ranks): $(cat "$cache_dir/wall_s") s, $(du -sh "$cache_dir" | cut -f1) on disk"
grep -h "written:" "$cache_dir/log.txt" || true
