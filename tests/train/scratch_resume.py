#!/usr/bin/env python3
"""Exact resume of a 2-rank scratch run.

1. A reference run trains without interruption.
2. The same config is started again and again in a fresh folder, each time SIGKILLed (the
   whole process group: mpirun and both ranks) at a random moment, until a run finishes.
   Every restart resumes from the newest complete checkpoint on its own.
3. Another fresh run is stopped with SIGUSR1 (must checkpoint and exit 0) and resumed.
Both interrupted runs must end with parameters, BN buffers and momentum bit-identical to
the reference; the metrics file must describe every epoch once plus the resume events.
--precision bf16 runs all three with train.precision = bf16: exact resume holds for a fixed
precision (the fp32 master weights, momentum and BN statistics are what a checkpoint holds;
the bf16 weight copy is made again from them), and the checkpoints stay fp32.
"""
import json, os, random, shutil, signal, subprocess, sys, time

from harness import check, finish, kill_job, parse_args
import h5py
import numpy as np

args = parse_args([("--kills", {"type": int, "default": 6}),
                   ("--precision", {"choices": ["fp32", "bf16"], "default": "fp32"})])
EPOCHS = 4

def ini(run_dir):
    return f"""[run]
mode = scratch
dir = {run_dir}
seed = 7
threads = 1
[data]
path = {args.data}
pad = 2
subset_per_class = 16
[model]
arch = resnet20
[train]
epochs = {EPOCHS}
batch = 16
milestones = 2,3
eval_every = 2
precision = {args.precision}
[checkpoint]
every = 1
keep_last = 2
"""

def command(cfg_path):
    return [args.mpiexec, "--oversubscribe", "--bind-to", "none", "-np", "2",
            args.feed_mpi, cfg_path]

def prepare(name):
    d = os.path.join(args.work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    p = os.path.join(d, "run.ini")
    with open(p, "w") as f:
        f.write(ini(os.path.join(d, "out")))
    return d, p

def run_to_end(cfg_path, log):
    r = subprocess.run(command(cfg_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600)
    log.write(r.stdout)
    return r

def state(run_dir, rank):
    """Every dataset of the final checkpoint except bookkeeping that may legitimately differ."""
    out = {}
    with h5py.File(os.path.join(run_dir, "out", f"teacher_{rank}.h5"), "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
        out["@epoch"] = int(f.attrs["epoch"])
        out["@step"] = int(f.attrs["step"])
    return out

def same_state(a, b, label):
    check(sorted(a) == sorted(b), f"{label}: same tensors ({len(a)})")
    differing = [k for k in a if k in b and not np.array_equal(np.asarray(a[k]), np.asarray(b[k]))]
    check(not differing, f"{label}: bit-identical to the reference" +
          (f" (differ: {differing[:5]})" if differing else ""))

os.makedirs(args.work, exist_ok=True)
log = open(os.path.join(args.work, "log.txt"), "w")

# 1. reference
ref_dir, ref_ini = prepare("reference")
t0 = time.time()
r = run_to_end(ref_ini, log)
ref_seconds = time.time() - t0
check(r.returncode == 0, f"reference run exits 0 ({ref_seconds:.1f} s)")
if r.returncode != 0:
    print(r.stdout)
    sys.exit(1)
check(r.stdout.count("epoch ") >= EPOCHS, "reference prints one line per epoch")
check(f"parameters, {args.precision}," in r.stdout, f"the student trains in {args.precision}")
ref = [state(ref_dir, k) for k in range(2)]
check(ref[0]["@epoch"] == EPOCHS, "reference checkpoint is at the last epoch")
check(not np.array_equal(ref[0]["model/conv1/weight"], ref[1]["model/conv1/weight"]),
      "ranks train different networks (seed + rank)")
check(ref[0]["model/conv1/weight"].dtype == np.float32, "checkpoints hold fp32 parameters")

# 2. SIGKILL at random moments, resume each time
random.seed(int(os.environ.get("FEED_TEST_SEED", "12345")))
kill_dir, kill_ini = prepare("killed")
kills = 0
finished = False
for attempt in range(args.kills + 20):
    p = subprocess.Popen(command(kill_ini), stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    if kills < args.kills:
        delay = random.uniform(0.3, max(1.0, ref_seconds / 3))
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            kill_job(p)
            kills += 1
            log.write(f"\n=== SIGKILL after {delay:.2f} s ===\n")
            continue
    else:
        p.wait(timeout=600)
    if p.returncode == 0 and os.path.exists(os.path.join(kill_dir, "out", "teacher_1.h5")):
        finished = True
        break
    check(p.returncode == 0, f"restart {attempt} exits 0 (got {p.returncode})")
check(finished, f"killed run finishes after {kills} SIGKILLs")
if finished:
    for k in range(2):
        same_state(ref[k], state(kill_dir, k), f"SIGKILLed run, rank {k}")
    leftovers = [f for f in os.listdir(os.path.join(kill_dir, "out")) if f.endswith(".tmp")]
    check(not leftovers, f"no temporary files left ({leftovers})")

# 3. SIGUSR1: checkpoint and exit 0, then resume
sig_dir, sig_ini = prepare("signalled")
p = subprocess.Popen(command(sig_ini), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                     start_new_session=True)
time.sleep(max(0.5, ref_seconds * 0.5))
p.send_signal(signal.SIGUSR1)  # mpirun forwards SIGUSR1 to the ranks
out, _ = p.communicate(timeout=300)
log.write(out)
stopped = "stop signal received" in out
check(p.returncode == 0, f"SIGUSR1: job exits 0 (got {p.returncode})")
check(stopped or "epoch  4/4" in out, "SIGUSR1: checkpoint-and-exit message (or the run had finished)")
r = run_to_end(sig_ini, log)
check(r.returncode == 0, "SIGUSR1: resumed run exits 0")
if stopped:
    check("resumed from" in r.stdout, "SIGUSR1: second run resumes")
for k in range(2):
    same_state(ref[k], state(sig_dir, k), f"SIGUSR1-stopped run, rank {k}")

# metrics: every epoch exactly once per rank after all the restarts
for k in range(2):
    with open(os.path.join(kill_dir, "out", f"teacher{k}_metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f]
    epochs = [l["epoch"] for l in lines if "event" not in l]
    check(epochs == list(range(1, EPOCHS + 1)), f"rank {k} metrics list epochs 1..{EPOCHS} once: {epochs}")
    check(all(l["rank"] == k for l in lines), f"rank {k} metrics carry their rank")

finish()
