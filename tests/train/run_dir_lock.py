#!/usr/bin/env python3
"""One run per run folder (include/feed/run_lock.h), on real Fashion-MNIST.

 1. while a 2-rank scratch run trains, the same command again exits 2 with one message
    naming the folder and the holder (host, pid of the first run's rank 0), touching
    nothing; --check says the same; the first run finishes normally with all its epochs;
 2. a run SIGKILLed mid-way leaves its lock text behind: the next run notes that it takes the
    lock over, resumes and finishes;
 3. --check refuses a run.dir that is a file.
"""
import json, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import check, finish, kill_job, run, write_ini

args, W, MPI = harness.start()
MPI += ["-np", "2"]
ini = write_ini(W, "scratch.ini", f"[run]\nmode = scratch\ndir = {W}/run\nseed = 4\nthreads = 1\n"
                f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 40\n"
                "[train]\nbatch = 16\nlr = 0.05\nepochs = 2\neval_every = 100\n[model]\narch = resnet20\n")
lock = f"{W}/run/.feed_mpi.lock"

def wait_for(pred, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.2)
    return False

def lock_text():
    try:
        return open(lock).read()
    except OSError:
        return ""

# 1. a second run in the same folder
first = subprocess.Popen(MPI + [args.feed_mpi, ini], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
check(wait_for(lambda: "pid" in lock_text()), "the first run takes the lock")
holder = lock_text().strip()
files_before = sorted(os.listdir(f"{W}/run"))
r = run(MPI + [args.feed_mpi, ini], timeout=120)
check(r.returncode == 2 and r.stdout.count("is in use by another run") == 1 and holder in r.stdout
      and "another run.dir" in r.stdout, f"a second run exits 2 with one message naming the holder ({holder})")
r = run([args.feed_mpi, "--check", ini], timeout=120)
check(r.returncode == 2 and "is in use by another run" in r.stdout and "ready to run" not in r.stdout,
      "--check says the folder is in use")
out, _ = first.communicate(timeout=600)
epochs = [json.loads(l) for l in open(f"{W}/run/teacher0_metrics.jsonl") if '"epoch"' in l and "event" not in l]
check(first.returncode == 0 and [e["epoch"] for e in epochs] == [1, 2],
      "the first run finishes normally with its own epochs 1 and 2")
check(lock_text() == "", "a run that ends normally leaves the lock file empty")

# 2. a killed run's lock is taken over
p = subprocess.Popen(MPI + [args.feed_mpi, ini, f"run.dir={W}/killed"], stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
def has_checkpoints():  # both ranks, so that the restart has a common step to resume from
    files = os.listdir(f"{W}/killed") if os.path.isdir(f"{W}/killed") else []
    return all(any(f.startswith(f"teacher{r}_e") and f.endswith(".h5") for f in files) for r in (0, 1))
check(wait_for(has_checkpoints, 300), "the run to kill writes its first checkpoints")
kill_job(p)
left = open(f"{W}/killed/.feed_mpi.lock").read().strip()
r = run(MPI + [args.feed_mpi, ini, f"run.dir={W}/killed"], timeout=600)
if r.returncode:
    print(r.stdout[-3000:])
check(r.returncode == 0 and "names an earlier run that did not end normally" in r.stdout and left in r.stdout
      and "resumed from" in r.stdout, f"after SIGKILL the next run takes the lock over with a note ({left}), resumes "
      "and finishes")

# 3. a run.dir that is a file
open(f"{W}/a_file", "w").write("x")
r = run([args.feed_mpi, "--check", ini, f"run.dir={W}/a_file"])
check(r.returncode == 2 and "is not a folder" in r.stdout, "--check refuses a run.dir that is a file")
finish()
