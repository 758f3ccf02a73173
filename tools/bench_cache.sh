#!/usr/bin/env bash
# bench_cache.sh - how fast feature caches are written and read, against the work they stand
# in for, on real Fashion-MNIST (ResNet-20, 28x28, 10 classes), alternating the programs over
# --rounds rounds and printing each figure's median:
#   write   img/s of `run.mode = cache` (1 teacher, 2 views of 5,000 samples)  vs  feed_bench
#           forward of the same network (the teacher's forward alone): writing overlaps the
#           HDF5 writes with the forward on a writer thread;
#   read    img/s of a pFEED student epoch from that cache (1 rank)  vs  feed_bench pfeed-step
#           with 1 teacher (the student's step with its payload already in memory): reading
#           overlaps with the student's backward on a read-ahead thread.
#
#   tools/bench_cache.sh [--build DIR] [--rounds N] [--threads T] [--batch B] [--dtype D]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$here/build rounds=3 threads=2 batch=128 dtype=fp32
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bench_cache.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
feed=$build/feed_mpi bench=$build/feed_bench
[ -x "$feed" ] && [ -x "$bench" ] || { echo "bench_cache.sh: error: build first (./tools/setup.sh)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMP_NUM_THREADS=$threads
cd "$here"
work=$(mktemp -d /tmp/bench_cache.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p data
[ -f data/fashion_mnist.h5 ] || "$build/feed_convert" fashion-mnist /usr/share/datasets/fashion-mnist data/fashion_mnist.h5
base=(data.path=data/fashion_mnist.h5 data.pad=2 model.arch=resnet20 train.batch=$batch run.threads=$threads
      train.eval_every=100)
common=("${base[@]}" data.subset_per_class=500 cache.views=2 cache.dtype=$dtype)
# a teacher (its weights do not matter for speed)
"$feed" jobs/fashion_scratch.ini "${base[@]}" train.epochs=1 data.subset_per_class=50 run.dir="$work/t" \
  > "$work/teacher.log" 2>&1 || { cat "$work/teacher.log" >&2; exit 1; }
teacher=$work/t/teacher_0.h5
model=(--model resnet20 --classes 10 --in-channels 1 --size 28 --batch "$batch" --threads "$threads")
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | head -n 1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: > "$work/fwd" ; : > "$work/write" ; : > "$work/step" ; : > "$work/read"
for r in $(seq 1 "$rounds"); do
  "$bench" "${model[@]}" forward 2>/dev/null | field img_per_s >> "$work/fwd"
  rm -rf "$work/cache"
  "$feed" jobs/fashion_pfeed.ini run.mode=cache "${common[@]}" distill.teachers="$teacher" cache.dir="$work/cache" \
    > "$work/cache.log" 2>&1
  sed -n 's/.* written: .* s, \([0-9.]*\) img\/s.*/\1/p' "$work/cache.log" >> "$work/write"
  "$bench" "${model[@]}" pfeed-step --teachers 1 2>/dev/null | field img_per_s >> "$work/step"
  rm -rf "$work/s"
  "$feed" jobs/fashion_pfeed.ini distill.source=cache "${common[@]}" distill.teachers="$teacher" \
    cache.dir="$work/cache" train.epochs=1 run.dir="$work/s" checkpoint.resume=none > "$work/student.log" 2>&1
  tail -n 1 "$work/s/student_metrics.jsonl" | sed -n 's/.*"img_per_s":\([0-9.]*\).*/\1/p' >> "$work/read"
  echo "round $r: forward $(tail -n 1 "$work/fwd") img/s, cache write $(tail -n 1 "$work/write") img/s," \
       "pfeed-step $(tail -n 1 "$work/step") img/s, student from cache $(tail -n 1 "$work/read") img/s"
done
f=$(median < "$work/fwd") w=$(median < "$work/write") s=$(median < "$work/step") c=$(median < "$work/read")
echo
echo "ResNet-20, Fashion-MNIST 28x28, batch $batch, $threads threads, $dtype cache, median of $rounds rounds:"
awk -v f="$f" -v w="$w" 'BEGIN { printf "  write: cache job %.0f img/s, teacher forward %.0f img/s: %.2f of the forward\n", w, f, w / f }'
awk -v s="$s" -v c="$c" 'BEGIN { printf "  read:  student from cache %.0f img/s, student-only step %.0f img/s: %.2f of it\n", c, s, c / s }'
grep -h "MB" "$work/cache.log" | head -n 1 | sed 's/^/  /'
