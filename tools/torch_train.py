#!/usr/bin/python3
"""torch_train.py - the `scratch` recipe in plain PyTorch, as a baseline for feed_mpi.

    /usr/bin/python3 tools/torch_train.py --data data/fashion_mnist.h5 --arch resnet20-b \
        --epochs 8 --milestones 4,6 --seed 1 --threads 1 [--out model.h5]

Same data file, model definition (tools/torch_models.py), augmentation (zero pad + random crop
+ horizontal flip, then (x/255 - mean)/std with the file's statistics), optimiser (SGD,
momentum 0.9, Nesterov, weight decay 5e-4), schedule (lr x gamma at the milestones) and
batching (shuffle, drop the last partial batch) as feed_mpi's scratch mode. Random numbers
come from torch, so runs are comparable in distribution, not bit for bit. Prints one line
per epoch and a final line `final test_error=... seconds=...`.
"""
import argparse, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch_models import build_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--arch", default="resnet20-b")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--milestones", default="4,6")
    ap.add_argument("--gamma", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--pad", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(a.threads)

    with h5py.File(a.data, "r") as f:
        xtr = torch.from_numpy(f["train/images"][()]).permute(0, 3, 1, 2).contiguous()  # N,C,H,W u8
        ytr = torch.from_numpy(f["train/labels"][()].astype(np.int64))
        xte = torch.from_numpy(f["test/images"][()]).permute(0, 3, 1, 2).contiguous()
        yte = torch.from_numpy(f["test/labels"][()].astype(np.int64))
        mean = torch.tensor(np.asarray(f.attrs["mean"], np.float32)).view(1, -1, 1, 1)
        std = torch.tensor(np.asarray(f.attrs["std"], np.float32)).view(1, -1, 1, 1)
        classes = int(f.attrs["num_classes"])
    n, c, h, w = xtr.shape
    p = a.pad
    padded = F.pad(xtr, (p, p, p, p))  # zero padding of the uint8 pixels, as the loader does
    norm = lambda u8: (u8.float() / 255.0 - mean) / std

    model = build_model(a.arch, c, classes)
    mf = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=mf)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=a.wd)
    milestones = [int(m) for m in a.milestones.split(",") if m]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, a.gamma)
    steps = n // a.batch
    t_start = time.time()
    for epoch in range(a.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(n)
        loss_sum, err = 0.0, 0
        for s in range(steps):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            dy = torch.randint(0, 2 * p + 1, (a.batch,))
            dx = torch.randint(0, 2 * p + 1, (a.batch,))
            flip = torch.rand(a.batch) < 0.5
            crops = torch.stack([padded[i, :, y:y + h, x:x + w] for i, y, x in
                                 zip(idx.tolist(), dy.tolist(), dx.tolist())])
            crops = torch.where(flip.view(-1, 1, 1, 1), crops.flip(3), crops)
            xb = norm(crops).contiguous(memory_format=mf)
            yb = ytr[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss) * a.batch
            err += int((logits.argmax(1) != yb).sum())
        sched.step()
        model.eval()
        te_err, te_loss = 0, 0.0
        with torch.no_grad():
            for i in range(0, len(yte), 500):
                lg = model(norm(xte[i:i + 500]).contiguous(memory_format=mf))
                te_err += int((lg.argmax(1) != yte[i:i + 500]).sum())
                te_loss += float(F.cross_entropy(lg, yte[i:i + 500], reduction="sum"))
        dt = time.time() - t0
        print(f"epoch {epoch + 1}/{a.epochs} train loss {loss_sum / (steps * a.batch):.4f} "
              f"err {100 * err / (steps * a.batch):.2f}% test loss {te_loss / len(yte):.4f} "
              f"err {100 * te_err / len(yte):.2f}% {steps * a.batch / dt:.0f} img/s {dt:.0f}s", flush=True)
    print(f"final arch={a.arch} seed={a.seed} epochs={a.epochs} test_error={te_err / len(yte):.4f} "
          f"seconds={time.time() - t_start:.0f}", flush=True)


if __name__ == "__main__":
    main()
