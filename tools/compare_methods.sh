#!/usr/bin/env bash
# compare_methods.sh - the paper's comparison on real Fashion-MNIST with one recipe for every
# row: 4 ResNet-20 teachers (one 4-rank scratch run), their ensemble, and ResNet-20 students
# trained from scratch, with KD, AT, L1, FT and pFEED from the 4 teachers, and with KD and
# pFEED from one teacher, each over the student seeds; prints one table (final-epoch test
# error per seed, mean and spread, wall time per run) and writes it to OUT/table.md.
#
#   tools/compare_methods.sh [--build DIR] [--out DIR] [--per-class N] [--epochs E]
#                            [--milestones A,B] [--seeds "S1 S2 ..."] [--parallel P]
#
# Defaults: build/, runs/compare, 1000 training images per class (10,000 of 60,000),
# 15 epochs with the lr x0.2 at epochs 8 and 12 (jobs/fashion_scratch.ini's recipe, shorter),
# seeds 100 and 101, 2 runs side by side. Students run in one process each with the teachers
# computed in it (distill.source = local: the same bits as teacher ranks, and P runs fill P
# cores); every process uses one OpenMP thread. The wall time of a run is measured with the
# others running beside it; FT's includes training its 4 paraphrasers. A finished run (its
# final checkpoint exists) is not run again, so an interrupted comparison continues.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$here/build out=runs/compare per_class=1000 epochs=15 milestones=8,12 seeds="100 101" parallel=2
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --per-class) per_class=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --milestones) milestones=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "compare_methods.sh: error: unknown argument '$1'" >&2
       echo "  hint: tools/compare_methods.sh --help" >&2; exit 2 ;;
  esac
done
feed=$build/feed_mpi
[ -x "$feed" ] || { echo "compare_methods.sh: error: $feed not found; hint: ./tools/setup.sh" >&2; exit 2; }
cd "$here"
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMP_NUM_THREADS=1
mkdir -p data "$out"
[ -f data/fashion_mnist.h5 ] || "$build/feed_convert" fashion-mnist /usr/share/datasets/fashion-mnist data/fashion_mnist.h5
recipe=(data.subset_per_class=$per_class train.epochs=$epochs train.milestones=$milestones run.threads=1)

# run NAME COMMAND...: run once (skipped when NAME/done exists), log and wall time in $out/NAME
run() {
  local name=$1; shift
  local dir=$out/$name
  [ -f "$dir/done" ] && return 0
  mkdir -p "$dir"
  local t0; t0=$(date +%s.%N)
  if "$@" run.dir="$dir" > "$dir/log.txt" 2>&1; then
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' > "$dir/wall_s"
    touch "$dir/done"
    echo "compare_methods.sh: $name done ($(cut -d. -f1 "$dir/wall_s") s)"
  else
    echo "compare_methods.sh: $name FAILED, see $dir/log.txt" >&2
    return 1
  fi
}

echo "== 4 teachers: one 4-rank scratch run (seeds 1..4) =="
run teachers mpirun --oversubscribe --bind-to none -np 4 "$feed" jobs/fashion_scratch.ini \
  run.seed=1 checkpoint.resume=none "${recipe[@]}"
all4=$out/teachers/teacher_0.h5,$out/teachers/teacher_1.h5,$out/teachers/teacher_2.h5,$out/teachers/teacher_3.h5
one=$out/teachers/teacher_0.h5

# name | config | overrides (every student: the same recipe, its seed, one process)
jobs=()
for s in $seeds; do
  jobs+=("scratch_s$s|jobs/fashion_scratch.ini|")
  for m in kd at l1 ft; do jobs+=("${m}4_s$s|jobs/distill.ini|distill.terms=$m distill.teachers=$all4"); done
  jobs+=("pfeed4_s$s|jobs/fashion_pfeed.ini|distill.teachers=$all4")
  jobs+=("kd1_s$s|jobs/distill.ini|distill.terms=kd distill.teachers=$one")
  jobs+=("pfeed1_s$s|jobs/fashion_pfeed.ini|distill.teachers=$one")
