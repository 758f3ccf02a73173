#!/usr/bin/env bash
# submit_chain.sh - submit the whole FEED pipeline as two dependent SLURM jobs:
#   1. teachers.sbatch: N teachers in one scratch run   (--ntasks=N)
#   2. pfeed.sbatch:    parallel FEED with those N teachers (--ntasks=N+1), started by SLURM
#      only when job 1 has completed successfully (--dependency=afterok), however many times
#      job 1 was requeued on the way.
#
#   jobs/slurm/submit_chain.sh [OPTIONS] [TEACHERS.ini [PFEED.ini]]
#
# Run it from the folder the configs' relative paths start at (the repository root for
# jobs/*.ini). Defaults: jobs/scratch.ini and jobs/pfeed.ini, 5 teachers.
#
# Options:
#   -n, --name NAME          job names NAME_teachers and NAME_pfeed (default: feed), so run
#                            folders runs/NAME_teachers and runs/NAME_pfeed
#   -t, --teachers N         number of teachers (default 5)
#   -c, --cpus-per-task C    threads per rank in both jobs (default: the scripts' value)
#       --time LIMIT         time limit of each job, e.g. 4:00:00 (default: the scripts')
#       --teachers-set K=V   override for the teacher run, e.g. train.epochs=30 (repeatable)
#       --pfeed-set K=V      override for the pFEED run (repeatable)
#       --sbatch OPTION      extra sbatch option for both jobs, e.g. --sbatch=--partition=cpu
#                            or --sbatch --account=proj (repeatable)
#       --teachers-only      submit only the teacher job (e.g. while pfeed is not built)
#       --parsable           print only the job ids ("TEACHERS_ID PFEED_ID")
#   -h, --help
#
# Example (the small Fashion-MNIST pair, 3 teachers, 2 threads per rank):
#   jobs/slurm/submit_chain.sh -n fm -t 3 -c 2 --time 1:00:00 \
#       jobs/fashion_scratch.ini jobs/fashion_pfeed.ini
# Environment: FEED_MPI, FEED_RUNS, FEED_LAUNCHER, FEED_MAX_REQUEUES are passed to the jobs
# (see jobs/slurm/feed_job.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "submit_chain.sh: $*" >&2; exit 2; }

name=feed
teachers=5
cpus=""
time_limit=""
teacher_sets=()
pfeed_sets=()
extra=()
teachers_only=0
parsable=0
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--name) name=${2:?}; shift ;;
    --name=*) name=${1#*=} ;;
    -t|--teachers) teachers=${2:?}; shift ;;
    --teachers=*) teachers=${1#*=} ;;
    -c|--cpus-per-task) cpus=${2:?}; shift ;;
    --cpus-per-task=*) cpus=${1#*=} ;;
    --time) time_limit=${2:?}; shift ;;
    --time=*) time_limit=${1#*=} ;;
    --teachers-set) teacher_sets+=("${2:?}"); shift ;;
    --teachers-set=*) teacher_sets+=("${1#*=}") ;;
    --pfeed-set) pfeed_sets+=("${2:?}"); shift ;;
    --pfeed-set=*) pfeed_sets+=("${1#*=}") ;;
    --sbatch) extra+=("${2:?}"); shift ;;
    --sbatch=*) extra+=("${1#*=}") ;;
    --teachers-only) teachers_only=1 ;;
    --parsable) parsable=1 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) positional+=("$1") ;;
  esac
  shift
done
[ ${#positional[@]} -le 2 ] || die "at most two configs (TEACHERS.ini PFEED.ini), got: ${positional[*]}"
teachers_ini=${positional[0]:-jobs/scratch.ini}
pfeed_ini=${positional[1]:-jobs/pfeed.ini}
[[ "$teachers" =~ ^[1-9][0-9]*$ ]] || die "--teachers must be a positive integer, not '$teachers'"
[ -n "$cpus" ] && { [[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "--cpus-per-task must be a positive integer, not '$cpus'"; }
command -v sbatch >/dev/null || die "sbatch not found: run this on a SLURM login node"
[ -r "$teachers_ini" ] || die "cannot read $teachers_ini (relative paths start at $(pwd))"
[ $teachers_only -eq 1 ] || [ -r "$pfeed_ini" ] || die "cannot read $pfeed_ini (relative paths start at $(pwd))"

common=("${extra[@]}")
[ -n "$cpus" ] && common+=("--cpus-per-task=$cpus")
[ -n "$time_limit" ] && common+=("--time=$time_limit")

# Where the teacher job writes: its run.dir override, else FEED_RUNS/<job name> (feed_job.sh).
teacher_dir="${FEED_RUNS:-runs}/${name}_teachers"
for kv in "${teacher_sets[@]}"; do
  case "$kv" in run.dir=*) teacher_dir=${kv#run.dir=} ;; esac
done

# FEED_JOBS_DIR tells the jobs where feed_job.sh is (SLURM runs copies of the scripts).
tid=$(FEED_JOBS_DIR=$here sbatch --parsable --job-name="${name}_teachers" --ntasks="$teachers" \
        "${common[@]}" "$here/teachers.sbatch" "$teachers_ini" "${teacher_sets[@]}") ||
  die "sbatch of the teacher job failed (message above)"
tid=${tid%%;*}  # --parsable prints "id" or "id;cluster"
[ $parsable -eq 1 ] || echo "teachers: job $tid (${name}_teachers, $teachers ranks) -> $teacher_dir, log ${name}_teachers-$tid.out"

pid=""
if [ $teachers_only -eq 0 ]; then
  # afterok: start only if the teacher job ends with exit code 0 (a requeue is not an end);
  # kill-on-invalid-dep: if it fails, cancel this job instead of leaving it pending forever.
  pid=$(FEED_JOBS_DIR=$here FEED_TEACHER_DIR=$teacher_dir \
        sbatch --parsable --job-name="${name}_pfeed" --ntasks=$((teachers + 1)) \
          --dependency="afterok:$tid" --kill-on-invalid-dep=yes \
          "${common[@]}" "$here/pfeed.sbatch" "$pfeed_ini" "${pfeed_sets[@]}") || {
    echo "submit_chain.sh: sbatch of the pFEED job failed; cancelling teacher job $tid" >&2
    scancel "$tid" || true
    exit 2
  }
  pid=${pid%%;*}
  [ $parsable -eq 1 ] || echo "pfeed:    job $pid (${name}_pfeed, $((teachers + 1)) ranks) after job $tid succeeds -> ${FEED_RUNS:-runs}/${name}_pfeed, log ${name}_pfeed-$pid.out"
fi
[ $parsable -eq 0 ] || echo "$tid${pid:+ $pid}"
[ $parsable -eq 1 ] || echo "watch: squeue -u ${USER:-$(id -un)}    cancel both: scancel $tid${pid:+ $pid}"
