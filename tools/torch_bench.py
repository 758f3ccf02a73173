#!/usr/bin/python3
"""torch_bench.py - PyTorch's time for the steps feed_bench measures, on the same machine.

    /usr/bin/python3 tools/torch_bench.py --model resnet56 --classes 100 --batch 128 \\
        --threads 2 [--layout nchw|channels_last|both] [--steps 10] [--warmup 3] \\
        train|forward|pfeed-step|kd-step|at-step|ft-step|l1-step [--teachers N]

What is timed (median over --steps steps after --warmup untimed ones):
  train       forward (train-mode BN) + cross-entropy + backward + SGD step (momentum 0.9,
              Nesterov, weight decay 5e-4), gradients set to None before each step
  forward     inference forward in eval mode under torch.inference_mode()
  <m>-step    the student's training step of distillation method <m> with --teachers N
              teachers of the student's architecture whose outputs are given: fixed random
              tensors created once before timing. Timed: zero_grad, student forward (train),
              the losses, backward, SGD (the train recipe) over the student and the method's
              modules; the steps feed_bench's bench_term_step times (default weights):
    pfeed-step  N NTLs on the student's final map, L = CE + 500 * sum_n FEED(NTL_n(x^S), T_n)
                against teacher maps T_n = relu(randn) of the final map's shape
    kd-step     L = 0.1 * CE + 0.9 * T^2 * KL(p || softmax(s/T)) (RepDistiller's DistillKL,
                sum / B) with T = 4 and p = mean_n softmax(t_n / T), t_n = 3 * randn(B, K)
    at-step     L = CE + sum_n sum_s 500 * mean((at(x_s) - Q_ns)^2) over the residual stages
                (layer1..layer3 for the CIFAR models), at(x) = normalize(mean_c x^2), Q_ns a
                fixed unit-norm nonnegative (B, H_s*W_s) map
    ft-step     a translator per teacher (three 3x3 convs C_s->C_s->C_f->C_f, LeakyReLU 0.1,
                C_f = round(0.5 * C_s)) on the final map, L = CE + 500 * sum_n FEED(tr_n(x^S), F_n)
                against factors F_n = relu(randn(B, C_f, H, W))
    l1-step     L = CE + 500 * sum_n FEED(x^S, T_n), teacher maps as in pfeed-step, no modules
Models come from tools/torch_models.py (CIFAR models at 3x32x32, resnet18/34 at 3x224x224
unless --size says otherwise). With --layout channels_last the model, the modules and the
4-D inputs and teacher tensors are channels_last. Each (what, layout) pair runs in a fresh
child process so the reported peak RSS (ru_maxrss) belongs to that measurement alone. One
line per measurement:

  <what> model=<m> batch=<b> threads=<t> layout=<nchw|channels_last> ms_per_step=<x> img_per_s=<y> peak_rss_mb=<z>
(every *-step line ends with an extra " teachers=<N>").
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
FEED_BETA = 500.0    # pfeed, l1 and ft: weight of the FEED loss
KD_T, KD_ALPHA = 4.0, 0.9
AT_BETA = 1000.0     # RepDistiller's AT weight; the loss uses beta / 2
FT_RATE = 0.5        # factor channels C_f = round(rate * C_t)
TERM_STEPS = ("pfeed-step", "kd-step", "at-step", "ft-step", "l1-step")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["train", "forward", *TERM_STEPS])
    ap.add_argument("--model", default="resnet56", help="torch_models.build_model name (default resnet56)")
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--size", type=int, default=0, help="input height = width (0: 32 CIFAR, 224 ImageNet)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layout", choices=["nchw", "channels_last", "both"], default="both")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (>= 10 recommended)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--teachers", type=int, default=5, help="*-step: number of teachers")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: the step runs under torch.autocast('cpu', dtype=torch.bfloat16)")
    return ap.parse_args(argv)


def input_size(args):
    if args.size:
        return args.size
    return 224 if args.model.startswith(("resnet18", "resnet34")) else 32


def to_layout(t, layout):
    return t.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else t.contiguous()


def module_layout(m, layout):
    return m.to(memory_format=torch.channels_last) if layout == "channels_last" else m


# ----------------------------------------------------------------------------- the methods' losses
# Each term_<m>(args, model, x, layout) builds the method's modules and fixed teacher tensors
# and returns (modules, loss) with loss(logits, feats, y) the student's full loss.


def feat_shapes(model, x):
    """{name: (C, H, W)} of the student's stage outputs and final map (probe in eval mode)."""
    model.eval()
    with torch.no_grad():
        feats = model.forward_feats(x[:1])[1]
    model.train()
    return {k: tuple(v.shape[1:]) for k, v in feats.items()}


def teacher_maps(args, shape, layout):
    """N fixed post-ReLU maps (B, *shape) standing in for teacher outputs."""
    return [to_layout(F.relu(torch.randn(args.batch, *shape)), layout) for _ in range(args.teachers)]


