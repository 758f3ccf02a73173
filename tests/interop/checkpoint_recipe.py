#!/usr/bin/env python3
"""The "Write a checkpoint feed_mpi accepts" recipe of docs/checkpoint.md works as printed.

The python block after that sentence is taken from the doc verbatim and executed with
`torch_model` = a ResNet-20 trained here in PyTorch for a short while (seeded, a Fashion-MNIST
subset: a real model, so equal error counts mean something). `feed_mpi eval --json` on the
file it writes must give exactly PyTorch's error count on the 10,000 test images and the same
loss (1e-4 relative).
"""
import os
import re

from interop_common import close, errors_and_loss, feed_eval, load_split, logits_of, train_resnet20
from harness import check, finish, start

RECIPE_INTRO = "Write a checkpoint feed_mpi accepts"


def recipe_code(doc_path):
    """The first ```python block after RECIPE_INTRO in the doc, verbatim."""
    text = open(doc_path).read()
    at = text.index(RECIPE_INTRO)
    m = re.search(r"```python\n(.*?)```", text[at:], re.S)
    return m.group(1)


def main():
    args, work, _ = start([("--tools", {"required": True})])
    doc = os.path.join(os.path.dirname(os.path.abspath(args.tools)), "docs", "checkpoint.md")
    code = recipe_code(doc)
    check("converted.h5" in code and "torch_model" in code, "the recipe writes converted.h5 from torch_model")

    model = train_resnet20(args.data, args.tools)
    x, y = load_split(args.data, "test")
    t_err, t_loss = errors_and_loss(logits_of(model, x), y)
    check(t_err < 0.5 * len(y), f"the PyTorch model is trained: {t_err}/{len(y)} test errors")

    os.chdir(work)
    exec(compile(code, "docs/checkpoint.md recipe", "exec"), {"torch_model": model})
    ev, out = feed_eval(args.feed_mpi, args.data, os.path.join(work, "converted.h5"))
    check(ev is not None, "feed_mpi eval accepts the recipe's file" + ("" if ev else "\n" + out))
    if ev:
        check(ev["samples"] == len(y) == 10000, f"eval counts all {ev['samples']} test images")
        check(ev["errors"] == t_err, f"errors: feed_mpi {ev['errors']} vs PyTorch {t_err} (exactly)")
        check(close(ev["loss"], t_loss), f"loss: feed_mpi {ev['loss']:.6f} vs PyTorch {t_loss:.6f} (1e-4)")
    finish()


if __name__ == "__main__":
    main()
