#!/usr/bin/python3
"""nn_fixtures.py - well-conditioned variants of tools/torch_fixtures.py's model fixtures.

    /usr/bin/python3 tests/nn/nn_fixtures.py --out DIR [--only NAME[,NAME...]]

Same file format and names as tools/torch_fixtures.py (it calls its write_model_fixture), but
smaller inputs, and the seed is chosen so that (1) no ReLU input comes within the fixture's
margin of its kink during the fixture's forward passes (the first one and the 3 SGD steps),
(2) PyTorch's fp32 result agrees with fp64 within NOISE (the fixture's /fp32_noise) for every
gradient and every weight after the 3 steps and (3) PyTorch's own fp32 gradients and weights
after 3 steps move by less than SENSITIVITY when the initial weights are perturbed by a
relative +-1e-6 (the size of rounding differences between two fp32 implementations).
Every criterion uses PyTorch alone. test_nn_vs_torch then holds these to its strict
tolerances.

Why: two fp32 implementations that sum in different orders differ by about 1e-6 in every
activation. A ReLU input that close to 0 can have opposite signs in the two, and one flipped
element moves a weight gradient by about 1/sqrt(B*H*W) of its size (1% here), far above the
1e-3 gradient tolerance; three SGD steps at lr 0.1 amplify it further. With ~10^5 ReLU inputs
per step such near-ties are likely, so the comparison is only meaningful (and not flaky) when
the fixture has none. PyTorch run twice (fp32, fp64) shows the same effect on the default
fixtures. Exit code 3 with a message if torch, h5py or numpy is missing.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import torch_fixtures as tf  # noqa: E402  (exits 3 with a hint when torch/h5py is missing)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_models as tm  # noqa: E402

MARGIN = 5e-6  # |ReLU input| must stay above this (activations are O(1) after BN)
NOISE = 1e-5   # PyTorch fp32 vs fp64, worst gradient / weight after 3 steps
SENSITIVITY = 5e-5  # PyTorch fp32 moved by a 1e-6 weight perturbation: half the 1e-4 tolerance
# Smaller than the default fixtures: fewer elements, fewer near-ties. ResNeXt-29 is missing on
# purpose: its deep BN backward makes PyTorch's own fp32 gradients differ from fp64 by ~1e-2
# at every seed (see tools/torch_fixtures.py); resnext11_2x4d covers grouped convolutions.
# name: (input shape (B,C,H,W), SGD lr of the 3 steps, smallest allowed |ReLU input|, first
#        seed, whether the 3 steps are conditioned too (else criteria (2), (3) cover gradients)
# ResNet-18's 3 steps run at lr 1e-4. At lr 0.1..1e-3 they are chaotic in PyTorch itself: a
# relative 1e-6 weight perturbation moves conv1.weight (the 7x7 stem, whose gradient passes the
# max pool's near-ties) or layer4's BN running means after 3 steps by 1e-3..5e-2 at every
# seed tried (at lr 0.01 and 1e-3: inputs 32 and 64, batch 4..16, seeds 1000..1003; an earlier
# search at inputs 40..64, batch 2 and 4 covered 400 seeds). At lr 1e-4 the loss still falls
# 2.31 -> 1.49 and conv1/fc weights move by ~1% of their scale, so the 1e-4 tolerance still
# resolves 1% of the update; seeds 1000..1073 fail criterion (3) there, hence the first seed.
# The margin is off for it: ~10^6 ReLU inputs always have some within 5e-6; the sensitivity
# probe (3) measures their effect instead.
FIXTURES = {
    "resnet20_a": ((2, 3, 8, 8), 0.1, MARGIN, 1000, True),
    "resnet20_b": ((2, 3, 8, 8), 0.1, MARGIN, 1000, True),
    "wrn10_2": ((2, 3, 8, 8), 0.1, MARGIN, 1000, True),
    "resnext11_2x4d": ((2, 3, 8, 8), 0.1, MARGIN, 1000, True),
    "resnet18": ((4, 3, 64, 64), 1e-4, 0.0, 1074, True),
}


def min_relu_margin(name, seed):
    """Replays write_model_fixture's random draws and training; smallest |ReLU input|."""
    model_name, _, shape, num_classes, _ = tf.MODEL_FIXTURES[name]
    tf.deterministic(seed)
    model = tm.build_model(model_name, in_channels=shape[1], num_classes=num_classes)
    model.train()
    x = torch.randn(*shape)
    y = torch.randint(0, num_classes, (shape[0],), dtype=torch.int64)
    smallest = [float("inf")]
    real_relu = F.relu

    def relu(t, inplace=False):
        smallest[0] = min(smallest[0], t.detach().abs().min().item())
        return real_relu(t, inplace=inplace)

    F.relu = relu
    try:
        opt = torch.optim.SGD(model.parameters(), **tf.SGD_RECIPE)
        for _ in range(4):  # the fixture's first forward equals step 0; 3 steps + the last forward
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
    finally:
        F.relu = real_relu
    return smallest[0]


