#!/usr/bin/env python3
"""Data-parallel replicas (train.replicas, distill.student_ranks) on real Fashion-MNIST.

 1. scratch, 20 steps of a global batch of 16 at lr 1e-4: P = 2 replicas with synchronised BN
    against one rank. Only the order of the sums differs, and a BN network's fp32 gradients
    carry that order's noise (in PyTorch too: at initialisation conv1's gradient differs by
    1 % between 1 and 2 threads), so the yardstick is the same run on one rank with 2 threads
    instead of 1: P = 2 must be at least as close to it (relative difference of all weights,
    and of all BN statistics, at most twice that floor), while per-replica BN
    (the default) must differ far more (10x), so the comparison can fail.
 2. pfeed with one teacher rank, the same for the student and its NTL (with BN), over 2 steps:
    there the noise grows faster (the 2-thread floor is 6e-4 after 20 steps, as large as the
    effect of per-replica BN), after 2 steps it is 1e-6 and P = 2 is within 1e-5. Then sfeed,
    generations 1 and 2 pipelined, each on 2 replicas against one rank each.
 3. exact resume, pfeed with P = 2 (per-replica BN): SIGKILL, then SIGUSR1 (checkpoint and
    exit), each resumed: the final checkpoint bit-identical to the uninterrupted P = 2 run.
 4. the drift check: replica 1 nudged after step 5 ends the job at the check of step 10
    naming replica 1 and the tensor; no final checkpoint.
 5. refusals, exit 2 with one message: a batch that does not split, a rank count that does not
    fit, replicas with distill.source = local, train.replicas in pfeed.
"""
import os, signal, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import check, finish, kill_job, tensors, write_ini
import numpy as np

args, W, MPI = harness.start()
env = dict(os.environ, OMP_NUM_THREADS="1")
COMMON = (f"[run]\nseed = 3\nthreads = 1\n[data]\npath = {args.data}\npad = 2\nsubset_per_class = 32\n"
          "[model]\narch = resnet20\n")  # 320 images: 20 steps of 16
scratch_ini = write_ini(W, "scratch.ini", COMMON + "[run]\nmode = scratch\n"
                        "[train]\nbatch = 16\nlr = 0.05\nepochs = 1\n")


def job(ranks, ini, *over, hooks=None, timeout=600, launch=None):
    """feed_mpi on `ranks` ranks (or the mpirun arguments `launch`, e.g. an MPMD line)."""
    e = dict(env, **(hooks or {}))
    cmd = MPI + (launch or ["-np", str(ranks), args.feed_mpi, ini] + list(over))
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e, timeout=timeout)


def ok(r, what):
    check(r.returncode == 0, f"{what} exits 0 (got {r.returncode})")
    if r.returncode != 0:
        print(r.stdout[-3000:])
    return r.returncode == 0


def rel(a, b, running):
    """|a - b| / |b| over every weight (running=False) or BN statistic (True) of /model and /ntl."""
    ks = [k for k in b if k.startswith(("model/", "ntl/")) and b[k].dtype.kind == "f" and ("running" in k) == running]
    x = np.concatenate([a[k].ravel() for k in ks]).astype(np.float64)
    y = np.concatenate([b[k].ravel() for k in ks]).astype(np.float64)
    return float(np.linalg.norm(x - y) / np.linalg.norm(y))


def compare(what, steps, ref_path, floor_path, sync_path, own_path):
    ref, floor, sync, own = (tensors(p) for p in (ref_path, floor_path, sync_path, own_path))
    for running, name in ((False, "weights"), (True, "BN statistics")):
        f, s_, o = rel(floor, ref, running), rel(sync, ref, running), rel(own, ref, running)
        print(f"   {what}, {name} after {steps} steps, relative to 1 rank: 2 threads {f:.2e}, "
              f"2 replicas sync BN {s_:.2e}, 2 replicas own BN {o:.2e}")
        check(s_ <= max(2 * f, 1e-6),
              f"{what}: P = 2 with sync BN within the fp32 floor of P = 1 ({name}: {s_:.2e} <= 2 x {f:.2e})")
        if what == "pfeed" and not running:
            check(s_ <= 1e-5, f"{what}: P = 2 with sync BN within 1e-5 of P = 1 after {steps} steps ({s_:.2e})")
        check(o > 10 * s_, f"{what}: per-replica BN differs far more ({name}: {o:.2e} > 10 x {s_:.2e})")


