#!/usr/bin/env python3
"""tools/torch2feed.py and tools/feed2torch.py refuse bad inputs with one clear message.

torch2feed: a state_dict of another architecture (missing and unexpected keys listed with
counts), a --classes that does not fit the weights (key and both shapes), a NaN weight (the
key), files that are no state_dict (random bytes, a bare tensor), an existing OUT without
--force (left untouched); each exits 2 with one message and no traceback, and no *.tmp is
left behind, also by a write that fails half-way. feed2torch: an incomplete checkpoint and a tensor whose crc32 does not match.
"""
import glob
import hashlib
import os
import sys

import interop_common  # noqa: F401  (puts tests/train, home of harness.py, on the path)
from harness import check, finish, run, start
import h5py
import numpy as np
import torch


def tool(args, name, *argv):
    """Run tools/<name>; output (stdout and stderr) in .stdout."""
    return run([sys.executable, os.path.join(args.tools, name), *argv])


def refused(label, r, *expect):
    """Exit code 2, one message naming every string of expect, no Python traceback."""
    text = r.stdout
    missing = [e for e in expect if e not in text]
    check(r.returncode == 2, f"{label}: exit code 2 (got {r.returncode})")
    check(not missing and "Traceback" not in text and text.count(".py: ") == 1,
          f"{label}: one message naming {', '.join(expect)}" + ("" if not missing else f"\n{text}"))


def state_of(name, classes=10):
    """A state_dict of build_model(name, 1, classes)."""
    from torch_models import build_model
    torch.manual_seed(0)
    return build_model(name, 1, classes).state_dict()


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def check_torch2feed(args, work):
    """Every refusal of torch2feed."""
    path = lambda name: os.path.join(work, name)  # noqa: E731
    torch.save(state_of("resnet32"), path("resnet32.pt"))
    torch.save(state_of("resnet20"), path("resnet20.pt"))
    r = tool(args, "torch2feed.py", "--arch", "resnet20", path("resnet32.pt"), path("a.h5"))
    refused("resnet32 weights as --arch resnet20", r, "72 unexpected keys", "layer1.3.conv1.weight",
            "another architecture", "--arch")
    r = tool(args, "torch2feed.py", "--arch", "resnet32", path("resnet20.pt"), path("b.h5"))
    refused("resnet20 weights as --arch resnet32", r, "60 missing keys", "layer1.3.conv1.weight")
    r = tool(args, "torch2feed.py", "--arch", "resnet20", "--classes", "100", path("resnet20.pt"), path("c.h5"))
    refused("--classes 100 on 10 classes", r, "fc.weight", "(10, 64)", "(100, 64)")

    nan = state_of("resnet20")
    nan["layer2.0.conv1.weight"][3, 2, 1, 0] = float("nan")
    torch.save({"state_dict": nan}, path("nan.pt"))
    r = tool(args, "torch2feed.py", "--arch", "resnet20", path("nan.pt"), path("d.h5"))
    refused("a NaN weight", r, "layer2.0.conv1.weight", "NaN")

    with open(path("random.pt"), "wb") as f:
        f.write(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    r = tool(args, "torch2feed.py", "--arch", "resnet20", path("random.pt"), path("e.h5"))
    refused("random bytes", r, "random.pt", "torch.save")
    torch.save(torch.zeros(3, 3), path("tensor.pt"))
    r = tool(args, "torch2feed.py", "--arch", "resnet20", path("tensor.pt"), path("f.h5"))
    refused("a bare tensor", r, "tensor.pt", "not a state_dict")

    with open(path("exists.h5"), "wb") as f:
        f.write(b"not yours to replace")
    before = sha(path("exists.h5"))
    r = tool(args, "torch2feed.py", "--arch", "resnet20", path("resnet20.pt"), path("exists.h5"))
    refused("existing OUT without --force", r, "exists.h5", "--force")
    check(sha(path("exists.h5")) == before, "existing OUT: file untouched")
    r = tool(args, "torch2feed.py", "--arch", "resnet20", "--force", path("resnet20.pt"), path("exists.h5"))
    check(r.returncode == 0 and h5py.is_hdf5(path("exists.h5")), "--force replaces it with a checkpoint")
    written = [n for n in "abcdef" if os.path.exists(path(f"{n}.h5"))]
    check(not written, f"no OUT written by a refused conversion {written}")


def check_feed2torch(args, work):
    """feed2torch refuses incomplete and damaged checkpoints."""
    good = os.path.join(work, "exists.h5")  # torch2feed's output of check_torch2feed
    for label, edit, expect in [
        ("incomplete checkpoint", lambda f: f.attrs.__setitem__("complete", np.int64(0)), "complete"),
        ("crc32 mismatch", lambda f: f["model/fc/bias"].__setitem__(0, np.float32(7)), "/model/fc/bias"),
    ]:
        bad = os.path.join(work, label.replace(" ", "_") + ".h5")
        with open(good, "rb") as src, open(bad, "wb") as dst:
            dst.write(src.read())
        with h5py.File(bad, "r+") as f:
            edit(f)
        r = tool(args, "feed2torch.py", bad, os.path.join(work, "out.pt"))
        refused(f"feed2torch, {label}", r, expect, "hint")
    check(not os.path.exists(os.path.join(work, "out.pt")), "feed2torch wrote no OUT.pt for a bad checkpoint")


def check_failed_write(work):
    """A write that fails half-way (a tensor h5py cannot store) leaves neither OUT nor OUT.tmp."""
    from feed_checkpoint import write_checkpoint
    out = os.path.join(work, "half.h5")
    try:
        write_checkpoint(out, {"fc.bias": np.zeros(3, np.float32), "fc.weight": np.array([object()])}, {})
        failed = False
    except Exception:  # noqa: BLE001 - whatever h5py raises
        failed = True
    check(failed and not os.path.exists(out) and not os.path.exists(out + ".tmp"),
          "a write failing half-way raises and leaves neither OUT nor OUT.tmp")


def main():
    args, work, _ = start([("--tools", {"required": True})])
    sys.path.insert(0, args.tools)
    check_torch2feed(args, work)
    check_feed2torch(args, work)
    check_failed_write(work)
    left = glob.glob(os.path.join(work, "*.tmp"))
    check(not left, f"no *.tmp left after the failures {left}")
    finish()


if __name__ == "__main__":
    main()
