#!/usr/bin/env bash
# cluster.sh - a private one-node SLURM cluster in a folder, for testing the job scripts.
#
#   tests/slurm/cluster.sh start DIR [--cpus N] [--owner-pid PID]
#   tests/slurm/cluster.sh stop DIR
#   tests/slurm/cluster.sh install          install slurm-wlm and munge if missing (apt-get)
#
# start: writes DIR/munge.key, DIR/slurm.conf and starts munged, slurmctld and slurmd with
# every socket, pid, log, state and spool file inside DIR, on two free TCP ports, and waits
# until the node is idle. Then, in the same shell:
#     export SLURM_CONF=DIR/slurm.conf      # sbatch, squeue, scontrol, srun use this cluster
# The node claims N CPUs (default 8) whatever the machine has (SlurmdParameters=
# config_overrides), so 6-rank jobs run on a 2-core VM. With --owner-pid a watchdog stops the
# cluster as soon as that process is gone (a test killed by ctest's timeout leaves nothing).
#
# stop: cancels the cluster's jobs, waits for their job steps, then stops slurmd, slurmctld,
# munged and the watchdog by the PIDs recorded in DIR/pids (TERM, then KILL after 10 s).
# Safe to call twice and on a half-started cluster.
#
# Needs root (slurmd runs jobs as the submitting user and must be able to switch users; here
# it only ever runs root's jobs). Meant for containers and CI: no cgroups (proctrack/linuxproc,
# task/none), no accounting daemon (jobcomp/filetxt records finished jobs in DIR/jobcomp.log).
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }

# ---- helpers ----