def torch_sensitivity(model_name, shape, num_classes, seed, steps=True):
    """Largest relative change of PyTorch's fp32 gradients and (steps) weights after 3 steps
    when the initial weights are perturbed by a relative +-1e-6 (max |a - b| / max |b| per
    tensor)."""
    base = tf.reference_run(model_name, shape, num_classes, seed, torch.float32)
    worst = 0.0
    for perturb in (1e-6, -1e-6):
        r = tf.reference_run(model_name, shape, num_classes, seed, torch.float32, perturb)
        worst = max([worst] + [tf.rel_error(v, base["grads"][k]) for k, v in r["grads"].items()]
                    + [tf.rel_error(v, base["after3"][k]) for k, v in r["after3"].items() if steps])
        if worst > SENSITIVITY:
            break
    return worst


DECONV_CASES = [  # (in, out, kernel, stride, pad, output_padding, groups): the FT paraphraser's layer and more
    (8, 16, 3, 1, 1, 0, 1), (16, 8, 3, 2, 1, 1, 1), (8, 8, 3, 1, 1, 0, 2), (6, 4, 4, 2, 1, 0, 2)]


def write_deconv_fixture(out_dir, seed=31):
    """DIR/deconv.h5: /case<i>/{weight,bias,input,output,grad_weight,grad_bias,grad_input} of
    nn.ConvTranspose2d (PyTorch weight layout (in, out/groups, k, k)) with loss sum(out * R),
    /case<i>/R; attrs in,out,kernel,stride,pad,output_padding,groups, n_cases at the root."""
    import h5py
    tf.deterministic(seed)
    path = os.path.join(out_dir, "deconv.h5")
    with h5py.File(path + ".tmp", "w") as h5:
        h5.attrs["n_cases"] = len(DECONV_CASES)
        for i, (ci, co, k, s, p, op, g) in enumerate(DECONV_CASES):
            m = torch.nn.ConvTranspose2d(ci, co, k, stride=s, padding=p, output_padding=op, groups=g, bias=True)
            x = torch.randn(2, ci, 5, 5, requires_grad=True)
            y = m(x)
            r = torch.randn_like(y)
            (y * r).sum().backward()
            grp = h5.create_group(f"case{i}")
            for name, v in zip(["in", "out", "kernel", "stride", "pad", "output_padding", "groups"],
                               [ci, co, k, s, p, op, g]):
                grp.attrs[name] = v
            for name, t in [("weight", m.weight), ("bias", m.bias), ("input", x), ("output", y), ("R", r),
                            ("grad_weight", m.weight.grad), ("grad_bias", m.bias.grad), ("grad_input", x.grad)]:
                grp.create_dataset(name, data=t.detach().numpy())
    os.replace(path + ".tmp", path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--only")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(FIXTURES)
    os.makedirs(args.out, exist_ok=True)
    import h5py
    print(f"nn_fixtures: wrote {write_deconv_fixture(args.out)}")
    for name in names:
        model_name, attrs, _, classes, _ = tf.MODEL_FIXTURES[name]
        shape, tf.SGD_RECIPE["lr"], margin, first, steps = FIXTURES[name]
        for seed in range(first, first + 100):
            tf.MODEL_FIXTURES[name] = (model_name, attrs, shape, classes, seed)
            m = min_relu_margin(name, seed) if margin > 0 else float("inf")
            if m <= margin:
                continue
            sens = torch_sensitivity(model_name, shape, classes, seed, steps)
            if sens > SENSITIVITY:
                continue
            path = tf.write_model_fixture(args.out, name)
            with h5py.File(path, "r") as h5:
                noise = max(h5.attrs["fp32_noise_grads"], h5.attrs["fp32_noise_after3"] if steps else 0.0)
            if noise <= NOISE:
                print(f"nn_fixtures: wrote {path} (seed {seed}, smallest |ReLU input| "
                      f"{'not checked' if margin <= 0 else f'{m:.2g}'}, "
                      f"fp32 noise {noise:.2g}, sensitivity {sens:.2g})")
                break
            os.remove(path)
        else:
            sys.stderr.write(f"nn_fixtures: error: no seed in {first}..{first + 99} gives a well-conditioned {name}\n"
                             f"  hint: lower MARGIN or the input size in {__file__}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
