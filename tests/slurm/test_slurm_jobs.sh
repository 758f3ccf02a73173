#!/usr/bin/env bash
# test_slurm_jobs.sh - the SLURM job scripts of jobs/slurm on a real, private one-node cluster.
#
#   tests/slurm/test_slurm_jobs.sh --feed-mpi PATH --feed-convert PATH [--repo DIR] [--keep]
#   (ctest -L slurm runs it with the build's programs)
#
# 1. installs slurm-wlm and munge if missing; starts munged, slurmctld and slurmd in a
#    temporary folder (tests/slurm/cluster.sh), node with 8 CPUs on any machine;
# 2. jobs/slurm/submit_chain.sh with jobs/fashion_scratch.ini and jobs/fashion_pfeed.ini on
#    tiny settings: 3 teachers (srun --mpi=pmix), then pFEED with them through the afterok
#    dependency - the pFEED part only once `feed_mpi --help` lists mode pfeed (until then it
#    prints "SKIP ... pfeed not built yet" and checks everything else);
#    then jobs/slurm/sfeed.sbatch: 2 generations pipelined from the chain's first teacher,
#    and pfeed.sbatch with the student on 2 replicas (distill.student_ranks=2, 5 tasks);
# 3. the teacher script launched with mpirun instead of srun (FEED_LAUNCHER=mpirun);
# 4. a run whose 2-minute time limit forces SIGUSR1 (--signal=B:USR1@30): feed_mpi checkpoints,
#    the job requeues itself and resumes; a job depending on it (afterok) starts only after
#    the run is complete. Its length is sized from step 3's speed so the signal comes mid-run.
#    FEED_SLURM_TEST_PFEED_TIMELIMIT=1 adds the same for a pFEED job (2-3 minutes more).
# Asserts on job states, logs, metrics and checkpoints; stops every daemon it started (trap
# EXIT, and a watchdog if this script is SIGKILLed). About 4-5 minutes on 2 cores.
# Exit code 0 pass, 1 fail, 77 skipped (not root: slurmd must run as root).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
feed_mpi="" feed_convert="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --feed-mpi) feed_mpi=$2; shift ;;
    --feed-convert) feed_convert=$2; shift ;;
    --repo) repo=$2; shift ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 --feed-mpi PATH --feed-convert PATH [--repo DIR] [--keep]" >&2; exit 2 ;;
  esac
  shift
done
if [ ! -x "$feed_mpi" ] || [ ! -x "$feed_convert" ]; then
  echo "FAIL: --feed-mpi and --feed-convert must name the built programs" >&2
  exit 1
fi
feed_mpi=$(cd "$(dirname "$feed_mpi")" && pwd)/$(basename "$feed_mpi")
py=/usr/bin/python3
cluster="$repo/tests/slurm/cluster.sh"
check_py="$repo/tests/slurm/check_outputs.py"
fashion=${FEED_FASHION_DIR:-/usr/share/datasets/fashion-mnist}

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the test cluster's slurmd must run as root (CI runs as root)"
  exit 77
fi

