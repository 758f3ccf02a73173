#!/usr/bin/env python3
"""Distillation jobs end to end on a tiny Fashion-MNIST subset, every method.

Teachers: a ResNet-20 (64-channel final map) and a WRN-10-2 (128 channels), trained here
with scratch runs. The student is a ResNet-20, so L1 needs a 1x1 regressor for the WRN and
FEED's NTL maps 64 -> 128 channels. Then:
 0. --check validates teachers and terms and prints the launch line;
 1. for every term (feed, kd, at, l1, ft) and one combination (kd,feed): MPI teacher ranks
    and teachers in the student's process (distill.source = local) end bit-identical
    (student, term modules, momentum); FT trains its paraphrasers once and reuses them;
 2. runs SIGKILLed (all ranks) after a checkpoint and started again end bit-identical to
    the uninterrupted ones (kd, at, ft); pfeed stopped by SIGUSR1 and resumed likewise;
 3. transport.dtype = bf16 runs and gives another finite result;
 4. a wrong rank count, a damaged teacher checkpoint, teachers that do not fit a term and
    a teacher killed mid-run each end the job non-zero with a message naming the cause
    (and the teacher's rank), without hanging, and the last checkpoint stays usable.
"""
import functools, os, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import harness
from harness import check, finish, kill_job, run, same, tensors
import h5py
import numpy as np

args, W, MPI = harness.start()
write_ini = functools.partial(harness.write_ini, W)

common = (f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 24\n"
          "[train]\nbatch = 40\nlr = 0.05\neval_every = 100\n")
for arch, extra in (("resnet20", ""), ("wrn", "wrn_depth = 10\nwrn_width = 2\n")):
    ini = write_ini(f"t_{arch}.ini", f"[run]\nmode = scratch\ndir = {W}/t_{arch}\nseed = 5\nthreads = 1\n"
                    + common + f"epochs = 1\n[model]\narch = {arch}\n{extra}")
    r = run(MPI + ["-np", "1", args.feed_mpi, ini])
    check(r.returncode == 0, f"teacher {arch} trains")
    if r.returncode:
        print(r.stdout)
        sys.exit(1)
teachers = f"{W}/t_resnet20/teacher_0.h5, {W}/t_wrn/teacher_0.h5"

def distill_ini(name, out, terms="feed", extra="", epochs=3, mode="distill"):
    return write_ini(name, f"[run]\nmode = {mode}\ndir = {W}/{out}\nseed = 9\nthreads = 1\n" + common +
                     f"epochs = {epochs}\n[model]\narch = resnet20\n[distill]\nteachers = {teachers}\n"
                     f"terms = {terms}\n{extra}")

# 0. --check: data, student, every teacher, every term and the launch line, without training
check_ini = distill_ini("check.ini", "check", "feed,l1,ft")
r = run([args.feed_mpi, "--check", check_ini, "train.epochs=2", "run.dir=a b"])
check(r.returncode == 0 and "ready to run" in r.stdout and "NTL 64 -> 128 channels" in r.stdout
      and "1x1 conv regressor 64 -> 128" in r.stdout and "trained first (5 epochs)" in r.stdout
      and f"mpirun -np 3 feed_mpi {check_ini} train.epochs=2 'run.dir=a b'" in r.stdout,
      "--check validates both teachers for every term and prints the launch line")
if r.returncode:
    print(r.stdout)

