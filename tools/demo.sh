#!/usr/bin/env bash
# demo.sh [BUILD_DIR] - the README's main job, parallel FEED on real Fashion-MNIST:
#   1. convert the Debian package's IDX files to data/fashion_mnist.h5 (once),
#   2. train 3 ResNet-20 teachers with one 3-rank `scratch` run (jobs/fashion_scratch.ini),
#   3. distil them into a ResNet-20 student with a 4-rank `pfeed` run (jobs/fashion_pfeed.ini),
#   4. print each teacher's test error, the teachers' ensemble and the student.
# Small on purpose so it takes minutes on 2 cores: DEMO_PER_CLASS training images per class
# (default 500 of 6000) and DEMO_EPOCHS epochs (default 3). The numbers are therefore far
# from converged; the two .ini files without these overrides are the full-size runs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$here/build}
cd "$here"
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
per_class=${DEMO_PER_CLASS:-500}
epochs=${DEMO_EPOCHS:-3}
run=runs/demo
# more ranks than cores on small machines; no core binding so OpenMP threads can move
mpirun=(mpirun --oversubscribe --bind-to none)
small=(data.subset_per_class=$per_class train.epochs=$epochs train.milestones=$epochs checkpoint.resume=none)

rm -rf "$run" # the demo's own folder: every run starts fresh (resume=none refuses old checkpoints)
mkdir -p data
if [ ! -f data/fashion_mnist.h5 ]; then
  "$build/feed_convert" fashion-mnist /usr/share/datasets/fashion-mnist data/fashion_mnist.h5
fi

echo "== 3 teachers (scratch, 3 ranks) =="
"${mpirun[@]}" -np 3 "$build/feed_mpi" jobs/fashion_scratch.ini run.dir=$run/teachers "${small[@]}"

teachers=$run/teachers/teacher_0.h5,$run/teachers/teacher_1.h5,$run/teachers/teacher_2.h5
echo
echo "== parallel FEED: student + 3 teacher ranks =="
"${mpirun[@]}" -np 4 "$build/feed_mpi" jobs/fashion_pfeed.ini run.dir=$run/pfeed \
  distill.teachers=$teachers "${small[@]}"

echo
"$build/feed_mpi" eval --data data/fashion_mnist.h5 ${teachers//,/ } --also $run/pfeed/student.h5
echo "(trained on $per_class images per class for $epochs epochs: a demonstration, not a result)"
