#!/usr/bin/python3
"""torch_bench.py - PyTorch's time for the steps feed_bench measures, on the same machine.

    /usr/bin/python3 tools/torch_bench.py --model resnet56 --classes 100 --batch 128 \\
        --threads 2 [--layout nchw|channels_last|both] [--steps 10] [--warmup 3] \\
        train|forward|pfeed-step [--teachers N]

What is timed (median over --steps steps after --warmup untimed ones):
  train       forward (train-mode BN) + cross-entropy + backward + SGD step (momentum 0.9,
              Nesterov, weight decay 5e-4), gradients set to None before each step
  forward     inference forward in eval mode under torch.inference_mode()
  pfeed-step  one pFEED student step: student forward (train), N NTLs on its final map,
              L = CE + beta * sum_n FEED loss against N fixed random teacher maps (shape of the
              student's own final map), backward through NTLs and student, SGD on all of them
Models come from tools/torch_models.py (CIFAR models at 3x32x32, resnet18/34 at 3x224x224
unless --size says otherwise). Each (what, layout) pair runs in a fresh child process so the
reported peak RSS (ru_maxrss) belongs to that measurement alone. One line per measurement:

  <what> model=<m> batch=<b> threads=<t> layout=<nchw|channels_last> ms_per_step=<x> img_per_s=<y> peak_rss_mb=<z>
(pfeed-step lines end with an extra " teachers=<N>").
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.stderr.write(f"torch_bench.py: error: {e}\n  hint: run with /usr/bin/python3; install python3-torch "
                     "(tools/setup.sh installs it)\n")
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models as tm  # noqa: E402

SGD_RECIPE = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
FEED_BETA = 500.0


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["train", "forward", "pfeed-step"])
    ap.add_argument("--model", default="resnet56", help="torch_models.build_model name (default resnet56)")
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--size", type=int, default=0, help="input height = width (0: 32 CIFAR, 224 ImageNet)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layout", choices=["nchw", "channels_last", "both"], default="both")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (>= 10 recommended)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--teachers", type=int, default=5, help="pfeed-step: number of NTLs / teachers")
    return ap.parse_args(argv)


def input_size(args):
    if args.size:
        return args.size
    return 224 if args.model.startswith(("resnet18", "resnet34")) else 32


def to_layout(t, layout):
    return t.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else t.contiguous()


def make_step(args, layout):
    """Builds model, data and optimizer; returns a function that runs one step."""
    torch.manual_seed(0)
    size = input_size(args)
    model = tm.build_model(args.model, in_channels=args.in_channels, num_classes=args.classes)
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    x = to_layout(torch.randn(args.batch, args.in_channels, size, size), layout)  # (B,C,H,W)
    y = torch.randint(0, args.classes, (args.batch,))

    if args.what == "forward":
        model.eval()

        def forward_step():
            with torch.inference_mode():
                model(x)
        return forward_step

    model.train()
    if args.what == "train":
        opt = torch.optim.SGD(model.parameters(), **SGD_RECIPE)

        def train_step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return train_step

    # pfeed-step: teacher maps have the student's final-map shape (same-architecture teachers).
    with torch.no_grad():
        final = model.forward_feats(x[:1])[1]["final"]
    c, h, w = final.shape[1:]
    ntls = [tm.NTL(c, c) for _ in range(args.teachers)]
    if layout == "channels_last":
        ntls = [n.to(memory_format=torch.channels_last) for n in ntls]
    teacher_maps = [to_layout(F.relu(torch.randn(args.batch, c, h, w)), layout) for _ in ntls]  # (B,C,H,W)
    params = list(model.parameters()) + [p for n in ntls for p in n.parameters()]
    opt = torch.optim.SGD(params, **SGD_RECIPE)

    def pfeed_step():
        opt.zero_grad(set_to_none=True)
        logits, feats = model.forward_feats(x)
        loss = F.cross_entropy(logits, y)
        for ntl, t in zip(ntls, teacher_maps):
            loss = loss + FEED_BETA * tm.feed_loss(ntl(feats["final"]), t)
        loss.backward()
        opt.step()
    return pfeed_step


def measure(args, layout):
    torch.set_num_threads(args.threads)
    step = make_step(args, layout)
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = 1000.0 * statistics.median(times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    extra = f" teachers={args.teachers}" if args.what == "pfeed-step" else ""
    print(f"{args.what} model={args.model} batch={args.batch} threads={args.threads} layout={layout} "
          f"ms_per_step={ms:.2f} img_per_s={args.batch * 1000.0 / ms:.1f} peak_rss_mb={peak_mb:.1f}{extra}", flush=True)


def main(argv):
    args = parse_args(argv)
    if args.steps < 1 or args.batch < 1 or args.threads < 1:
        sys.exit("torch_bench.py: error: --steps, --batch and --threads must be >= 1")
    if args.layout != "both":
        measure(args, args.layout)
        return 0
    rc = 0
    for layout in ("nchw", "channels_last"):  # fresh process each: peak RSS per measurement
        child = [sys.executable, os.path.abspath(__file__)] + [a for a in argv] + ["--layout", layout]
        rc |= subprocess.call(child)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
