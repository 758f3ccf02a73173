#!/usr/bin/env python3
"""feed_mpi analyze on real Fashion-MNIST networks.

1. Two networks from a short 2-rank scratch job (seeds 1 and 2).
2. The probe against PyTorch: the first 3 steps' inputs, final maps and losses (dumped by the
   FEED_TEST_PROBE_DUMP hook) and the paraphraser after them equal a PyTorch run of the same
   steps (tools/torch_models.Paraphraser, SGD) within 1e-4; the maps equal the PyTorch
   network's (tools/feed2torch.py).
3. Under mpirun -np 2 (a network per rank): the loss falls on both and differs between them;
   analyze_metrics.jsonl holds every epoch and the pair; --json is valid.
4. CKA and ridge error equal a float64 numpy computation on PyTorch's final maps (1e-3).
5. Exact resume: SIGTERM during epoch 2 of 3, then the same command: the probe and its
   losses are bit-identical to an uninterrupted run.
6. Bad input: each refused with exit 2 and one message.
"""
import json, os, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import harness
from harness import check, finish, run, same, tensors, write_ini
import h5py
import numpy as np
try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    sys.exit(f"FAIL: {e}: install python3-torch (./tools/setup.sh does)")

args, W, MPI = harness.start([("--tools", {"required": True})])
sys.path.insert(0, args.tools)
import torch_models as tm  # noqa: E402
from feed2torch import load_checkpoint  # noqa: E402

torch.set_num_threads(1)
FEED = args.feed_mpi

# ---- 1. two real networks ----
ini = write_ini(W, "scratch.ini", f"[run]\nmode = scratch\ndir = {W}/nets\nseed = 1\nthreads = 1\n"
                f"[data]\npath = {args.data}\nsubset_per_class = 100\n[model]\narch = resnet20\n"
                "[train]\nepochs = 2\nbatch = 50\n")
r = run(MPI + ["-np", "2", FEED, ini])
check(r.returncode == 0, f"2-rank scratch job exits 0 ({r.stdout[-300:]})")
A, B = f"{W}/nets/teacher_0.h5", f"{W}/nets/teacher_1.h5"
PROBE = ["--epochs", "3", "--subset-per-class", "20", "--batch", "40", "--samples", "200"]


def analyze(*extra, np_=1, env=None):
    cmd = ([] if np_ == 1 else MPI + ["-np", str(np_)]) + [FEED, "analyze", "--data", args.data, *extra]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
                          env=dict(os.environ, **(env or {})))


def lines(path):
    return [json.loads(x) for x in open(path)]


# ---- 2. the probe's first 3 steps against PyTorch ----
dump = f"{W}/dump.h5"
r = analyze(*PROBE, "--out", f"{W}/p_dump", A, env={"FEED_TEST_PROBE_DUMP": dump})
check(r.returncode == 0 and os.path.exists(dump), f"analyze with the dump hook exits 0 ({r.stdout[-300:]})")
with h5py.File(dump, "r") as f:
    def state(group):
        out = {}
        f[group].visititems(lambda k, v: out.__setitem__(k.replace("/", "."), torch.from_numpy(np.array(v[()])))
                            if isinstance(v, h5py.Dataset) else None)
        return out
    init, after3 = state("init"), state("after3")
    inputs, maps, losses = f["inputs"][()], f["maps"][()], f["losses"][()]
net = load_checkpoint(A)
x = torch.from_numpy(inputs).reshape(3, 40, 1, 28, 28)
with torch.no_grad():
    torch_maps = torch.stack([net.forward_feats(x[s])[1]["final"] for s in range(3)])
