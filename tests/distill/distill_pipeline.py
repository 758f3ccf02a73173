#!/usr/bin/env python3
"""Parallel FEED end to end on a tiny Fashion-MNIST subset.

Teachers: a ResNet-20 (64-channel final map) and a WRN-10-2 (128 channels), trained here
with scratch runs. Then, with the student a ResNet-20:
 1. pFEED over MPI (student + 2 teacher ranks) and the same run with the teachers computed
    in the student's process (feed.local_teachers) end bit-identical (student, NTLs,
    momentum);
 2. a run stopped by SIGUSR1 and resumed ends bit-identical to the uninterrupted one;
 3. transfer = bf16 runs and gives another (close) result;
 4. a wrong rank count, a damaged teacher checkpoint and a teacher killed mid-run each end
    the job non-zero with a message naming the cause (and the teacher's rank), without
    hanging, and the last checkpoint stays usable.
"""
import os, shutil, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from harness import check, finish, parse_args
import h5py
import numpy as np

args = parse_args()
shutil.rmtree(args.work, ignore_errors=True)
os.makedirs(args.work)
W = args.work
MPI = [args.mpiexec, "--oversubscribe", "--bind-to", "none"]

def run(cmd, timeout=600):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)

def write_ini(name, body):
    p = os.path.join(W, name)
    with open(p, "w") as f:
        f.write(body)
    return p

common = f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 24\n[train]\nbatch = 40\nlr = 0.05\n"
for arch, extra in (("resnet20", ""), ("wrn", "wrn_depth = 10\nwrn_width = 2\n")):
    ini = write_ini(f"t_{arch}.ini", f"[run]\nmode = scratch\ndir = {W}/t_{arch}\nseed = 5\nthreads = 1\n"
                    + common + f"epochs = 1\n[model]\narch = {arch}\n{extra}")
    r = run(MPI + ["-np", "1", args.feed_mpi, ini])
    check(r.returncode == 0, f"teacher {arch} trains")
    if r.returncode:
        print(r.stdout)
        sys.exit(1)
teachers = f"{W}/t_resnet20/teacher_0.h5, {W}/t_wrn/teacher_0.h5"

def pfeed_ini(name, out, extra="", epochs=3):
    return write_ini(name, f"[run]\nmode = pfeed\ndir = {W}/{out}\nseed = 9\nthreads = 1\n" + common +
                     f"epochs = {epochs}\n[model]\narch = resnet20\n[feed]\nteachers = {teachers}\n{extra}")

def tensors(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out

def same(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)

# 0. --check: data, student, every teacher and the launch line, without training
check_ini = pfeed_ini("check.ini", "check")
r = run([args.feed_mpi, "--check", check_ini, "train.epochs=2", "run.dir=a b"])
check(r.returncode == 0 and "ready to run" in r.stdout and "NTL 64 -> 128 channels" in r.stdout
      and f"mpirun -np 3 feed_mpi {check_ini} train.epochs=2 'run.dir=a b'" in r.stdout,
      "--check validates both teachers and prints the launch line with rank count and overrides")

# 1. MPI vs local teachers
t0 = time.time()
r = run(MPI + ["-np", "3", args.feed_mpi, pfeed_ini("mpi.ini", "mpi")])
mpi_seconds = time.time() - t0
check(r.returncode == 0, f"pFEED over MPI (3 ranks) exits 0 ({mpi_seconds:.0f} s)")
check("feed_loss_1" in r.stdout and "feed_loss_2" in r.stdout and "wait_s_2" in r.stdout,
      "epoch lines show each teacher's FEED loss and wait time")
print(r.stdout[-600:])
r = run([args.feed_mpi, pfeed_ini("local.ini", "local", "local_teachers = true\n")])
check(r.returncode == 0, "pFEED with local teachers exits 0")
ref = tensors(f"{W}/mpi/student.h5")
check(any(k.startswith("ntl/1/") for k in ref) and ref["ntl/1/conv1/weight"].shape[:2] == (128, 64),
      "checkpoint holds both NTLs; NTL 2 maps 64 -> 128 channels")
check(same(ref, tensors(f"{W}/local/student.h5")), "MPI and in-process teachers give bit-identical weights")

# 2. SIGUSR1 and resume
ini = pfeed_ini("sig.ini", "sig")
p = subprocess.Popen(MPI + ["-np", "3", args.feed_mpi, ini], stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
time.sleep(max(2.0, mpi_seconds * 0.45))
p.send_signal(signal.SIGUSR1)
out, _ = p.communicate(timeout=300)
check(p.returncode == 0, f"SIGUSR1: all ranks exit 0 (got {p.returncode})")
stopped = "stop signal received" in out
r = run(MPI + ["-np", "3", args.feed_mpi, ini])
check(r.returncode == 0, "resumed pFEED exits 0")
if stopped:
    check("resumed from" in r.stdout, "second run resumes from the signal's checkpoint")
check(same(ref, tensors(f"{W}/sig/student.h5")), "stopped + resumed run is bit-identical to the uninterrupted one")

# 3. bf16 on the wire
r = run(MPI + ["-np", "3", args.feed_mpi, pfeed_ini("bf16.ini", "bf16", "transfer = bf16\n")])
check(r.returncode == 0, "transfer = bf16 exits 0")
b = tensors(f"{W}/bf16/student.h5")
diff = np.abs(b["model/fc/weight"] - ref["model/fc/weight"]).max()
check(0 < diff and np.isfinite(b["model/fc/weight"]).all(), f"bf16 gives another finite result (max |d fc.weight| = {diff:.2e})")

# 4. failures
r = run(MPI + ["-np", "2", args.feed_mpi, ini], timeout=60)
check(r.returncode != 0 and r.stdout.count("needs 3 MPI ranks") == 1, "wrong rank count: one message, non-zero exit")
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

kill_ini = pfeed_ini("kill.ini", "kill", "teacher_timeout = 20\n", epochs=5)
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
    time.sleep(0.2)
if victim:
    os.kill(victim, signal.SIGKILL)
t_kill = time.time()
try:
    out, _ = p.communicate(timeout=120)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    out, _ = p.communicate()
check(victim is not None, "found teacher rank 1's process")
check(p.returncode != 0, f"killed teacher: job ends non-zero after {time.time() - t_kill:.0f} s (rc {p.returncode})")
check("rank 1" in out or "rank 1 " in out, "killed teacher: the message names rank 1")
ck = [f for f in os.listdir(f"{W}/kill") if f.startswith("student_e")] if os.path.isdir(f"{W}/kill") else []
if ck:
    r = run(MPI + ["-np", "3", args.feed_mpi, kill_ini])
    check(r.returncode == 0 and "resumed from" in r.stdout, "after the teacher died the run resumes from its checkpoint")
finish()
