# shellcheck shell=bash
# feed_job.sh - the shared part of the feed_mpi SLURM batch scripts; sourced, not run.
#
# teachers.sbatch and pfeed.sbatch source this file and call, in this order:
#
#   feed_job_init CONFIG.ini [section.key=value ...]
#       threads from --cpus-per-task, the run folder from the job name, the effective
#       configuration checked (and saved in the run folder) before any rank starts.
#       Sets FEED_MPI, FEED_RUN_DIR and the array FEED_ARGS (CONFIG.ini + overrides).
#   feed_job_run FINAL_FILE... -- LAUNCHER ARGS...
#       runs the job step (srun or mpirun) in the background and waits for it; SIGUSR1 from
#       SLURM (`#SBATCH --signal=B:USR1@SECONDS`) is forwarded to it, so feed_mpi checkpoints
#       and exits 0; the job then requeues itself unless every FINAL_FILE was written by this
#       run (the requeued job resumes from the checkpoint: checkpoint.resume = auto).
#
# Environment knobs (all optional; sbatch passes the submitting shell's environment):
#   FEED_MPI            feed_mpi program (default: feed_mpi on PATH, else <repo>/build/feed_mpi)
#   FEED_RUNS           parent of run folders (default: runs, relative to the submit folder)
#   FEED_LAUNCHER       srun (default) or mpirun
#   FEED_MAX_REQUEUES   give up after this many requeues of one job (default 20)
#
# Exit codes of the batch job: 0 finished (or requeued), feed_mpi's code when it failed,
# 2 bad input found before the launch, 3 stopped early and not requeued (see the log).

feed_log() { echo "[feed_job $(date '+%F %T')] $*"; }
feed_die() { echo "[feed_job $(date '+%F %T')] error: $*" >&2; exit "${FEED_DIE_CODE:-2}"; }

# ---- set-up ----------------------------------------------------------------------------

feed_job_init() {
  [ $# -ge 1 ] || feed_die "no config file given (usage: sbatch SCRIPT CONFIG.ini [section.key=value ...])"
  [ -n "${SLURM_JOB_ID:-}" ] || feed_die "not inside a SLURM job: submit with sbatch (or set SLURM_JOB_ID etc. by hand)"
  local config=$1
  shift
  [ -r "$config" ] || feed_die "cannot read config '$config' (relative paths start at the submit folder $(pwd))"

  # The program: explicit, on PATH, or the build folder of the repository holding the scripts.
  if [ -z "${FEED_MPI:-}" ]; then
    if command -v feed_mpi >/dev/null; then FEED_MPI=$(command -v feed_mpi)
    else FEED_MPI=$FEED_JOBS_DIR/../../build/feed_mpi; fi
  fi
  [ -x "$FEED_MPI" ] || feed_die "feed_mpi not found at '$FEED_MPI': build it (./tools/setup.sh), put it on PATH or export FEED_MPI=/path/to/feed_mpi"

  # Threads: one OpenMP thread per CPU of the task. srun does not inherit --cpus-per-task from
  # the batch allocation since SLURM 22.05: SRUN_CPUS_PER_TASK passes it on explicitly.
  export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
  export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-1}
  # OpenMP threads stay on the task's cores and do not spin when idle (MPI waits).
  export OMP_PROC_BIND=${OMP_PROC_BIND:-false}
  # Parallel file systems (Lustre, GPFS, some NFS) often lack the locks HDF5 1.10 asks for;
  # feed_mpi never shares an open file (checkpoints are written to NAME.tmp and renamed).
  export HDF5_USE_FILE_LOCKING=${HDF5_USE_FILE_LOCKING:-FALSE}

  # Run folder: FEED_RUNS/<job name>, unless the overrides name one (run.dir=...). A requeued
  # job keeps its name and id, so it finds its own checkpoints there.
  FEED_ARGS=("$config")
  local a has_dir=0
  for a in "$@"; do
    case "$a" in run.dir=*) has_dir=1 ;; esac
    FEED_ARGS+=("$a")
  done
  [ $has_dir -eq 1 ] || FEED_ARGS+=("run.dir=${FEED_RUNS:-runs}/${SLURM_JOB_NAME}")

  # Validate before launching any rank (a bad key or a missing data file costs one line, not
  # an MPI abort), and keep the effective configuration of this job next to its outputs.
  local effective
  if ! effective=$("$FEED_MPI" --print-config "${FEED_ARGS[@]}"); then
    feed_die "the configuration is not valid (feed_mpi's message above); nothing was launched"
  fi
  FEED_RUN_DIR=$(printf '%s\n' "$effective" |
    awk '/^\[/ { s = ($0 == "[run]") } s && $1 == "dir" && $2 == "=" { sub(/^[^=]*= */, ""); sub(/  *;.*$/, ""); print; exit }')
  [ -n "$FEED_RUN_DIR" ] || feed_die "could not read run.dir from 'feed_mpi --print-config' output"
  mkdir -p "$FEED_RUN_DIR" || feed_die "cannot create run folder $FEED_RUN_DIR"
  printf '%s\n' "$effective" >"$FEED_RUN_DIR/slurm-${SLURM_JOB_ID}.ini"

  feed_log "job ${SLURM_JOB_ID} (${SLURM_JOB_NAME}) on ${SLURM_JOB_NODELIST:-?}, start ${SLURM_RESTART_COUNT:-0} of this job id"
  feed_log "${SLURM_NTASKS:-?} ranks x ${OMP_NUM_THREADS} threads; run folder $FEED_RUN_DIR; program $FEED_MPI"
  feed_log "command: ${FEED_ARGS[*]}"
}

