#!/usr/bin/python3
"""bf16_reference.py - PyTorch references for the engine's bf16 tests (test_bf16).

    /usr/bin/python3 tests/nn/bf16_reference.py --out DIR

Writes DIR/bf16_<name>.h5 for each model below: a network with random weights and random BN
statistics and affine parameters (so that folding BN into the convolutions matters), one
input batch, and what PyTorch computes from them, in channels_last as a user would run it:

  /weights/<key>     state_dict (float32; num_batches_tracked int64), '.' -> '/'
  /input             (B,C,H,W) float32, N(0,1);   /labels (B,) int32
  /logits_fp32       eval-mode logits, fp32
  /logits_bf16       eval-mode logits under torch.autocast("cpu", dtype=torch.bfloat16)
  /grads_fp32/<key>  train-mode forward + mean cross-entropy, d loss / d parameter, fp32
  /grads_bf16/<key>  the same under autocast (bf16 convolutions and linear layer; BN, the
                     loss and the parameters fp32): PyTorch's own bf16 gradient error
  /grads_eval_fp32/<key>, /grads_eval_bf16/<key>   the same with BN in eval mode (running
                     statistics)
  root attributes    model (str, the feed_mpi model name), batch, in_channels, height,
                     width, num_classes (int64)

Deterministic (fixed seeds, one thread). Exit code 3 with a hint when torch or h5py is missing.
"""
import argparse
import os
import sys

try:
    import h5py
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.stderr.write(f"bf16_reference.py: error: {e}\n  hint: run with /usr/bin/python3 (python3-torch, python3-h5py)\n")
    sys.exit(3)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import torch_models as tm  # noqa: E402

# name: (torch_models name, feed_mpi model name, batch, classes)
MODELS = {
    "resnet20": ("resnet20", "resnet20-b", 16, 10),
    "resnet56": ("resnet56", "resnet56-b", 16, 100),
    "wrn16_2": ("wrn-16-2", "wrn-16-2", 8, 10),
    "resnext29_2x4d": ("resnext29-2x4d-w1", "resnext29-2x4d-w1", 8, 10),
}


def randomise_bn(model, gen):
    """BN statistics and affine parameters away from their initial values: running_var in
    [0.5, 1.5], running_mean and bias N(0, 0.1^2), weight in [0.5, 0.9] (the BN scales of
    the README's trained ResNet-20 teachers are 0.7 on average; scales above 1 make a deep
    random ResNet's gradients chaotic, in fp32 as in bf16)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.weight.copy_(0.5 + 0.4 * torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))


def grads(model, x, y, bf16, train=True):
    model.train(train)
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    F.cross_entropy(logits.float(), y).backward()
    return {k: p.grad.detach().clone() for k, p in model.named_parameters()}


def write(out_dir, name):
    torch_name, feed_name, batch, classes = MODELS[name]
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(7)
    model = tm.build_model(torch_name, in_channels=3, num_classes=classes)
    randomise_bn(model, gen)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, classes, (batch,), generator=gen)
    xc = x.contiguous(memory_format=torch.channels_last)
    model.eval()
    with torch.no_grad():
        logits32 = model(xc).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits16 = model(xc).float()
    g32 = grads(model, xc, y, False)
    model.load_state_dict(state)  # train-mode forwards moved the running statistics
    g16 = grads(model, xc, y, True)
    model.load_state_dict(state)
    e32, e16 = grads(model, xc, y, False, False), grads(model, xc, y, True, False)
    path = os.path.join(out_dir, f"bf16_{name}.h5")
    with h5py.File(path + ".tmp", "w") as h5:
        h5.attrs["model"] = feed_name
        for k, v in dict(batch=batch, in_channels=3, height=32, width=32, num_classes=classes).items():
            h5.attrs[k] = int(v)
        for k, v in state.items():
            h5.create_dataset("weights/" + k.replace(".", "/"), data=v.numpy())
        h5["input"] = x.numpy()
        h5["labels"] = y.numpy().astype("int32")
        h5["logits_fp32"] = logits32.numpy()
        h5["logits_bf16"] = logits16.numpy()
        for tag, g in (("grads_fp32", g32), ("grads_bf16", g16), ("grads_eval_fp32", e32), ("grads_eval_bf16", e16)):
            for k, v in g.items():
                h5.create_dataset(f"{tag}/" + k.replace(".", "/"), data=v.float().contiguous().numpy())
    os.replace(path + ".tmp", path)
    rel = ((logits16 - logits32).norm() / logits32.norm()).item()
    print(f"{path}: PyTorch bf16 vs fp32 logits, relative L2 difference {rel:.3g}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="", help="comma-separated names: " + ", ".join(MODELS))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for name in (args.only.split(",") if args.only else MODELS):
        write(args.out, name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