LR = "train.lr=1e-4"
# 1. scratch
one = job(1, scratch_ini, f"run.dir={W}/s1", LR)
floor = job(1, scratch_ini, f"run.dir={W}/s1t2", LR, "run.threads=2", hooks={"OMP_NUM_THREADS": "2"})
two = job(2, scratch_ini, f"run.dir={W}/s2", LR, "train.replicas=2", "train.sync_bn=true")
own = job(2, scratch_ini, f"run.dir={W}/s2own", LR, "train.replicas=2")
if (ok(one, "scratch, 1 rank") & ok(floor, "scratch, 1 rank, 2 threads") & ok(two, "scratch, 2 replicas, sync BN")
        & ok(own, "scratch, 2 replicas, own BN")):
    check("batch 16 = 2 replicas x 8" in two.stdout, "the start line names the replicas")
    compare("scratch", 20, f"{W}/s1/teacher_0.h5", f"{W}/s1t2/teacher_0.h5", f"{W}/s2/teacher_0.h5",
            f"{W}/s2own/teacher_0.h5")
    check(sorted(os.listdir(f"{W}/s2")) == sorted(os.listdir(f"{W}/s1")),
          "scratch: replicas write the files of one rank, once")

# 2. pfeed, one teacher rank: a network trained at the usual lr
t = job(1, scratch_ini, f"run.dir={W}/teacher")
ok(t, "the teacher's training")
teacher = f"{W}/teacher/teacher_0.h5"
pfeed_ini = write_ini(W, "pfeed.ini", COMMON + f"[run]\nmode = pfeed\n[train]\nbatch = 16\nlr = 0.05\nepochs = 1\n"
                      f"[distill]\nteachers = {teacher}\n")
TWO = "data.subset_per_class=4"  # 40 images: 2 steps
p1 = job(2, pfeed_ini, f"run.dir={W}/p1", LR, TWO)
# the floor: the student on 2 threads, the teacher as before (MPMD: one rank each)
run_floor = [f"run.dir={W}/p1t2", LR, TWO, "run.threads=0"]
pf = job(2, pfeed_ini, launch=["-np", "1", "-x", "OMP_NUM_THREADS=2", args.feed_mpi, pfeed_ini] + run_floor +
         [":", "-np", "1", "-x", "OMP_NUM_THREADS=1", args.feed_mpi, pfeed_ini] + run_floor)
p2 = job(3, pfeed_ini, f"run.dir={W}/p2", LR, TWO, "distill.student_ranks=2", "distill.sync_bn=true")
p2own = job(3, pfeed_ini, f"run.dir={W}/p2own", LR, TWO, "distill.student_ranks=2")
if (ok(p1, "pfeed, student on 1 rank") & ok(pf, "pfeed, 2 threads") & ok(p2, "pfeed, student on 2 replicas, sync BN")
        & ok(p2own, "pfeed, 2 replicas, own BN")):
    check(any(k.startswith("ntl/") for k in tensors(f"{W}/p1/student.h5")), "pfeed: the checkpoint holds the NTL")
    compare("pfeed", 2, f"{W}/p1/student.h5", f"{W}/p1t2/student.h5", f"{W}/p2/student.h5", f"{W}/p2own/student.h5")

# 2b. sfeed: generations 1 and 2 from the teacher above, pipelined (lag 1 of 2 epochs), each
# generation on 2 replicas with sync BN against one rank each: 4 steps per generation
sfeed_ini = write_ini(W, "sfeed.ini", COMMON + f"[run]\nmode = sfeed\n[train]\nbatch = 16\nepochs = 2\n"
                      f"[sfeed]\nteacher = {teacher}\ngenerations = 2\nlag_epochs = 1\n")
q1 = job(2, sfeed_ini, f"run.dir={W}/q1", LR, TWO)
q2 = job(4, sfeed_ini, f"run.dir={W}/q2", LR, TWO, "distill.student_ranks=2", "distill.sync_bn=true")
if ok(q1, "sfeed, a rank per generation") & ok(q2, "sfeed, 2 replicas per generation, sync BN"):
    check("ranks 2-3 (2 replicas) trains generation 2" in q2.stdout, "sfeed: the layout names each generation's ranks")
    for g in (1, 2):
        a, b = tensors(f"{W}/q2/gen{g}.h5"), tensors(f"{W}/q1/gen{g}.h5")
        w, r = rel(a, b, False), rel(a, b, True)
        print(f"   sfeed generation {g} after 4 steps, 2 replicas against 1 rank: weights {w:.2e}, BN statistics {r:.2e}")
        check(w <= 1e-5, f"sfeed generation {g}: P = 2 with sync BN within 1e-5 of P = 1 ({w:.2e})")