done
student() { # one job line -> run
  local name=${1%%|*} rest=${1#*|}
  local ini=${rest%%|*} extra=${rest#*|} seed=${name##*_s}
  # jobs/distill.ini is the CIFAR-100 ResNet-56 config: point it at Fashion-MNIST's recipe
  local base=(data.path=data/fashion_mnist.h5 data.pad=2 model.arch=resnet20)
  # shellcheck disable=SC2086
  run "$name" "$feed" "$ini" run.seed="$seed" distill.source=local checkpoint.resume=auto "${base[@]}" \
    "${recipe[@]}" $extra
}
echo "== students: ${#jobs[@]} runs, $parallel side by side =="
running=0 failed=0
for j in "${jobs[@]}"; do
  student "$j" & running=$((running + 1))
  if [ $running -ge "$parallel" ]; then wait -n || failed=1; running=$((running - 1)); fi
done
while [ $running -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
[ $failed -eq 0 ] || { echo "compare_methods.sh: some runs failed (see above)" >&2; exit 1; }

"$feed" eval --data data/fashion_mnist.h5 --json ${all4//,/ } > "$out/teachers_eval.json"
/usr/bin/python3 - "$out" "$per_class" "$epochs" "$milestones" "$seeds" <<'EOF'
import json, os, statistics, sys
out, per_class, epochs, milestones, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split()

def final_error(run, prefix):
    rows = [json.loads(l) for l in open(os.path.join(out, run, f"{prefix}_metrics.jsonl")) if l.strip()]
    rows = [r for r in rows if "test_error" in r and r["test_error"] is not None]
    return 100.0 * rows[-1]["test_error"]

def wall(run):
    return float(open(os.path.join(out, run, "wall_s")).read())

ev = json.load(open(os.path.join(out, "teachers_eval.json")))
models = ev.get("models", [])
teacher_errs = [100.0 * m["error"] for m in models]
rows = [("teachers (scratch, seeds 1-4)", "-", teacher_errs, wall("teachers"), "the 4-rank job"),
        ("ensemble of the 4 teachers", "4", [100.0 * ev["ensemble"]["error"]], None, "mean softmax")]
methods = [("scratch", "scratch", "-", "teacher0"), ("KD", "kd4", "4", "student"), ("AT", "at4", "4", "student"),
           ("L1", "l14", "4", "student"), ("FT", "ft4", "4", "student"), ("pFEED", "pfeed4", "4", "student"),
           ("KD", "kd1", "1", "student"), ("pFEED", "pfeed1", "1", "student")]
for label, tag, n, prefix in methods:
    errs = [final_error(f"{tag}_s{s}", prefix) for s in seeds]
    walls = [wall(f"{tag}_s{s}") for s in seeds]
    rows.append((label, n, errs, statistics.mean(walls), ""))

lines = [f"Fashion-MNIST, ResNet-20 everywhere, {per_class} training images per class, {epochs} epochs "
         f"(lr 0.1, x0.2 at epochs {milestones}), batch 128; final-epoch test error on the 10,000 test images; "
         f"student seeds {', '.join(seeds)}.", "",
         "| method | teachers | test error % (per seed) | mean ± std | wall time per run |",
         "|---|---|---|---|---|"]
for label, n, errs, w, note in rows:
    per = " / ".join(f"{e:.2f}" for e in errs)
    mean = statistics.mean(errs)
    spread = f"{mean:.2f} ± {statistics.stdev(errs):.2f}" if len(errs) > 1 else f"{mean:.2f}"
    wt = f"{w / 60:.1f} min" if w is not None else "-"
    lines.append(f"| {label} | {n} | {per} | {spread} | {wt}{' (' + note + ')' if note else ''} |")
table = "\n".join(lines)
open(os.path.join(out, "table.md"), "w").write(table + "\n")
print(table)
EOF
