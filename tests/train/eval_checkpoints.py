#!/usr/bin/env python3
"""feed_mpi eval against an independent PyTorch evaluation, and bad-checkpoint handling.

1. A 2-rank scratch run (tiny subset, 1 epoch) makes two checkpoints.
2. `feed_mpi eval --json` must agree with tools/torch_eval.py (the reference PyTorch model
   loaded from the checkpoint) to within one test sample, per model and for the ensemble
   (mean of softmax outputs, computed here in PyTorch).
3. Corrupt, truncated and wrong-architecture checkpoints each give exit code 2 and a clear
   message, and the file given is never modified.
"""
import hashlib, json, os, shutil, subprocess, sys

from harness import check, finish, parse_args
import h5py
import numpy as np
try:
    import torch
except ImportError as e:
    sys.exit(f"FAIL: {e}: install python3-torch (./tools/setup.sh does)")

args = parse_args([("--tools", {"required": True})])
sys.path.insert(0, args.tools)
from torch_models import build_model

def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, **kw)

def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()

shutil.rmtree(args.work, ignore_errors=True)
os.makedirs(args.work)
out = os.path.join(args.work, "out")
ini = os.path.join(args.work, "run.ini")
with open(ini, "w") as f:
    f.write(f"[run]\nmode = scratch\ndir = {out}\nseed = 3\nthreads = 1\n[data]\npath = {args.data}\n"
            "pad = 2\nsubset_per_class = 150\n[model]\narch = resnet20\n[train]\nepochs = 2\nbatch = 50\nlr = 0.05\n")
r = run([args.mpiexec, "--oversubscribe", "--bind-to", "none", "-np", "2", args.feed_mpi, ini])
check(r.returncode == 0, "scratch run exits 0")
if r.returncode:
    print(r.stdout)
    sys.exit(1)
ck = [os.path.join(out, f"teacher_{k}.h5") for k in range(2)]

# --- feed_mpi eval vs PyTorch ---
r = run([args.feed_mpi, "eval", "--json", "--data", args.data] + ck)
check(r.returncode == 0, "feed_mpi eval exits 0")
ev = json.loads(r.stdout)
probs = []
with h5py.File(args.data, "r") as f:
    x = f["test/images"][()].astype(np.float32) / np.float32(255)
    y = torch.from_numpy(f["test/labels"][()].astype(np.int64))
    mean = np.asarray(f.attrs["mean"], np.float32)
    std = np.asarray(f.attrs["std"], np.float32)
x = torch.from_numpy(np.ascontiguousarray(((x - mean) / std).transpose(0, 3, 1, 2)))
for k in range(2):
    r = run(["/usr/bin/python3", os.path.join(args.tools, "torch_eval.py"), "--json", "--data", args.data, ck[k]])
    check(r.returncode == 0, f"torch_eval.py on checkpoint {k} exits 0")
    te = json.loads(r.stdout)
    fe = ev["models"][k]
    check(abs(te["errors"] - fe["errors"]) <= 1,
          f"model {k}: feed_mpi errors {fe['errors']} vs PyTorch {te['errors']} (within one sample)")
    check(abs(te["loss"] - fe["loss"]) <= 1e-4 * max(1.0, abs(te["loss"])),
          f"model {k}: loss {fe['loss']:.6f} vs PyTorch {te['loss']:.6f}")
    with h5py.File(ck[k], "r") as f:
        state = {}
        f["model"].visititems(lambda n, o: state.__setitem__(n.replace("/", "."), torch.from_numpy(np.array(o[()])))
                              if isinstance(o, h5py.Dataset) else None)
        name = f.attrs["arch"]
    m = build_model(name if isinstance(name, str) else name.decode(), 1, 10)
    m.load_state_dict(state)
    m.eval()
    with torch.no_grad():
        probs.append(torch.cat([torch.softmax(m(x[i:i + 1000]), 1) for i in range(0, len(y), 1000)]))
ens_errors = int((torch.stack(probs).mean(0).argmax(1) != y).sum())
check(abs(ens_errors - round(ev["ensemble"]["error"] * len(y))) <= 1,
      f"ensemble: feed_mpi error {ev['ensemble']['error']:.4f} vs PyTorch {ens_errors / len(y):.4f}")

# --- bad checkpoints: exit 2, clear message, file untouched ---
def bad_case(label, path, expect, extra_cmd=None):
    before = sha(path) if os.path.exists(path) else None
    cmd = extra_cmd or [args.feed_mpi, "eval", "--data", args.data, path]
    r = run(cmd)
    check(r.returncode == 2, f"{label}: exit code 2 (got {r.returncode})")
    check(expect in r.stdout and "hint:" in r.stdout, f"{label}: message says '{expect}'" +
          ("" if expect in r.stdout else f"\n{r.stdout}"))
    if before:
        check(sha(path) == before, f"{label}: file unchanged")

flipped = os.path.join(args.work, "flipped.h5")
shutil.copy(ck[0], flipped)
with h5py.File(flipped, "r") as f:
    offset = f["model/conv1/weight"].id.get_offset()
with open(flipped, "r+b") as f:
    f.seek(offset + 5)
    b = f.read(1)
    f.seek(offset + 5)
    f.write(bytes([b[0] ^ 0x40]))
bad_case("bit flip in a weight", flipped, "conv1")

truncated = os.path.join(args.work, "truncated.h5")
data = open(ck[0], "rb").read()
open(truncated, "wb").write(data[: len(data) // 2])
bad_case("truncated checkpoint", truncated, "truncated.h5")

# a model of 32x32 images (the weights of a CIFAR ResNet fit any size) on 28x28 Fashion-MNIST
other_size = os.path.join(args.work, "size32.h5")
shutil.copy(ck[0], other_size)
with h5py.File(other_size, "r+") as f:
    f.attrs["input_height"] = np.int64(32)
    f.attrs["input_width"] = np.int64(32)
bad_case("images of another size", other_size, "was trained on 32x32 images")

bad_case("missing checkpoint", os.path.join(args.work, "nope.h5"), "nope.h5")

# resume a resnet32 run from a resnet20 checkpoint
arch_ini = os.path.join(args.work, "arch.ini")
with open(arch_ini, "w") as f:
    f.write(open(ini).read().replace("arch = resnet20", "arch = resnet32").replace(out, os.path.join(args.work, "out32")))
bad_case("wrong architecture on resume", ck[0], "resnet20",
         [args.feed_mpi, arch_ini, f"checkpoint.resume={ck[0]}"])

finish()
