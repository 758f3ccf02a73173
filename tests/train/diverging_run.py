#!/usr/bin/env python3
"""A run that diverges on real Fashion-MNIST stops at the first non-finite step.

 1. a 1-epoch run (lr 0.05) resumed with train.lr = 100: the job exits 1 within one step of
    the first Inf/NaN, naming the step and what diverged (a BN statistic or a gradient), and
    the checkpoint it would resume from; the run folder's checkpoints are untouched (same
    files, same bytes, no .tmp), every float tensor in them is finite, and `feed_mpi eval`
    of the newest gives a finite error;
 2. the same from a fresh start: exit 1, "no checkpoint yet", no checkpoint written;
 3. a pfeed job with an MPI teacher rank diverging: the whole job ends non-zero, with one
    message, without hanging;
 4. a checkpoint holding a NaN weight with a correct CRC (as a diverged model saved by
    another tool would be) is refused by eval, by --check and by a pfeed job using it as a
    teacher: exit 2, naming the file and the tensor.
"""
import glob, hashlib, json, math, os, shutil, sys, zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
import harness
from harness import check, finish, run, tensors, write_ini
import h5py
import numpy as np

args, W, MPI = harness.start()
ini = write_ini(W, "scratch.ini", f"[run]\nmode = scratch\ndir = {W}/run\nseed = 4\nthreads = 1\n"
                f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 20\n"
                "[train]\nbatch = 8\nlr = 0.05\nepochs = 1\neval_every = 100\n[model]\narch = resnet20\n")

def checkpoints(d):
    return {os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest()
            for p in sorted(glob.glob(f"{d}/*.h5"))}

def step_of_divergence(out):
    for line in out.splitlines():
        if "training diverged at step" in line:
            return line
    return ""

# 1. diverging after a good epoch
r = run([args.feed_mpi, ini])
check(r.returncode == 0, "a 1-epoch run at lr 0.05 finishes")
before = checkpoints(f"{W}/run")
r = run([args.feed_mpi, ini, "train.lr=100", "train.epochs=3"])
line = step_of_divergence(r.stdout)
print(line)
check(r.returncode == 1, f"the diverging run exits 1 (got {r.returncode})")
check(line and ("BN statistic" in line or "gradient" in line or "cross-entropy" in line) and " of epoch 2 " in line,
      "the message names the step in epoch 2 and what went non-finite")
check("teacher0_e0001_s00000025.h5, is from before it" in r.stdout and "the same command continues" in r.stdout,
      "the message names the checkpoint a resume continues from")
check(checkpoints(f"{W}/run") == before and not glob.glob(f"{W}/run/*.tmp"),
      "the run folder's checkpoints are unchanged and no temp file is left")
finite = all(np.isfinite(v).all() for p in glob.glob(f"{W}/run/*.h5") for v in tensors(p).values()
             if v.dtype == np.float32)
check(finite, "every float tensor in the run folder is finite")
odd = f'{W}/run/a "quoted" \\ name.h5'  # eval --json escapes paths
shutil.copy(f"{W}/run/teacher0_e0001_s00000025.h5", odd)
r = run([args.feed_mpi, "eval", "--data", args.data, "--json", f"{W}/run/teacher0_e0001_s00000025.h5", odd])
os.remove(odd)
try:
    ev = json.loads(r.stdout)
except ValueError:
    ev = {}
errs = [m.get("error") for m in ev.get("models", [])]
check(len(errs) == 2 and all(e is not None and math.isfinite(e) and 0 <= e <= 1 for e in errs)
      and ev["models"][1]["path"] == odd and ev["ensemble"]["finite"] is True,
      f"eval --json of the newest checkpoint: valid JSON, finite errors ({errs})")

# 2. diverging from the first epoch
r = run([args.feed_mpi, ini, "run.dir=" + f"{W}/fresh", "train.lr=100"])
check(r.returncode == 1 and " of epoch 1 " in step_of_divergence(r.stdout) and "there is no checkpoint yet" in r.stdout
      and "starts again from epoch 1" in r.stdout, "a fresh diverging run exits 1 and says there is no checkpoint")
check(not glob.glob(f"{W}/fresh/*.h5*"), "nothing was saved from the diverged state")

# 3. pfeed over MPI: the student diverges, the teacher rank is ended with it
r = run(MPI + ["-np", "2", args.feed_mpi, ini, "run.mode=pfeed", f"run.dir={W}/pfeed", "train.lr=100",
               f"distill.teachers={W}/run/teacher_0.h5"], timeout=300)
check(r.returncode != 0 and r.stdout.count("training diverged at step") == 1 and "rank 0" in step_of_divergence(r.stdout),
      f"pfeed with a teacher rank: the job ends non-zero (got {r.returncode}) with one message from the student's rank")

# 4. a checkpoint with a NaN weight and a matching CRC
nan_ckpt = f"{W}/nan_teacher.h5"
shutil.copy(f"{W}/run/teacher_0.h5", nan_ckpt)
with h5py.File(nan_ckpt, "r+") as f:
    ds = f["model/layer2/1/conv1/weight"]
    w = ds[()]
    w.flat[5] = np.nan
    ds[...] = w
    ds.attrs["crc32"] = np.uint32(zlib.crc32(np.ascontiguousarray(w).tobytes()))
needle = f"checkpoint '{nan_ckpt}': tensor 'model/layer2/1/conv1/weight' holds nan at element 5"
r = run([args.feed_mpi, "eval", "--data", args.data, "--json", nan_ckpt])
check(r.returncode == 2 and needle in r.stdout and "nan" not in r.stdout.split("feed_mpi: error")[0],
      "eval refuses a checkpoint with a NaN weight, naming the tensor")
teacher_args = [ini, "run.mode=pfeed", f"run.dir={W}/nan_pfeed", "distill.source=local", f"distill.teachers={nan_ckpt}"]
r = run([args.feed_mpi, "--check"] + teacher_args)
check(r.returncode == 2 and needle in r.stdout and "ready to run" not in r.stdout,
      "--check refuses a teacher with a NaN weight")
r = run([args.feed_mpi] + teacher_args)
check(r.returncode == 2 and needle in r.stdout and not glob.glob(f"{W}/nan_pfeed/*.h5"),
      "a pfeed job refuses a teacher with a NaN weight before training")
finish()