# ---- the job step, signals and requeue ---------------------------------------------------

feed_job_run() {
  local finals=() a
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do finals+=("$1"); shift; done
  [ $# -gt 1 ] || feed_die "feed_job_run: usage: feed_job_run FINAL_FILE... -- LAUNCHER ARGS..."
  shift

  # Files written after this stamp belong to this run (a finished run folder from an earlier
  # job of the same name does not count as finished).
  local stamp="$FEED_RUN_DIR/.slurm-${SLURM_JOB_ID}.started"
  touch "$stamp"

  # SIGUSR1 (from --signal=B:USR1@T, or `scancel --batch --signal=USR1 JOB`): checkpoint, then
  # requeue. SIGTERM (scancel, time limit, node shutdown): checkpoint, no requeue. Either way
  # the ranks get SIGUSR1: srun and mpirun both forward it (mpirun does not forward SIGTERM).
  FEED_STEP_PID=""
  FEED_GOT_SIGNAL=""
  FEED_WAIT_INTERRUPTED=0
  trap 'feed_on_signal USR1' USR1
  trap 'feed_on_signal TERM' TERM

  feed_log "launch: $*"
  "$@" &
  FEED_STEP_PID=$!
  local rc=0
  while :; do
    # A trapped signal interrupts `wait` (status > 128) while the step still runs: wait
    # again. bash keeps the status of a finished child, so a second wait still gets it.
    FEED_WAIT_INTERRUPTED=0
    rc=0
    wait "$FEED_STEP_PID" || rc=$?
    [ "$FEED_WAIT_INTERRUPTED" -eq 1 ] || break
  done
  trap - USR1 TERM
  feed_log "job step ended with exit code $rc"

  local missing=() f
  for f in "${finals[@]}"; do
    [ -f "$f" ] && [ "$f" -nt "$stamp" ] || missing+=("$f")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    rm -f "$stamp"
    feed_log "run finished: ${finals[*]}"
    return "$rc"
  fi

  if [ "$FEED_GOT_SIGNAL" = USR1 ]; then
    local restarts=${SLURM_RESTART_COUNT:-0} max=${FEED_MAX_REQUEUES:-20}
    [ "$rc" -eq 0 ] || feed_log "warning: the step failed after the stop signal (code $rc); the newest complete checkpoint is still there"
    if [ "$restarts" -ge "$max" ]; then
      FEED_DIE_CODE=3 feed_die "not requeued: job already started $((restarts + 1)) times (FEED_MAX_REQUEUES=$max); resubmit to continue"
    fi
    feed_log "run not finished (missing ${missing[*]}): requeueing job $SLURM_JOB_ID; it resumes from the checkpoint"
    if scontrol requeue "$SLURM_JOB_ID"; then
      exit 0  # SLURM puts the job back in the queue (state PENDING, reason BeginTime)
    fi
    FEED_DIE_CODE=3 feed_die "scontrol requeue failed (cluster with JobRequeue=0 or no permission): resubmit the same sbatch command to resume"
  fi
  if [ "$rc" -ne 0 ]; then
    feed_log "error: feed_mpi failed (code $rc, message above); not requeued. Fix the cause and resubmit: the run resumes from its newest checkpoint"
    exit "$rc"
  fi
  FEED_DIE_CODE=3 feed_die "feed_mpi stopped before the end (a signal sent to the ranks${FEED_GOT_SIGNAL:+ or SIG$FEED_GOT_SIGNAL}); not requeued: resubmit the same command to resume"
}

feed_on_signal() {
  FEED_WAIT_INTERRUPTED=1
  # USR1 means "requeue", TERM means "stop"; TERM wins if both arrive
  [ "$FEED_GOT_SIGNAL" = TERM ] || FEED_GOT_SIGNAL=$1
  feed_log "received SIG$1: asking feed_mpi to checkpoint and stop (SIGUSR1 to the job step, pid ${FEED_STEP_PID:-none})"
  if [ -n "$FEED_STEP_PID" ]; then kill -USR1 "$FEED_STEP_PID" 2>/dev/null || true; fi
}
