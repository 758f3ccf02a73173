#!/usr/bin/env python3
"""tools/torch2feed.py and tools/feed2torch.py against feed_mpi eval on real Fashion-MNIST.

1. Import: a ResNet-20 trained here in PyTorch, saved with torch.save(state_dict), converted
   by torch2feed: `feed_mpi eval` gives exactly PyTorch's test error count, loss within 1e-4.
2. Export: a student trained by feed_mpi (1 epoch, scratch, a subset) converted by feed2torch:
   the PyTorch module (built and loaded the documented way) gives feed_mpi eval's error count
   and loss; its ONNX file passes onnx.checker, and OpenCV's DNN module predicts the same
   class as PyTorch for every one of the 10,000 test images (logits within 1e-4).
3. Round trips torch2feed -> feed2torch of an option-A ResNet and a WRN with random weights
   and BN statistics give bit-identical state_dicts.
"""
import os
import sys

from interop_common import close, errors_and_loss, feed_eval, load_split, logits_of, train_resnet20
from harness import check, finish, run, start, write_ini
import h5py
import numpy as np
import torch


def tool(args, name, *argv):
    """Run tools/<name> with /usr/bin/python3 (sys.executable); output in .stdout."""
    return run([sys.executable, os.path.join(args.tools, name), *argv])


def check_import(args, work, x, y):
    """Step 1: PyTorch-trained model -> torch2feed -> feed_mpi eval."""
    model = train_resnet20(args.data, args.tools)
    t_err, t_loss = errors_and_loss(logits_of(model, x), y)
    pt, ck = os.path.join(work, "torch_resnet20.pt"), os.path.join(work, "torch_resnet20.h5")
    torch.save(model.state_dict(), pt)
    r = tool(args, "torch2feed.py", "--arch", "resnet20", "--dataset", "fashion-mnist", pt, ck)
    check(r.returncode == 0, "torch2feed exits 0" + ("" if r.returncode == 0 else "\n" + r.stdout))
    with h5py.File(ck, "r") as f:
        a = f.attrs
        check(a["arch"] == "resnet20-b" and a["created_by"] == "torch2feed.py" and a["complete"] == 1
              and a["num_classes"] == 10 and a["in_channels"] == 1,
              f"attributes: arch {a['arch']}, created_by {a['created_by']}, classes/channels inferred")
        nbt = f["model/bn1/num_batches_tracked"]
        check(nbt.shape == () and nbt.dtype == np.int64, f"num_batches_tracked is an int64 scalar ({nbt.dtype}, {nbt.shape})")
    ev, out = feed_eval(args.feed_mpi, args.data, ck)
    check(ev is not None, "feed_mpi eval accepts the converted file" + ("" if ev else "\n" + out))
    if ev:
        check(t_err < 0.5 * len(y), f"the PyTorch model is trained: {t_err}/{len(y)} test errors")
        check(ev["errors"] == t_err, f"import: feed_mpi errors {ev['errors']} vs PyTorch {t_err} (exactly)")
        check(close(ev["loss"], t_loss), f"import: loss feed_mpi {ev['loss']:.6f} vs PyTorch {t_loss:.6f}")


def train_student(args, work, mpirun):
    """A 1-epoch scratch run of feed_mpi on 100 images per class; its checkpoint's path."""
    out = os.path.join(work, "run")
    ini = write_ini(work, "run.ini", f"[run]\nmode = scratch\ndir = {out}\nseed = 5\nthreads = 1\n"
                    f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 100\n[model]\narch = resnet20\n"
                    "[train]\nepochs = 1\nbatch = 50\nlr = 0.05\n")
    r = run(mpirun + ["-np", "1", args.feed_mpi, ini])
    check(r.returncode == 0, "feed_mpi scratch run exits 0" + ("" if r.returncode == 0 else "\n" + r.stdout))
    return os.path.join(out, "teacher_0.h5")


