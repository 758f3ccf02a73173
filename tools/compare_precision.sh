#!/usr/bin/env bash
# compare_precision.sh - bf16 against fp32 on real Fashion-MNIST with the recipe of
# tools/compare_methods.sh (whose teachers and fp32 runs it reuses; it runs the teachers
# first when they are missing, and an fp32 run of a seed compare_methods.sh did not train):
# ResNet-20 students from scratch with train.precision = bf16, and pFEED students from the 4
# teachers with bf16 teachers (run.precision = bf16) and bf16 students, each over the seeds;
# prints final-epoch test error and wall time beside the fp32 runs of the same seeds.
#
#   tools/compare_precision.sh [--build DIR] [--out DIR] [--seeds "S1 S2"] [--parallel P]
#                              [--only scratch|pfeed]
#
# Defaults: build/, runs/compare, seeds 100 101, 2 runs side by side, one OpenMP thread per
# process (as compare_methods.sh: 1,000 images per class, 15 epochs, lr x0.2 at 8 and 12,
# pFEED teachers computed in the student's process). Runs go to OUT/<run>_bf16_s<seed>.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$here/build out=runs/compare seeds="100 101" parallel=2 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "compare_precision.sh: error: unknown argument '$1'" >&2
       echo "  hint: tools/compare_precision.sh --help" >&2; exit 2 ;;
  esac
done
feed=$build/feed_mpi
[ -x "$feed" ] || { echo "compare_precision.sh: error: $feed not found; hint: ./tools/setup.sh" >&2; exit 2; }
cd "$here"
export OMP_NUM_THREADS=1
if [ ! -f "$out/teachers/done" ]; then
  echo "== teachers (and the fp32 runs): tools/compare_methods.sh =="
  tools/compare_methods.sh --build "$build" --out "$out" --seeds "$seeds" --parallel "$parallel"
fi
all4=$out/teachers/teacher_0.h5,$out/teachers/teacher_1.h5,$out/teachers/teacher_2.h5,$out/teachers/teacher_3.h5
recipe=(data.subset_per_class=1000 train.epochs=15 train.milestones=8,12 run.threads=1 checkpoint.resume=auto)
pfeed="jobs/fashion_pfeed.ini|distill.source=local distill.teachers=$all4"
jobs=()
for s in $seeds; do
  if [ "$only" != pfeed ]; then
    jobs+=("scratch_s$s|jobs/fashion_scratch.ini|" "scratch_bf16_s$s|jobs/fashion_scratch.ini|train.precision=bf16")
  fi
  if [ "$only" != scratch ]; then
    jobs+=("pfeed4_s$s|$pfeed" "pfeed4_bf16_s$s|$pfeed run.precision=bf16 train.precision=bf16")
  fi
done
one() {
  local name=${1%%|*} rest=${1#*|}
  local ini=${rest%%|*} extra=${rest#*|} seed=${name##*_s} dir=$out/${1%%|*}
  [ -f "$dir/done" ] && return 0
  mkdir -p "$dir"
  local t0; t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  if "$feed" "$ini" run.seed="$seed" "${recipe[@]}" $extra run.dir="$dir" > "$dir/log.txt" 2>&1; then
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' > "$dir/wall_s"
    touch "$dir/done"; echo "compare_precision.sh: $name done"
  else echo "compare_precision.sh: $name FAILED, see $dir/log.txt" >&2; return 1; fi
}
running=0 failed=0
for j in "${jobs[@]}"; do
  one "$j" & running=$((running + 1))
  if [ $running -ge "$parallel" ]; then wait -n || failed=1; running=$((running - 1)); fi
done
while [ $running -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
[ $failed -eq 0 ] || { echo "compare_precision.sh: some runs failed (see above)" >&2; exit 1; }
final_error() { tail -n 1 "$1" | sed -n 's/.*"test_error":\([0-9.e-]*\).*/\1/p'; }
row() { # label run-prefix metrics-prefix
  local errs="" walls=""
  for s in $seeds; do
    errs+="$(awk -v e="$(final_error "$out/$2_s$s/$3_metrics.jsonl")" 'BEGIN{printf "%.2f", 100*e}') / "
    walls+="$(cut -d. -f1 "$out/$2_s$s/wall_s") / "
  done
  echo "| $1 | ${errs% / } | ${walls% / } |"
}
echo
echo "| ResNet-20 student | test error % (seeds ${seeds// / \/ }) | wall s |"
echo "|---|---|---|"
if [ "$only" != pfeed ]; then
  row "scratch, fp32" scratch teacher0
  row "scratch, bf16" scratch_bf16 teacher0
fi
if [ "$only" != scratch ]; then
  row "pFEED 4 teachers, fp32" pfeed4 student
  row "pFEED 4 teachers, bf16 teachers and student" pfeed4_bf16 student
fi