install_packages() {
  local missing=() p status
  for p in slurm-wlm munge; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install SLURM and munge by hand"
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: run as root or apt-get install ${missing[*]}"
  echo "cluster.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # --no-install-recommends; policy-rc.d in containers keeps the system services from starting
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# true if any TCP socket uses the port as its local port, in any state (a listener, or a
# connection or TIME_WAIT that would make bind() fail); reads /proc, needs no ss/netstat
port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Two free ports below the kernel's ephemeral range (ip_local_port_range, 32768 by default):
# a port inside it can be taken by any outgoing connection between the check and the bind.
free_port_pair() {
  local tries=0 base low=20000 high
  high=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$high" -gt $((low + 100)) ] || { low=10000; high=20000; }
  while [ $tries -lt 200 ]; do
    base=$(( low + (RANDOM * 32768 + RANDOM) % (high - low - 2) ))
    if ! port_in_use "$base" && ! port_in_use $((base + 1)); then echo "$base"; return 0; fi
    tries=$((tries + 1))
  done
  die "no two free TCP ports found in $low-$high"
}

# alive = exists and is not a zombie waiting for its parent to reap it
pid_alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# stop one PID: TERM, wait up to 10 s, then KILL
stop_pid() {
  local pid=$1 name=$2
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do pid_alive "$pid" || return 0; sleep 0.2; done
  echo "cluster.sh: $name (pid $pid) ignored SIGTERM for 10 s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

wait_for() {  # wait_for SECONDS COMMAND...: true as soon as COMMAND succeeds
  local deadline=$((SECONDS + $1))
  shift
  while [ $SECONDS -lt $deadline ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

record_pid() { echo "$1 $2" >>"$dir/pids"; }

# ---- start ----

start() {
  local cpus=8 owner=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --cpus) cpus=$2; shift ;;
      --owner-pid) owner=$2; shift ;;
      *) die "start: unknown option '$1'" ;;
    esac
    shift
  done
  [ "$(id -u)" -eq 0 ] || die "start needs root (slurmd must run jobs as their user)"
  for prog in munged slurmctld slurmd sbatch scontrol; do
    command -v "$prog" >/dev/null || die "$prog not found: run '$0 install' (apt-get install slurm-wlm munge)"
  done
  [ ! -e "$dir/pids" ] || die "$dir already holds a cluster (pids file exists): stop it first"
  mkdir -p "$dir"/{state,spool,tmp,log}
  dir=$(cd "$dir" && pwd)
  chmod 700 "$dir"
  : >"$dir/pids"

  # munge: a fresh key and a private socket; --force because the key is owned by root
  dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge.key"
  munged --foreground --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed" \
    >>"$dir/log/munged.out" 2>&1 &
  record_pid $! munged
  wait_for 10 test -S "$dir/munge.socket" ||
    die "munged did not start: see $dir/log/munged.log"

  local host port
  host=$(hostname -s)
  port=$(free_port_pair)
  cat >"$dir/slurm.conf" <<EOF
# Private one-node test cluster written by tests/slurm/cluster.sh; everything lives in $dir.
ClusterName=feedtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again (120 s
# by default); the main and backfill schedulers look at pending jobs every 2 s
AuthInfo=socket=$dir/munge.socket,cred_expire=15
SchedulerParameters=sched_interval=2,bf_interval=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
TmpFS=$dir/tmp
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# containers have no usable cgroups: track processes through /proc, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# no slurmdbd: finished jobs (with their final state) are appended to this file
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
# Open MPI of Debian talks PMIx to srun
MpiDefault=pmix
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# the node may claim more CPUs than the machine has (oversubscribed test node)
SlurmdParameters=config_overrides
ReturnToService=2
# keep finished jobs visible to scontrol for an hour (no accounting database here)
MinJobAge=3600
# short teardown so time-limit tests stay short
KillWait=10
InactiveLimit=0
SlurmdTimeout=300
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  export SLURM_CONF="$dir/slurm.conf"

  slurmctld -D -i -f "$SLURM_CONF" >>"$dir/log/slurmctld.out" 2>&1 &
  record_pid $! slurmctld
  wait_for 30 scontrol ping ||
    die "slurmctld did not answer within 30 s: see $dir/log/slurmctld.log"

  slurmd -D -f "$SLURM_CONF" >>"$dir/log/slurmd.out" 2>&1 &
  record_pid $! slurmd
  node_idle() { sinfo -h -n "$host" -o %t | grep -qx idle; }
  if ! wait_for 30 node_idle; then
    scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
    wait_for 10 node_idle ||
      die "node $host is not idle after 40 s ($(sinfo -h -o '%t %E' 2>&1)): see $dir/log/slurmd.log"
  fi

  if [ -n "$owner" ]; then
    # watchdog: stop the cluster when the owner dies, even by SIGKILL (ctest timeout)
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -e "$2/pids" ]; do sleep 2; done
                    [ -e "$2/pids" ] && exec "$3" stop "$2"' watchdog "$owner" "$dir" "$self" \
      >>"$dir/log/watchdog.out" 2>&1 </dev/null &
    record_pid $! watchdog
  fi
  echo "cluster.sh: cluster 'feedtest' up: node $host with $cpus CPUs, ports $port-$((port + 1)), in $dir"
  echo "cluster.sh:   export SLURM_CONF=$dir/slurm.conf"
}

# ---- stop ----

stop() {
  [ -d "$dir" ] || { echo "cluster.sh: $dir does not exist: nothing to stop"; return 0; }
  dir=$(cd "$dir" && pwd)
  [ -e "$dir/pids" ] || { echo "cluster.sh: no cluster recorded in $dir"; return 0; }
  export SLURM_CONF="$dir/slurm.conf"
  local pid name ctld_pid="" slurmd_pid="" munged_pid="" watchdog_pid=""
  while read -r pid name; do
    case "$name" in
      slurmctld) ctld_pid=$pid ;; slurmd) slurmd_pid=$pid ;;
      munged) munged_pid=$pid ;; watchdog) watchdog_pid=$pid ;;
    esac
  done <"$dir/pids"
  # the watchdog must not call stop again while we are stopping
  [ "$watchdog_pid" = "$PPID" ] || [ "$watchdog_pid" = "$$" ] || stop_pid "$watchdog_pid" watchdog

  # cancel the jobs, then give slurmd's job steps (slurmstepd) time to clean up and exit
  if pid_alive "$ctld_pid" && pid_alive "$slurmd_pid"; then
    scancel --quiet --full --user=root >/dev/null 2>&1 || true
    steps_gone() { ! compgen -G "$dir/spool/*_[0-9]*.[0-9]*" >/dev/null; }  # step sockets: <node>_<job>.<step>
    wait_for 30 steps_gone || echo "cluster.sh: job steps still running after 30 s" >&2
  fi
  stop_pid "$slurmd_pid" slurmd
  stop_pid "$ctld_pid" slurmctld
  stop_pid "$munged_pid" munged
  # job steps that outlived slurmd (they daemonize): found by their step socket in our spool
  leftover_stepds
  rm -f "$dir/pids"
  echo "cluster.sh: cluster in $dir stopped"
}

# slurmstepd processes of this cluster: those whose open files include our spool folder
leftover_stepds() {
  local p
  for p in /proc/[0-9]*; do
    [ -r "$p/cmdline" ] || continue
    case "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" in slurmstepd*) ;; *) continue ;; esac
    local fd
    for fd in "$p"/fd/*; do
      case "$(readlink "$fd" 2>/dev/null)" in
        "$dir"/*)
          echo "cluster.sh: stopping leftover ${p#/proc/} ($(tr '\0' ' ' <"$p/cmdline"))" >&2
          stop_pid "${p#/proc/}" slurmstepd
          break ;;
      esac
    done
  done
}

# ---- main ----

self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
cmd=${1:-}
case "$cmd" in
  install) install_packages ;;
  start|stop)
    [ $# -ge 2 ] || die "usage: $0 $cmd DIR"
    dir=$2
    shift 2
    "$cmd" "$@" ;;
  *) sed -n '2,20p' "$self"; [ -z "$cmd" ] || [ "$cmd" = -h ] || [ "$cmd" = --help ] || exit 2 ;;
esac