def check_onnx(onnx_path, pt_logits, x):
    """onnx.checker, metadata, and OpenCV DNN vs PyTorch on every test image."""
    import cv2
    import onnx
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    check(True, "onnx.checker accepts the export")
    meta = {p.key: p.value for p in m.metadata_props}
    check("mean" in meta and "std" in meta, f"ONNX metadata: mean {meta.get('mean')}, std {meta.get('std')}")
    net = cv2.dnn.readNetFromONNX(onnx_path)
    outs = []
    for i in range(0, len(x), 500):
        net.setInput(x[i:i + 500].numpy())
        outs.append(net.forward().copy())
    cv_logits = np.concatenate(outs)
    diff = float(np.abs(cv_logits - pt_logits.numpy()).max())
    same = int((cv_logits.argmax(1) == pt_logits.numpy().argmax(1)).sum())
    check(same == len(x), f"OpenCV DNN predicts PyTorch's class for {same}/{len(x)} test images")
    check(diff <= 1e-4, f"OpenCV vs PyTorch logits: max abs diff {diff:.3g} (<= 1e-4)")


def check_export(args, work, mpirun, x, y):
    """Step 2: feed_mpi-trained student -> feed2torch (+ ONNX) -> PyTorch and OpenCV."""
    ck = train_student(args, work, mpirun)
    ev, out = feed_eval(args.feed_mpi, args.data, ck)
    check(ev is not None, "feed_mpi eval of the student" + ("" if ev else "\n" + out))
    pt, onnx_path = os.path.join(work, "student.pt"), os.path.join(work, "student.onnx")
    r = tool(args, "feed2torch.py", ck, pt, "--onnx", onnx_path, "--data", args.data)
    print(r.stdout, end="")
    check(r.returncode == 0, "feed2torch --onnx exits 0")
    if r.returncode or not ev:
        return
    sys.path.insert(0, args.tools)
    from torch_models import build_model
    from feed2torch import load_checkpoint
    model = build_model("resnet20-b", 1, 10)  # the documented way to load OUT.pt
    model.load_state_dict(torch.load(pt))
    model.eval()
    logits = logits_of(model, x)
    t_err, t_loss = errors_and_loss(logits, y)
    check(t_err == ev["errors"], f"export: PyTorch errors {t_err} vs feed_mpi {ev['errors']} (exactly)")
    check(close(t_loss, ev["loss"]), f"export: loss PyTorch {t_loss:.6f} vs feed_mpi {ev['loss']:.6f}")
    direct = load_checkpoint(ck).state_dict()
    check(all(torch.equal(direct[k], v) for k, v in model.state_dict().items()),
          "load_checkpoint(CKPT) gives the weights of OUT.pt")
    check_onnx(onnx_path, logits, x)


def random_model(name, seed):
    """build_model(name, 3, 10) with random BN affine parameters, statistics and counters."""
    from torch_models import build_model
    torch.manual_seed(seed)
    m = build_model(name, 3, 10)
    for bn in (mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)):
        bn.weight.data.normal_()
        bn.bias.data.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.num_batches_tracked.fill_(1234)
    return m


def check_round_trips(args, work):
    """Step 3: torch2feed -> feed2torch keeps every tensor bit for bit (values and dtypes)."""
    sys.path.insert(0, args.tools)
    for k, name in enumerate(["resnet20-a", "wrn-10-1"]):
        state = random_model(name, k).state_dict()
        src, ck, back = (os.path.join(work, f"{name}{ext}") for ext in (".pt", ".h5", ".back.pt"))
        torch.save(state, src)
        r1 = tool(args, "torch2feed.py", "--arch", name, "--size", "32", src, ck)
        r2 = tool(args, "feed2torch.py", ck, back)
        check(r1.returncode == 0 and r2.returncode == 0, f"{name}: torch2feed and feed2torch exit 0"
              + ("" if r1.returncode == r2.returncode == 0 else "\n" + r1.stdout + r2.stdout))
        if r1.returncode or r2.returncode:
            continue
        again = torch.load(back)
        same = list(again) == list(state) and all(
            again[k].dtype == v.dtype and torch.equal(again[k], v) for k, v in state.items())
        check(same, f"{name}: round trip gives a bit-identical state_dict ({len(state)} tensors)")


def main():
    args, work, mpirun = start([("--tools", {"required": True})])
    x, y = load_split(args.data, "test")
    check_import(args, work, x, y)
    check_export(args, work, mpirun, x, y)
    check_round_trips(args, work)
    finish()


if __name__ == "__main__":
    main()