t_start=$SECONDS
failures=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
expect() {  # expect DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
phase() { echo; echo "=== [+$((SECONDS - t_start))s] $*"; }

# A test inside a SLURM job must not hand its own job's variables to sbatch.
while read -r v; do unset "$v"; done < <(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\)=.*/\1/p')

tmp=$(mktemp -d "${TMPDIR:-/tmp}/feed-slurm.XXXXXX")
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  phase "stopping the cluster"
  "$cluster" stop "$tmp/cluster" || true
  local pid name alive=""
  if [ -f "$tmp/cluster/pids.all" ]; then
    while read -r pid name; do
      if kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
        alive+=" $name($pid)"
      fi
    done <"$tmp/cluster/pids.all"
  fi
  if [ -n "$alive" ]; then echo "FAIL daemons still running after stop:$alive"; rc=1; else echo "ok   every daemon stopped"; fi
  if [ $rc -ne 0 ] || [ $keep -eq 1 ]; then
    echo "test folder kept for inspection: $tmp (logs in $tmp/cluster/log, job logs in $tmp/work)"
  else
    rm -rf "$tmp"
  fi
  echo "total $((SECONDS - t_start)) s"
  exit $rc
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

# ---- 1. cluster ---------------------------------------------------------------------------
phase "cluster in $tmp/cluster"
"$cluster" install
"$cluster" start "$tmp/cluster" --cpus 8 --owner-pid $$
cp "$tmp/cluster/pids" "$tmp/cluster/pids.all"  # stop removes pids; keep the list to verify
export SLURM_CONF="$tmp/cluster/slurm.conf"
export FEED_MPI="$feed_mpi"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # mpirun as root (step 3)
export OMPI_MCA_rmaps_base_oversubscribe=1  # mpirun: the node claims more CPUs than it has

# The work folder looks like the repository root for the scripts: jobs/ and data/.
work="$tmp/work"
mkdir -p "$work/data"
ln -s "$repo/jobs" "$work/jobs"
"$feed_convert" fashion-mnist "$fashion" "$work/data/fashion_mnist.h5" >/dev/null
cd "$work"

# ---- helpers --------------------------------------------------------------------------------
field() {  # field JOBID NAME: one field of `scontrol show job`
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
# wait_job JOBID TIMEOUT: wait for a final state, print the state changes, set job_state
wait_job() {
  local id=$1 limit=$2 t0=$SECONDS prev="" now st
  while :; do
    st=$(field "$id" JobState)
    now="$st $(field "$id" Reason) restarts=$(field "$id" Restarts)"
    [ "$now" = "$prev" ] || echo "  [+$((SECONDS - t_start))s] job $id: $now"
    prev=$now
    case "$st" in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)
        job_state=$st; return 0 ;;
    esac
    if [ $((SECONDS - t0)) -ge "$limit" ]; then
      job_state="TIMEOUT_IN_TEST($st)"
      echo "  job $id not finished after $limit s: cancelling it"
      scancel "$id" || true
      return 0
    fi
    sleep 1
  done
}
show_log() { echo "  --- $1 ---"; sed 's/^/  | /' "$1" 2>/dev/null | tail -n "${2:-40}"; }
epoch_of() { date -d "$1" +%s; }  # SLURM times are local ISO times

# The pFEED part switches itself on when feed_mpi has the mode (MODES section of --help).
pfeed=0
"$feed_mpi" --help >"$tmp/help.txt"
if grep -qE '^[[:space:]]+pfeed[[:space:]]' "$tmp/help.txt"; then pfeed=1; fi

# ---- 2. teachers, then pFEED through the dependency chain -----------------------------------
# The repository's Fashion-MNIST pair, shrunk by overrides: 3 teachers (jobs/fashion_pfeed.ini
# lists 3), 2 epochs of 100 images per class each.
phase "chain: 3 teachers (srun --mpi=pmix)$([ $pfeed -eq 1 ] && echo ', then pFEED with them (afterok)')"
tiny=(data.subset_per_class=100 train.epochs=2 train.batch=32 train.milestones=1 train.eval_every=2)
chain_args=(-n fashion -t 3 -c 1 --time 10 --parsable)
for kv in "${tiny[@]}"; do chain_args+=(--teachers-set "$kv" --pfeed-set "$kv"); done
[ $pfeed -eq 1 ] || chain_args+=(--teachers-only)
ids=$(jobs/slurm/submit_chain.sh "${chain_args[@]}" jobs/fashion_scratch.ini jobs/fashion_pfeed.ini) ||
  { fail "submit_chain.sh failed"; exit 1; }
read -r tid bid <<<"$ids"
echo "  teacher job $tid${bid:+, pFEED job $bid}"
wait_job "$tid" 300
teacher_log="$work/fashion_teachers-$tid.out"
teachers=(runs/fashion_teachers/teacher_{0,1,2}.h5)
if [ "$job_state" = COMPLETED ]; then ok "teacher job $tid COMPLETED"; else fail "teacher job $tid ended $job_state"; show_log "$teacher_log"; fi
expect "teacher job exit code 0:0" [ "$(field "$tid" ExitCode)" = 0:0 ]
expect "teacher job log fashion_teachers-$tid.out says the run finished" grep -q "run finished" "$teacher_log"
expect "teacher job launched with srun --mpi=pmix" grep -q "launch: srun --mpi=pmix" "$teacher_log"
expect "teacher job ran 3 ranks x 1 thread" grep -q "3 ranks x 1 threads" "$teacher_log"
expect "effective config saved as runs/fashion_teachers/slurm-$tid.ini" test -s "runs/fashion_teachers/slurm-$tid.ini"
"$py" "$check_py" scratch runs/fashion_teachers --ranks 3 --epochs 2 || failures=$((failures + 1))
expect "teacher checkpoints complete (tools/ckpt_info.py verifies every tensor's CRC)" \
  "$py" "$repo/tools/ckpt_info.py" "${teachers[@]}" >/dev/null
evaluate=("${teachers[0]}")  # feed_mpi eval at the end of this step (10000 test images each)

if [ $pfeed -eq 1 ]; then
  wait_job "$bid" 300
  pfeed_log="$work/fashion_pfeed-$bid.out"
  if [ "$job_state" = COMPLETED ]; then ok "pFEED job $bid COMPLETED"; else fail "pFEED job $bid ended $job_state"; show_log "$pfeed_log"; fi
  expect "pFEED job exit code 0:0" [ "$(field "$bid" ExitCode)" = 0:0 ]
  expect "pFEED job started after the teacher job ended (afterok)" \
    [ "$(epoch_of "$(field "$bid" StartTime)")" -ge "$(epoch_of "$(field "$tid" EndTime)")" ]
  expect "pFEED job took the teachers from the teacher job's run folder" \
    grep -q "distill.teachers=runs/fashion_teachers/teacher_0.h5,runs/fashion_teachers/teacher_1.h5,runs/fashion_teachers/teacher_2.h5" "$pfeed_log"
  expect "pFEED job ran 4 ranks x 1 thread" grep -q "4 ranks x 1 threads" "$pfeed_log"
  expect "pFEED log says the run finished" grep -q "run finished" "$pfeed_log"
  "$py" "$check_py" pfeed runs/fashion_pfeed --epochs 2 || failures=$((failures + 1))
  expect "final student runs/fashion_pfeed/student.h5 complete (CRCs)" \
    "$py" "$repo/tools/ckpt_info.py" runs/fashion_pfeed/student.h5 >/dev/null
  evaluate+=(runs/fashion_pfeed/student.h5)
else
  echo "SKIP pFEED part of the chain: pfeed not built yet (feed_mpi --help lists no mode pfeed);"
  echo "     it switches itself on once it is (jobs/slurm/pfeed.sbatch with the chain's teachers)"
fi
# sequential FEED: generations 1 and 2 from the chain's first teacher, pipelined (lag 1)
phase "sfeed: 2 generations from runs/fashion_teachers/teacher_0.h5, lag 1 (srun --mpi=pmix)"
sid=$(sbatch --parsable -J fashion_sfeed --ntasks=2 --cpus-per-task=1 --time=10 jobs/slurm/sfeed.sbatch \
        jobs/fashion_sfeed.ini sfeed.teacher=runs/fashion_teachers/teacher_0.h5 sfeed.generations=2 \
        sfeed.lag_epochs=1 "${tiny[@]}")
wait_job "$sid" 300
sfeed_log="$work/fashion_sfeed-$sid.out"
if [ "$job_state" = COMPLETED ]; then ok "sfeed job $sid COMPLETED"; else fail "sfeed job $sid ended $job_state"; show_log "$sfeed_log"; fi
expect "sfeed job exit code 0:0" [ "$(field "$sid" ExitCode)" = 0:0 ]
expect "sfeed log maps ranks to generations" grep -q "sfeed: rank 1 trains generation 2" "$sfeed_log"
expect "sfeed log says the run finished" grep -q "run finished" "$sfeed_log"
"$py" "$check_py" sfeed runs/fashion_sfeed --first 1 --ranks 2 --epochs 2 || failures=$((failures + 1))
expect "generations runs/fashion_sfeed/gen1.h5, gen2.h5 complete (CRCs)" \
  "$py" "$repo/tools/ckpt_info.py" runs/fashion_sfeed/gen1.h5 runs/fashion_sfeed/gen2.h5 >/dev/null
evaluate+=(runs/fashion_sfeed/gen1.h5 runs/fashion_sfeed/gen2.h5)
expect "feed_mpi eval reads the outputs: ${evaluate[*]}" "$feed_mpi" eval --data data/fashion_mnist.h5 "${evaluate[@]}"

# ---- 3. the mpirun alternative (also measures the speed for step 4) ----------------------------
# a student on 2 data-parallel replicas: pfeed.sbatch counts the teachers as ntasks - 2
phase "pFEED with the student on 2 replicas, teachers from runs/fashion_teachers (srun --mpi=pmix)"
rid=$(FEED_TEACHER_DIR=runs/fashion_teachers sbatch --parsable -J fashion_replicas --ntasks=5 --cpus-per-task=1 \
        --time=10 jobs/slurm/pfeed.sbatch jobs/fashion_pfeed.ini distill.student_ranks=2 "${tiny[@]}")
wait_job "$rid" 300
replicas_log="$work/fashion_replicas-$rid.out"
if [ "$job_state" = COMPLETED ]; then ok "replicas job $rid COMPLETED"; else fail "replicas job $rid ended $job_state"; show_log "$replicas_log"; fi
expect "replicas job took the 3 teachers of the chain (5 tasks - 2 replicas)" \
  grep -q "distill.teachers=runs/fashion_teachers/teacher_0.h5,runs/fashion_teachers/teacher_1.h5,runs/fashion_teachers/teacher_2.h5" "$replicas_log"
expect "replicas job trained batch 32 as 2 replicas x 16" grep -q "batch 32 = 2 replicas x 16" "$replicas_log"
expect "final student runs/fashion_replicas/student.h5 complete (CRCs)" \
  "$py" "$repo/tools/ckpt_info.py" runs/fashion_replicas/student.h5 >/dev/null

phase "teacher script with FEED_LAUNCHER=mpirun"
subset=500 per_epoch=4992  # 500 images per class, batch 32: 156 steps per epoch
mid=$(FEED_LAUNCHER=mpirun sbatch --parsable -J launcher_mpirun --ntasks=2 --cpus-per-task=1 --time=10 \
        jobs/slurm/teachers.sbatch jobs/fashion_scratch.ini data.subset_per_class=$subset train.epochs=1 \
        train.batch=32)
wait_job "$mid" 300
if [ "$job_state" = COMPLETED ]; then ok "mpirun job $mid COMPLETED"; else fail "mpirun job $mid ended $job_state"; show_log "launcher_mpirun-$mid.out"; fi
expect "mpirun job launched with mpirun" grep -q "launch: mpirun -np 2" "launcher_mpirun-$mid.out"
"$py" "$check_py" scratch runs/launcher_mpirun --ranks 2 --epochs 1 || failures=$((failures + 1))

# ---- 4. time limit: signal, checkpoint, requeue, resume -------------------------------------
# SLURM checks time limits every 30 s, so --signal=B:USR1@30 with --time=2 arrives 60-90 s
# after the start. About 105 s of training (sized with the speed step 3 measured on the same
# data) is cut by it, and the rest fits into the requeued job before its own signal.
# timelimit_run scratch|pfeed: the teacher script (2 ranks) or the pFEED script (the chain's
# 3 teachers + the student); pfeed only when FEED_SLURM_TEST_PFEED_TIMELIMIT=1 (2-3 more minutes).
rate=$("$py" "$check_py" speed runs/launcher_mpirun --ranks 2)
timelimit_run() {
  local mode=$1 attempt epochs name cid did restarts log script config ntasks check_args finals=() env=()
  if [ "$mode" = scratch ]; then
    script=jobs/slurm/teachers.sbatch config=jobs/fashion_scratch.ini ntasks=2
  else
    script=jobs/slurm/pfeed.sbatch config=jobs/fashion_pfeed.ini ntasks=4
    env=(FEED_TEACHER_DIR=runs/fashion_teachers)
  fi
  epochs=$("$py" -c "import math; print(min(60, max(3, math.ceil(105 * $rate / $per_epoch))))")
  for attempt in 1 2; do
    name=timelimit_${mode}$attempt
    phase "time-limit run $name ($mode): $epochs epochs of $per_epoch images at ~$rate img/s, --time=2 --signal=B:USR1@30"
    cid=$(env "${env[@]}" sbatch --parsable -J "$name" --ntasks=$ntasks --cpus-per-task=1 --time=2 \
            --signal=B:USR1@30 "$script" "$config" data.subset_per_class=$subset train.batch=32 \
            train.epochs="$epochs" train.milestones=$((epochs - 1)) train.eval_every=100000 \
            checkpoint.keep_last=1000 checkpoint.keep_best=false)
    # a job that needs the finished run: must wait through the requeue(s)
    did=$(sbatch --parsable -J "after_$name" --ntasks=1 --time=2 --dependency="afterok:$cid" \
            --kill-on-invalid-dep=yes --output="after_$name-%j.out" --wrap "ls runs/$name")
    wait_job "$cid" 600
    restarts=$(field "$cid" Restarts)
    if [ "$job_state" = COMPLETED ] && [ "${restarts:-0}" -eq 0 ] && [ $attempt -eq 1 ]; then
      echo "  the run finished before the signal (machine faster than measured): again with twice the epochs"
      epochs=$((epochs * 2))
      wait_job "$did" 60
      continue
    fi
    break
  done
  log="$name-$cid.out"
  if [ "$mode" = scratch ]; then
    check_args=(scratch "runs/$name" --ranks 2) finals=("runs/$name/teacher_0.h5" "runs/$name/teacher_1.h5")
  else
    check_args=(pfeed "runs/$name") finals=("runs/$name/student.h5")
  fi
  if [ "$job_state" = COMPLETED ]; then ok "time-limit job $cid COMPLETED after the requeue"; else fail "time-limit job $cid ended $job_state"; fi
  expect "time-limit job exit code 0:0" [ "$(field "$cid" ExitCode)" = 0:0 ]
  expect "time-limit job was requeued (Restarts=$restarts)" [ "${restarts:-0}" -ge 1 ]
  expect "log: the batch shell got SIGUSR1 and forwarded it" grep -q "received SIGUSR1: asking feed_mpi to checkpoint" "$log"
  expect "log: feed_mpi checkpointed and stopped" grep -q "stop signal received: checkpoint written at epoch" "$log"
  expect "log: the job requeued itself" grep -q "requeueing job $cid" "$log"
  expect "log: the requeued job resumed from the checkpoint" grep -q "^resumed from runs/$name/" "$log"
  expect "log: one start line per run of the job (append mode kept them all)" \
    [ "$(grep -c "start [0-9]* of this job id" "$log")" -eq $((restarts + 1)) ]
  expect "log: the run finished" grep -q "run finished" "$log"
  # the step of the first stop in the log = the step the next run resumed from
  local stop_step resume_step
  stop_step=$(sed -n 's/^stop signal received: .*(step \([0-9]*\)).*/\1/p' "$log" | head -n 1)
  resume_step=$(sed -n 's/^resumed from .*, step \([0-9]*\)).*/\1/p' "$log" | head -n 1)
  expect "log: resumed at the step it stopped at ($stop_step = $resume_step)" test -n "$stop_step" -a "$stop_step" = "$resume_step"
  "$py" "$check_py" "${check_args[@]}" --epochs "$epochs" --stopped || failures=$((failures + 1))
  expect "final checkpoints complete (CRC of every tensor)" "$py" "$repo/tools/ckpt_info.py" "${finals[@]}" >/dev/null
  expect "jobcomp records the job's final state COMPLETED" \
    grep -q "JobId=$cid .*JobState=COMPLETED" "$tmp/cluster/jobcomp.log"
  wait_job "$did" 120
  if [ "$job_state" = COMPLETED ]; then ok "dependent job $did ran after the requeued run completed"; else fail "dependent job $did ended $job_state"; fi
  expect "dependent job saw the final files" grep -qx "$(basename "${finals[-1]}")" "after_$name-$did.out"
  expect "dependent job started after the time-limit job ended" \
    [ "$(epoch_of "$(field "$did" StartTime)")" -ge "$(epoch_of "$(field "$cid" EndTime)")" ]
  [ $failures -eq 0 ] || show_log "$log" 60
}
timelimit_run scratch
if [ "${FEED_SLURM_TEST_PFEED_TIMELIMIT:-0}" = 1 ]; then
  if [ $pfeed -eq 1 ]; then timelimit_run pfeed; else echo "SKIP pFEED time-limit run: pfeed not built yet"; fi
fi

phase "result"
if [ $failures -ne 0 ]; then echo "$failures check(s) failed"; exit 1; fi
echo "all checks passed"