def wait_for_epoch_1(folder):
    """Until the checkpoint of epoch 1 is in folder."""
    deadline = time.time() + 300
    while time.time() < deadline and not (os.path.isdir(folder) and
                                          any(f.startswith("student_e0001") for f in os.listdir(folder))):
        time.sleep(0.05)


# 3. exact resume, pfeed P = 2, per-replica BN, 3 epochs
res_ini = write_ini(W, "resume.ini", COMMON + f"[run]\nmode = pfeed\n[train]\nbatch = 16\nlr = 0.05\nepochs = 3\n"
                    f"[distill]\nteachers = {teacher}\nstudent_ranks = 2\n")
t0 = time.time()
ref_run = job(3, res_ini, f"run.dir={W}/r_ref")
seconds = time.time() - t0
if ok(ref_run, "pfeed P = 2 reference"):
    ref = tensors(f"{W}/r_ref/student.h5")
    cmd = MPI + ["-np", "3", args.feed_mpi, res_ini, f"run.dir={W}/r_kill"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    wait_for_epoch_1(f"{W}/r_kill")
    time.sleep(seconds / 6)  # inside epoch 2
    kill_job(p)
    resumed = job(3, res_ini, f"run.dir={W}/r_kill")
    if ok(resumed, "pfeed P = 2 resumed after SIGKILL"):
        check("resumed from" in resumed.stdout, "SIGKILL: the restart resumes from a checkpoint")
        b = tensors(f"{W}/r_kill/student.h5")
        diff = [k for k in ref if k not in b or not np.array_equal(ref[k], b[k])]
        check(not diff, f"SIGKILL + resume: every tensor bit-identical to the uninterrupted run ({len(ref)} tensors)"
              + (f" (differ: {diff[:4]})" if diff else ""))
    p = subprocess.Popen(MPI + ["-np", "3", args.feed_mpi, res_ini, f"run.dir={W}/r_sig"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    wait_for_epoch_1(f"{W}/r_sig")
    time.sleep(seconds / 6)
    p.send_signal(signal.SIGUSR1)
    out, _ = p.communicate(timeout=300)
    check(p.returncode == 0 and "stop signal received" in out,
          f"SIGUSR1: checkpoint inside epoch 2 and exit 0 (exit {p.returncode})")
    resumed = job(3, res_ini, f"run.dir={W}/r_sig")
    if ok(resumed, "pfeed P = 2 resumed after SIGUSR1"):
        b = tensors(f"{W}/r_sig/student.h5")
        diff = [k for k in ref if k not in b or not np.array_equal(ref[k], b[k])]
        check(not diff, f"SIGUSR1 + resume: every tensor bit-identical to the uninterrupted run"
              + (f" (differ: {diff[:4]})" if diff else ""))

# 4. drift check
d = job(2, scratch_ini, f"run.dir={W}/drift", "train.replicas=2", "train.replica_check=5",
        hooks={"FEED_TEST_REPLICA_DRIFT": "5"})
print("   " + "\n   ".join(l for l in d.stdout.splitlines() if "error" in l or "drift" in l))
check(d.returncode != 0 and "replica 1 of 2 drifted from replica 0 by step 10" in d.stdout and "conv1.weight" in d.stdout,
      f"drift: the job ends at the check of step 10 naming replica 1 and conv1.weight (exit {d.returncode})")
check(not os.path.exists(f"{W}/drift/teacher_0.h5"), "drift: no final checkpoint")

# 5. refusals
cases = [
    (2, scratch_ini, ["train.replicas=2", "train.batch=15"], "train.batch = 15 does not split into 2 replicas"),
    (3, scratch_ini, ["train.replicas=2"], "a multiple of train.replicas = 2"),
    (2, pfeed_ini, ["distill.student_ranks=2"], "needs 3 MPI ranks"),
    (1, pfeed_ini, ["distill.student_ranks=2", "distill.source=local"], "replicas need"),
    (3, pfeed_ini, ["train.replicas=2"], "distill.student_ranks"),
]
for ranks, ini, over, message in cases:
    r = job(ranks, ini, f"run.dir={W}/bad", *over)
    check(r.returncode == 2 and message in r.stdout,
          f"refused with exit 2 and '{message}': {' '.join(over)} on {ranks} rank(s) (exit {r.returncode})")
    if r.returncode != 2 or message not in r.stdout:
        print(r.stdout[-1500:])
finish()