def feed_sum(outs, targets):
    """FEED_BETA * sum_n FEED(outs[n], targets[n])."""
    return FEED_BETA * sum(tm.feed_loss(o, t) for o, t in zip(outs, targets))


def term_train(args, model, x, layout):
    return [], lambda logits, feats, y: F.cross_entropy(logits, y)


def term_pfeed(args, model, x, layout):
    c, h, w = feat_shapes(model, x)["final"]
    ntls = [module_layout(tm.NTL(c, c), layout) for _ in range(args.teachers)]
    maps = teacher_maps(args, (c, h, w), layout)  # (B,C,H,W) each

    def loss(logits, feats, y):
        return F.cross_entropy(logits, y) + feed_sum([n(feats["final"]) for n in ntls], maps)
    return ntls, loss


def term_kd(args, model, x, layout):
    t_logits = [3.0 * torch.randn(args.batch, args.classes) for _ in range(args.teachers)]  # (B,K) each

    def loss(logits, feats, y):
        p = tm.kd_soft_targets(t_logits, KD_T)
        return (1.0 - KD_ALPHA) * F.cross_entropy(logits, y) + KD_ALPHA * tm.kd_loss(logits, p, KD_T)
    return [], loss


def term_at(args, model, x, layout):
    shapes = feat_shapes(model, x)
    stages = model.stage_names
    targets = [{s: F.normalize(torch.randn(args.batch, shapes[s][1] * shapes[s][2]).abs(), dim=1) for s in stages}
               for _ in range(args.teachers)]  # (B, H_s*W_s) each

    def loss(logits, feats, y):
        ats = {s: tm.attention(feats[s]) for s in stages}
        return F.cross_entropy(logits, y) + sum(AT_BETA / 2 * (ats[s] - q[s]).pow(2).mean()
                                                for q in targets for s in stages)
    return [], loss


def term_ft(args, model, x, layout):
    c, h, w = feat_shapes(model, x)["final"]
    c_f = round(FT_RATE * c)  # teachers of the student's architecture: C_t = C_s
    translators = [module_layout(tm.Translator(c, c_f), layout) for _ in range(args.teachers)]
    factors = teacher_maps(args, (c_f, h, w), layout)  # (B,C_f,H,W) each

    def loss(logits, feats, y):
        return F.cross_entropy(logits, y) + feed_sum([t(feats["final"]) for t in translators], factors)
    return translators, loss


def term_l1(args, model, x, layout):
    maps = teacher_maps(args, feat_shapes(model, x)["final"], layout)  # (B,C,H,W) each

    def loss(logits, feats, y):
        return F.cross_entropy(logits, y) + FEED_BETA * sum(tm.feed_loss(feats["final"], t) for t in maps)
    return [], loss


TERMS = {"train": term_train, "pfeed-step": term_pfeed, "kd-step": term_kd, "at-step": term_at,
         "ft-step": term_ft, "l1-step": term_l1}


def autocast(args):
    """The one line a PyTorch user adds for bf16 on the CPU (fp32 when --precision fp32)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")


def make_step(args, layout):
    """Builds model, data, the method's modules and teacher tensors, and the optimizer;
    returns a function that runs one step."""
    torch.manual_seed(0)
    size = input_size(args)
    model = module_layout(tm.build_model(args.model, in_channels=args.in_channels, num_classes=args.classes), layout)
    x = to_layout(torch.randn(args.batch, args.in_channels, size, size), layout)  # (B,C,H,W)
    y = torch.randint(0, args.classes, (args.batch,))

    if args.what == "forward":
        model.eval()

        def forward_step():
            with torch.inference_mode(), autocast(args):
                model(x)
        return forward_step

    model.train()
    modules, loss_fn = TERMS[args.what](args, model, x, layout)
    params = list(model.parameters()) + [p for m in modules for p in m.parameters()]
    opt = torch.optim.SGD(params, **SGD_RECIPE)

    def student_step():
        opt.zero_grad(set_to_none=True)
        with autocast(args):
            logits, feats = model.forward_feats(x)
            loss = loss_fn(logits, feats, y)
        loss.backward()
        opt.step()
    return student_step


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
    extra = f" teachers={args.teachers}" if args.what in TERM_STEPS else ""
    print(f"{args.what} model={args.model} batch={args.batch} threads={args.threads} layout={layout} "
          f"precision={args.precision} ms_per_step={ms:.2f} img_per_s={args.batch * 1000.0 / ms:.1f} "
          f"peak_rss_mb={peak_mb:.1f}{extra}", flush=True)


def main(argv):
    args = parse_args(argv)
    if args.steps < 1 or args.batch < 1 or args.threads < 1:
        sys.exit("torch_bench.py: error: --steps, --batch and --threads must be >= 1")
    if args.what in TERM_STEPS and args.teachers < 1:
        sys.exit(f"torch_bench.py: error: {args.what} needs --teachers >= 1")
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