# 1. every term: MPI teacher ranks vs teachers in the student's process
reference = {}
for terms in ("feed", "kd", "at", "l1", "ft", "kd,feed"):
    tag = terms.replace(",", "_")
    t0 = time.time()
    r = run(MPI + ["-np", "3", args.feed_mpi, distill_ini(f"mpi_{tag}.ini", f"mpi_{tag}", terms)])
    seconds = time.time() - t0
    check(r.returncode == 0, f"{terms}: teacher ranks (3 ranks) exit 0 ({seconds:.0f} s)")
    if r.returncode:
        print(r.stdout[-3000:])
        continue
    metric = {"feed": "feed_loss_2", "kd": "kd_loss", "at": "at_loss_2", "l1": "l1_loss_2", "ft": "ft_loss_2",
              "kd,feed": "feed_loss_2"}[terms]
    check(metric in r.stdout and "wait_s_2" in r.stdout and " nan" not in r.stdout,
          f"{terms}: epoch lines show {metric} and wait_s_2, no NaN")
    r2 = run([args.feed_mpi, distill_ini(f"local_{tag}.ini", f"local_{tag}", terms, "source = local\n")])
    check(r2.returncode == 0, f"{terms}: in-process teachers exit 0")
    ref = tensors(f"{W}/mpi_{tag}/student.h5")
    reference[terms] = ref
    check(same(ref, tensors(f"{W}/local_{tag}/student.h5")), f"{terms}: teacher ranks and in-process teachers "
          f"give bit-identical students ({len(ref)} tensors)")
    if terms == "feed":
        check(ref["ntl/1/conv1/weight"].shape[:2] == (128, 64), "feed: NTL 2 maps 64 -> 128 channels")
    if terms == "l1":
        check("regressor/1/conv/weight" in ref and "regressor/0/conv/weight" not in ref,
              "l1: a regressor for the WRN teacher only")
    if terms == "ft":
        check(ref["translator/1/conv2/weight"].shape[0] == 64 and os.path.exists(f"{W}/mpi_ft/paraphraser_1.h5"),
              "ft: translator 2 ends in 64 = 0.5 x 128 channels; the paraphraser is saved in run.dir")
        with h5py.File(f"{W}/mpi_ft/paraphraser_1.h5") as f:
            rl = f["train/recon_loss"][()]
        check(len(rl) == 5 and np.isfinite(rl).all() and rl[-1] < rl[0],
              f"ft: paraphraser 2's reconstruction loss falls over 5 epochs ({rl[0]:.3f} -> {rl[-1]:.3f})")
        print(r.stdout[:600])

# reuse: a second FT run in the same folder takes the saved paraphrasers
r = run([args.feed_mpi, distill_ini("reuse_ft.ini", "local_ft", "ft", "source = local\n") , "checkpoint.resume=none",
         "run.dir=" + f"{W}/reuse_ft", "ft.paraphrasers=" + f"{W}/mpi_ft/paraphraser_0.h5,{W}/mpi_ft/paraphraser_1.h5"])
check(r.returncode == 0 and r.stdout.count("reusing") == 2 and "paraphraser: epoch" not in r.stdout,
      "ft: named paraphrasers are reused, not trained again")
if "ft" in reference:
    check(same(reference["ft"], tensors(f"{W}/reuse_ft/student.h5")), "ft: reusing the paraphrasers gives the same student")

# 2. SIGKILL of every rank after the first checkpoint, then the same command again
def kill_after_checkpoint(cmd, out_dir, timeout=300):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and p.poll() is None:
        if os.path.isdir(out_dir) and any(f.startswith("student_e0001") and f.endswith(".h5") for f in os.listdir(out_dir)):
            break
        time.sleep(0.05)
    killed = p.poll() is None
    if killed:
        kill_job(p)
    else:
        p.communicate()
    return killed

for terms in ("kd", "at", "ft"):
    if terms not in reference:
        continue
    ini = distill_ini(f"kill_{terms}.ini", f"kill_{terms}", terms, "[checkpoint]\nevery = 1\n")
    killed = kill_after_checkpoint(MPI + ["-np", "3", args.feed_mpi, ini], f"{W}/kill_{terms}")
    r = run(MPI + ["-np", "3", args.feed_mpi, ini])
    check(killed and r.returncode == 0 and "resumed from" in r.stdout,
          f"{terms}: SIGKILLed after epoch 1 (all ranks) and resumed from its checkpoint")
    check(same(reference[terms], tensors(f"{W}/kill_{terms}/student.h5")),
          f"{terms}: killed + resumed run is bit-identical to the uninterrupted one")

