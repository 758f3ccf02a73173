#!/usr/bin/python3
"""torch_eval.py - evaluate a feed_mpi checkpoint with PyTorch, independently of feed_mpi.

    /usr/bin/python3 tools/torch_eval.py --data D.h5 CHECKPOINT.h5 [--json]

Builds the reference model of tools/torch_models.py named by the checkpoint's `arch`
attribute, loads /model/<key> as its state_dict ('/' -> '.'), normalises the data set's test
split with the file's per-channel mean/std exactly as feed_mpi's loader does, and prints the
test error. Agreement with `feed_mpi eval` proves the checkpoint format.
"""
import argparse, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import h5py
    import numpy as np
    import torch
except ImportError as e:
    sys.exit(f"torch_eval.py: {e}; install python3-torch python3-h5py (./tools/setup.sh does)")
from torch_models import build_model


def load_state(path):
    state = {}
    with h5py.File(path, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                state[name.replace("/", ".")] = torch.from_numpy(np.array(obj[()]))
        f["model"].visititems(visit)
    return attrs, state


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    attrs, state = load_state(a.checkpoint)
    with h5py.File(a.data, "r") as f:
        images = f["test/images"][()]            # N x H x W x C uint8
        labels = f["test/labels"][()].astype(np.int64)
        mean = np.asarray(f.attrs["mean"], dtype=np.float32)
        std = np.asarray(f.attrs["std"], dtype=np.float32)
    arch = str(attrs["arch"])
    model = build_model(arch, int(attrs["in_channels"]), int(attrs["num_classes"]))
    model.load_state_dict(state, strict=True)  # every key, exact shapes
    model.eval()
    # (x/255 - mean) / std in float32, the loader's formula
    x_all = (images.astype(np.float32) / np.float32(255.0) - mean) / std
    x_all = torch.from_numpy(np.ascontiguousarray(x_all.transpose(0, 3, 1, 2)))
    errors, loss_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(labels), a.batch):
            logits = model(x_all[i:i + a.batch])
            y = torch.from_numpy(labels[i:i + a.batch])
            errors += int((logits.argmax(1) != y).sum())
            loss_sum += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
    n = len(labels)
    if a.json:
        print(json.dumps({"path": a.checkpoint, "arch": arch, "samples": n,
                          "errors": errors, "error": errors / n, "loss": loss_sum / n}))
    else:
        print(f"{a.checkpoint}: {arch} test error {100 * errors / n:.2f}% "
              f"({errors}/{n}), loss {loss_sum / n:.4f}")


if __name__ == "__main__":
    main()