feed_maps = torch.from_numpy(maps).reshape(torch_maps.shape)
err = float((feed_maps - torch_maps).abs().max() / torch_maps.abs().max())
check(err < 1e-4, f"the probe's input maps equal PyTorch's final maps of the same images (max rel {err:.1e})")
C = torch_maps.shape[2]
para = tm.Paraphraser(C, C // 2)
para.load_state_dict(init)
opt = torch.optim.SGD(para.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
torch_losses = []
for s in range(3):
    opt.zero_grad()
    loss = F.l1_loss(para(feed_maps[s]), feed_maps[s])
    loss.backward()
    opt.step()
    torch_losses.append(loss.item())
rel = max(abs(a - b) / abs(b) for a, b in zip(losses, torch_losses))
check(rel < 1e-4, f"3 probe losses {np.round(losses, 6).tolist()} equal PyTorch's {np.round(torch_losses, 6).tolist()} "
      f"(max rel {rel:.1e})")
worst = max(float((after3[k] - v).abs().max() / max(v.abs().max(), 1e-12)) for k, v in para.state_dict().items())
check(worst < 1e-4, f"the paraphraser after 3 steps equals PyTorch's (max rel {worst:.1e})")

# ---- 3. two networks on two ranks ----
out = f"{W}/p_mpi"
r = analyze(*PROBE, "--out", out, "--labels", "seed1,seed2", "--json", A, B, np_=2)
check(r.returncode == 0, f"mpirun -np 2 analyze exits 0 ({r.stdout[-400:]})")
js = None
try:
    js = json.loads(r.stdout.strip().splitlines()[-1])
except (ValueError, IndexError):
    pass
check(js is not None and [n["network"] for n in js["networks"]] == ["seed1", "seed2"], "--json: one valid object")
rec = lines(f"{out}/analyze_metrics.jsonl")
probe = {n: [x["recon_loss"] for x in rec if x.get("event") == "probe_epoch" and x["network"] == n] for n in ("seed1", "seed2")}
check(all(len(v) == 3 for v in probe.values()), f"3 probe epochs of each network in analyze_metrics.jsonl: {probe}")
check(all(v[-1] < v[0] for v in probe.values()), "the reconstruction loss falls on both networks")
check(abs(probe["seed1"][-1] - probe["seed2"][-1]) > 1e-3 * probe["seed1"][-1], "and differs between them")
check("rank 1" not in r.stdout and all(os.path.exists(f"{out}/probe_{n}.h5") for n in ("seed1", "seed2")),
      "each network's probe checkpoint is written")
pair = [x for x in rec if x.get("event") == "pair"]
check(len(pair) == 1 and 0 <= pair[0]["cka"] <= 1, f"one pair line, CKA in [0, 1]: {pair}")

# ---- 4. CKA and ridge against numpy ----
def final_maps(path, n=200):
    model = load_checkpoint(path)
    with h5py.File(args.data, "r") as f:
        img = f["test/images"][:n].astype(np.float32) / np.float32(255)
        mean, std = np.asarray(f.attrs["mean"], np.float32), np.asarray(f.attrs["std"], np.float32)
    xt = torch.from_numpy(np.ascontiguousarray(((img - mean) / std).transpose(0, 3, 1, 2)))
    with torch.no_grad():
        return model.forward_feats(xt)[1]["final"].reshape(n, -1).double().numpy()


def cka(X, Y):
    X, Y = X - X.mean(0), Y - Y.mean(0)
    Kx, Ky = X @ X.T, Y @ Y.T
    return (Kx * Ky).sum() / np.sqrt((Kx * Kx).sum() * (Ky * Ky).sum())


def ridge(X, Y):
    nf = len(X) // 2
    X, Y = X - X[:nf].mean(0), Y - Y[:nf].mean(0)
    K = X @ X.T
    lam = 1e-3 * np.trace(K[:nf, :nf]) / nf
    alpha = np.linalg.solve(K[:nf, :nf] + lam * np.eye(nf), Y[:nf])
    pred = K[nf:, :nf] @ alpha
    return ((Y[nf:] - pred) ** 2).sum() / ((Y[nf:] - Y[nf:].mean(0)) ** 2).sum()


if pair:
    Xa, Xb = final_maps(A), final_maps(B)
    want = {"cka": cka(Xa, Xb), "ridge_error": ridge(Xa, Xb), "ridge_error_ba": ridge(Xb, Xa)}
    for k, v in want.items():
        check(abs(pair[0][k] - v) <= 1e-3 * abs(v), f"{k} {pair[0][k]:.6f} equals numpy's {v:.6f} (1e-3)")

# ---- 5. exact resume after SIGTERM ----
full, cut = f"{W}/p_full", f"{W}/p_cut"
slow = ["--epochs", "3", "--subset-per-class", "100", "--batch", "40", "--samples", "100"]
r = analyze(*slow, "--out", full, A)
check(r.returncode == 0, "uninterrupted probe of 3 epochs exits 0")
p = subprocess.Popen([FEED, "analyze", "--data", args.data, *slow, "--out", cut, A], stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True)
seen = ""
for line in p.stdout:
    seen += line
    if "probe epoch 1/3" in line:
        time.sleep(0.3)  # inside epoch 2
        p.send_signal(signal.SIGTERM)
seen += p.stdout.read() if p.stdout else ""
p.wait(timeout=300)
check(p.returncode == 0 and "stop signal" in seen and not os.path.exists(f"{cut}/probe_teacher_0.h5"),
      f"SIGTERM during epoch 2: exit 0, says how to resume, no final probe ({seen[-300:]})")
r = analyze(*slow, "--out", cut, A)
check(r.returncode == 0 and "resuming the probe after epoch 1" in r.stdout, f"the same command resumes ({r.stdout[-300:]})")
a, b = tensors(f"{full}/probe_nets.h5"), tensors(f"{cut}/probe_nets.h5")
check(same(a, b), "resumed probe: every tensor (weights, momentum, losses) bit-identical to the uninterrupted run")

# ---- 6. bad input ----
bad = [
    (["--out", f"{W}/b1", A, A], "two networks are labelled"),
    (["--samples", "2", "--out", f"{W}/b2", A], "--samples needs a number"),
    (["--out", f"{W}/b3", f"{W}/missing.h5"], "missing.h5"),
    (["--epochs", "1", "--out", full, "--labels", "nets", B], "was made for another network file"),
    (["--epochs", "2", "--subset-per-class", "100", "--batch", "40", "--out", full, A],
     "a probe continues with the same or a larger --epochs"),
]
for extra, needle in bad:
    r = analyze(*extra)
    check(r.returncode == 2 and needle in r.stdout and r.stdout.count("error:") == 1,
          f"{' '.join(os.path.basename(e) for e in extra)}: exit 2, '{needle}' ({r.stdout.strip()[-250:]})")
finish()
