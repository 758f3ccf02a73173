#!/usr/bin/env python3
"""bf16 teachers over MPI on real Fashion-MNIST.

 1. a teacher rank with run.precision = bf16 on a bf16 wire sends its final map as the network
    holds it (feed_teacher_compute_bf16: no fp32 pass); the student trained from it equals bit
    for bit the one whose teacher took the fp32 route (FEED_TEACHER_NO_DIRECT_BF16: map to
    fp32, then encoded to bf16) - the two must carry the same bits;
 2. with bf16 teachers the student differs from the one with fp32 teachers (the precision took
    effect), and a bf16 student (train.precision) from the fp32 one; checkpoints stay fp32;
 3. `feed_mpi eval --precision bf16` of the teacher agrees with fp32 within 0.5 points and
    prints the same table; an unknown precision is refused with exit 2.
"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import harness
from harness import check, finish, run, same, tensors, write_ini
import numpy as np

args, W, MPI = harness.start()
ini = write_ini(W, "teacher.ini", f"[run]\nmode = scratch\ndir = {W}/teacher\nseed = 4\nthreads = 1\n"
                f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 20\n"
                "[train]\nbatch = 16\nlr = 0.05\nepochs = 1\neval_every = 100\n[model]\narch = resnet20\n")
r = run(MPI + ["-np", "1", args.feed_mpi, ini])
check(r.returncode == 0, "a teacher trained (1 epoch)")
teacher = f"{W}/teacher/teacher_0.h5"


def student(name, *overrides, env=None):
    """pFEED student + 1 teacher rank, 1 epoch; returns the student's tensors (or {})."""
    cmd = MPI + ["-np", "2", args.feed_mpi, ini, "run.mode=pfeed", f"distill.teachers={teacher}",
                 f"run.dir={W}/{name}", "transport.dtype=bf16", "train.epochs=1"] + list(overrides)
    e = dict(os.environ, **(env or {}))
    import subprocess
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, env=e)
    check(r.returncode == 0, f"{name}: exit 0")
    if r.returncode != 0:
        print(r.stdout)
        return {}
    return tensors(f"{W}/{name}/student.h5")


direct = student("direct", "run.precision=bf16")
routed = student("routed", "run.precision=bf16", env={"FEED_TEACHER_NO_DIRECT_BF16": "1"})
check(direct and same(direct, routed), "bf16 teacher on a bf16 wire: the direct map = the fp32 route, bit for bit")
fp32 = student("fp32_teacher")
check(direct and fp32 and not same(direct, fp32), "bf16 teachers change the student (the precision took effect)")
bf16_student = student("bf16_student", "train.precision=bf16")
check(bf16_student and fp32 and not same(bf16_student, fp32), "a bf16 student differs from the fp32 one")
check(bf16_student and bf16_student["model/conv1/weight"].dtype == np.float32, "its checkpoint holds fp32")

data = args.data
e32 = run([args.feed_mpi, "eval", "--data", data, "--json", teacher])
e16 = run([args.feed_mpi, "eval", "--data", data, "--json", "--precision", "bf16", teacher])
check(e32.returncode == 0 and e16.returncode == 0, "eval in fp32 and bf16: exit 0")
if e32.returncode == 0 and e16.returncode == 0:
    import json
    a, b = json.loads(e32.stdout)["models"][0]["error"], json.loads(e16.stdout)["models"][0]["error"]
    check(abs(a - b) <= 0.005, f"teacher's test error in bf16 {100 * b:.2f} % vs fp32 {100 * a:.2f} %")
bad = run([args.feed_mpi, "eval", "--data", data, "--precision", "fp8", teacher])
check(bad.returncode == 2 and "--precision takes fp32 or bf16" in bad.stdout, "eval --precision fp8: exit 2, says why")
finish()