# SIGUSR1 and resume (pfeed, the short form of distill with terms = feed)
ini = distill_ini("sig.ini", "sig", "feed", mode="pfeed")
t0 = time.time()
p = subprocess.Popen(MPI + ["-np", "3", args.feed_mpi, ini], stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
while time.time() - t0 < 120 and not os.path.isdir(f"{W}/sig"):
    time.sleep(0.05)
time.sleep(2.0)
p.send_signal(signal.SIGUSR1)
out, _ = p.communicate(timeout=300)
check(p.returncode == 0, f"SIGUSR1: all ranks exit 0 (got {p.returncode})")
stopped = "stop signal received" in out
r = run(MPI + ["-np", "3", args.feed_mpi, ini])
check(r.returncode == 0, "resumed pfeed exits 0")
if stopped:
    check("resumed from" in r.stdout, "second run resumes from the signal's checkpoint")
if "feed" in reference:
    check(same(reference["feed"], tensors(f"{W}/sig/student.h5")),
          "pfeed stopped + resumed is bit-identical to distill with terms = feed")

# 3. bf16 on the wire
r = run(MPI + ["-np", "3", args.feed_mpi, distill_ini("bf16.ini", "bf16", "feed", "[transport]\ndtype = bf16\n")])
check(r.returncode == 0, "transport.dtype = bf16 exits 0")
if r.returncode == 0 and "feed" in reference:
    b = tensors(f"{W}/bf16/student.h5")
    diff = np.abs(b["model/fc/weight"] - reference["feed"]["model/fc/weight"]).max()
    check(0 < diff and np.isfinite(b["model/fc/weight"]).all(),
          f"bf16 gives another finite result (max |d fc.weight| = {diff:.2e})")

# 4. failures
r = run(MPI + ["-np", "2", args.feed_mpi, ini], timeout=60)
check(r.returncode == 2 and r.stdout.count("needs 3 MPI ranks") == 1, "wrong rank count: one message, exit 2")
r = run(MPI + ["-np", "2", args.feed_mpi, ini, "distill.source=local"], timeout=60)
check(r.returncode == 2 and "needs 1 MPI rank" in r.stdout, "source = local under 2 ranks: exit 2 with a hint")
r = run([args.feed_mpi, "--check", ini, "distill.terms=kd"])
check(r.returncode == 2 and "pfeed trains with terms = feed only" in r.stdout, "pfeed with other terms is refused")
r = run([args.feed_mpi, "--check", ini, "feed.teachers=x.h5"])
check(r.returncode == 2 and "it moved: use [distill] teachers" in r.stdout, "a moved key names its new place")
r = run([args.feed_mpi, "--check", distill_ini("at_r18.ini", "at_r18", "at"), "model.arch=resnet18"])
check(r.returncode == 2 and "at: teacher 1" in r.stdout and "stages" in r.stdout,
      "AT with a student of 4 stages and teachers of 3: exit 2 naming the teacher and the stages")
bad = os.path.join(W, "bad_teacher.h5")
data = open(f"{W}/t_wrn/teacher_0.h5", "rb").read()
open(bad, "wb").write(data[: len(data) // 3])
bad_ini = write_ini("bad.ini", open(ini).read().replace(f"{W}/t_wrn/teacher_0.h5", bad).replace(f"{W}/sig", f"{W}/bad"))
r = run([args.feed_mpi, "--check", bad_ini])
check(r.returncode == 2 and "bad_teacher.h5" in r.stdout and "hint:" in r.stdout,
      "--check finds the damaged teacher checkpoint (exit 2)")
r = run(MPI + ["-np", "3", args.feed_mpi, bad_ini], timeout=120)
check(r.returncode != 0 and "rank 2: error" in r.stdout and "bad_teacher.h5" in r.stdout,
      "damaged teacher checkpoint: job ends, message names rank 2 and the file")

kill_ini = distill_ini("kill.ini", "kill", "kd", "[transport]\ntimeout = 20\n", epochs=6)
p = subprocess.Popen(MPI + ["-np", "3", args.feed_mpi, kill_ini], stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True, start_new_session=True)

def teacher_pid():
    for pid in os.listdir("/proc"):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"OMPI_COMM_WORLD_RANK=1" in env and kill_ini.encode() in cmd:
            return int(pid)
    return None

# kill teacher rank 1 once the student has written its first checkpoint
victim, deadline = None, time.time() + 300
while time.time() < deadline and p.poll() is None:
    if os.path.isdir(f"{W}/kill") and any(f.startswith("student_e") for f in os.listdir(f"{W}/kill")):
        victim = teacher_pid()
        break
    time.sleep(0.05)
if victim:
    os.kill(victim, signal.SIGKILL)
t_kill = time.time()
try:
    out, _ = p.communicate(timeout=120)
except subprocess.TimeoutExpired:
    out = kill_job(p)
check(victim is not None, "found teacher rank 1's process")
check(p.returncode != 0, f"killed teacher: job ends non-zero after {time.time() - t_kill:.0f} s (rc {p.returncode})")
check("rank 1" in out, "killed teacher: the message names rank 1")
ck = [f for f in os.listdir(f"{W}/kill") if f.startswith("student_e")] if os.path.isdir(f"{W}/kill") else []
if ck:
    r = run(MPI + ["-np", "3", args.feed_mpi, kill_ini])
    check(r.returncode == 0 and "resumed from" in r.stdout, "after the teacher died the run resumes from its checkpoint")
finish()
