#!/usr/bin/env bash
# compare_generations.sh - sequential FEED and BAN on real Fashion-MNIST, strict and
# pipelined: K ResNet-20 generations from one scratch teacher (generation 0), each job over
# the student seeds; prints one table (test error of every generation and of the ensemble of
# generations 1..K, per seed, mean and spread, and each job's wall time) and writes it to
# OUT/table.md.
#
#   tools/compare_generations.sh [--build DIR] [--out DIR] [--teacher GEN0.h5] [--per-class N]
#                                [--epochs E] [--milestones A,B] [--generations K] [--lag L]
#                                [--seeds "S1 S2 ..."]
#
# Defaults (the README's table): build/, runs/generations, generation 0 =
# runs/compare/teachers/teacher_0.h5 (the first teacher of tools/compare_methods.sh), 500
# training images per class, 12 epochs with lr x0.2 at epochs 6 and 9, K = 3, lag 3 epochs
# (E/4) for the pipelined jobs, seeds 100 and 101. Every rank uses one OpenMP thread. Strict
# jobs keep one rank busy at a time, so two run side by side; a pipelined job keeps all K
# ranks busy and runs alone. A finished job is not run again. About an hour on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$here/build out=runs/generations teacher=runs/compare/teachers/teacher_0.h5
per_class=500 epochs=12 milestones=6,9 k=3 lag=3 seeds="100 101"
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --teacher) teacher=$2; shift 2 ;;
    --per-class) per_class=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --milestones) milestones=$2; shift 2 ;;
    --generations) k=$2; shift 2 ;;
    --lag) lag=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "compare_generations.sh: error: unknown argument '$1'" >&2
       echo "  hint: tools/compare_generations.sh --help" >&2; exit 2 ;;
  esac
done
feed=$build/feed_mpi
[ -x "$feed" ] || { echo "compare_generations.sh: error: $feed not found; hint: ./tools/setup.sh" >&2; exit 2; }
cd "$here"
[ -f "$teacher" ] || { echo "compare_generations.sh: error: generation 0 $teacher not found" >&2
  echo "  hint: tools/compare_methods.sh trains it, or pass --teacher GEN0.h5" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMP_NUM_THREADS=1
mkdir -p data "$out"
[ -f data/fashion_mnist.h5 ] || "$build/feed_convert" fashion-mnist /usr/share/datasets/fashion-mnist data/fashion_mnist.h5
common=(data.subset_per_class=$per_class train.epochs=$epochs train.milestones=$milestones run.threads=1
        sfeed.teacher="$teacher" sfeed.generations=$k checkpoint.resume=auto)

# job NAME OVERRIDES...: one sfeed job (skipped when NAME/done exists), its wall time in NAME/wall_s
job() {
  local name=$1; shift
  local dir=$out/$name
  [ -f "$dir/done" ] && return 0
  mkdir -p "$dir"
  local t0; t0=$(date +%s.%N)
  if mpirun --oversubscribe --bind-to none -np "$k" "$feed" jobs/fashion_sfeed.ini run.dir="$dir" \
       "${common[@]}" "$@" > "$dir/log.txt" 2>&1; then
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' > "$dir/wall_s"
    touch "$dir/done"
    echo "compare_generations.sh: $name done ($(cut -d. -f1 "$dir/wall_s") s)"
  else
    echo "compare_generations.sh: $name FAILED, see $dir/log.txt" >&2
    return 1
  fi
}
ban=(sfeed.terms=kd kd.T=1 kd.alpha=1)
failed=0
echo "== strict jobs (two side by side) =="
strict=()
for s in $seeds; do strict+=("sfeed_strict_s$s|run.seed=$s" "ban_strict_s$s|run.seed=$s ${ban[*]}"); done
running=0
for j in "${strict[@]}"; do
  # shellcheck disable=SC2086
  job "${j%%|*}" sfeed.lag_epochs=0 ${j#*|} & running=$((running + 1))
  if [ $running -ge 2 ]; then wait -n || failed=1; running=$((running - 1)); fi
done
while [ $running -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
echo "== pipelined jobs (one at a time), lag $lag epochs =="
for s in $seeds; do
  job "sfeed_lag${lag}_s$s" sfeed.lag_epochs=$lag run.seed="$s" || failed=1
  # shellcheck disable=SC2068
  job "ban_lag${lag}_s$s" sfeed.lag_epochs=$lag run.seed="$s" ${ban[@]} || failed=1
done
[ $failed -eq 0 ] || { echo "compare_generations.sh: some jobs failed (see above)" >&2; exit 1; }

for d in "$out"/*/; do
  [ -f "$d/done" ] || continue  # only this script's finished jobs
  [ -f "$d/eval.json" ] || "$feed" eval --data data/fashion_mnist.h5 --json "$d"/gen?.h5 > "$d/eval.json"
done
/usr/bin/python3 - "$out" "$per_class" "$epochs" "$milestones" "$k" "$lag" "$seeds" "$teacher" <<'EOF'
import json, os, statistics, sys
out, per_class, epochs, milestones, k, lag, seeds, teacher = sys.argv[1:9]
k, seeds = int(k), seeds.split()

def stat(v):
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"

lines = [f"Fashion-MNIST, ResNet-20 generations 1..{k} from generation 0 = {teacher}; {per_class} training images "
         f"per class, {epochs} epochs (lr 0.1, x0.2 at epochs {milestones}), batch 128; final test error (%) on the "
         f"10,000 test images, mean ± std over seeds {', '.join(seeds)}; ensemble = mean softmax of generations "
         f"1..{k}; wall time of the whole job ({k} ranks, 1 thread each, 2 cores).", "",
         "| method | schedule | " + " | ".join(f"gen {g}" for g in range(1, k + 1)) + " | ensemble | wall time |",
         "|---|---|" + "---|" * (k + 2)]
for method, tag in (("sFEED", "sfeed"), ("BAN", "ban")):
    for sched, stag in (("strict", "strict"), (f"pipelined, lag {lag}", f"lag{lag}")):
        gens = [[] for _ in range(k)]
        ens, walls = [], []
        for s in seeds:
            d = os.path.join(out, f"{tag}_{stag}_s{s}")
            ev = json.load(open(os.path.join(d, "eval.json")))
            for g, m in enumerate(ev["models"]):
                gens[g].append(100.0 * m["error"])
            ens.append(100.0 * ev["ensemble"]["error"])
            walls.append(float(open(os.path.join(d, "wall_s")).read()))
        cells = [stat(v) for v in gens] + [stat(ens), f"{statistics.mean(walls) / 60:.0f} min"]
        lines.append(f"| {method} | {sched} | " + " | ".join(cells) + " |")
table = "\n".join(lines)
open(os.path.join(out, "table.md"), "w").write(table + "\n")
print(table)
EOF
