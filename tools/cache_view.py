#!/usr/bin/env python3
"""Show what a feature cache (run.mode = cache) holds for one training sample and view.

    /usr/bin/python3 tools/cache_view.py runs/cache/teacher_0.h5 [--sample I] [--view V] [--json]

Prints the cache's teacher, data set and settings, then for file sample I (default: the first
cached one) in view V: its crop offset and flip, and each stored output with its shape and
range. The whole reading is the few lines of `load()`: the layout is in docs/cache.md.
"""
import argparse
import json

import h5py
import numpy as np


def as_float32(ds, dtype, index):
    """Rows of a stored output as float32: float32 and float16 read directly; bfloat16 is
    stored as uint16 holding the upper half of a float32."""
    raw = ds[index]
    if dtype == "bf16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32)


def load(path, sample=None, view=0):
    with h5py.File(path, "r") as f:
        a = f.attrs
        samples = f["samples"][()]
        i = int(samples[0] if sample is None else sample)
        row = int(np.searchsorted(samples, i))
        if row >= len(samples) or samples[row] != i:
            raise SystemExit(f"{path}: sample {i} is not cached ({len(samples)} samples)")
        dy, dx, flip = (int(v) for v in f["augment"][view, row])
        outputs = {}
        f.visititems(lambda name, o: outputs.__setitem__(name, as_float32(o, a["dtype"], (view, row)))
                     if isinstance(o, h5py.Dataset) and name not in ("samples", "augment") else None)
        info = {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                for k, v in a.items() if k != "layout"}
        return info, i, row, (dy, dx, flip), outputs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache")
    ap.add_argument("--sample", type=int, help="file index of a training sample (default: the first cached)")
    ap.add_argument("--view", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object (values as lists)")
    args = ap.parse_args()
    info, i, row, (dy, dx, flip), outputs = load(args.cache, args.sample, args.view)
    if args.json:
        print(json.dumps({"info": info, "sample": i, "row": row, "view": args.view, "crop": [dy, dx], "flip": flip,
                          "outputs": {k: v.tolist() for k, v in outputs.items()}}))
        return
    print(f"{args.cache}: teacher {info['teacher']}, {info['views']} views x {info['num_samples']} samples, "
          f"{info['dtype']}, seed {info['seed']}, pad {info['pad']}, complete {info['complete']}")
    print(f"sample {i} (row {row}), view {args.view}: crop offset (dy, dx) = ({dy}, {dx}), flip = {flip}")
    for name, v in outputs.items():
        print(f"  {name:20s} {'x'.join(str(d) for d in v.shape):>10s}  min {v.min():.5g}  max {v.max():.5g}  "
              f"mean {v.mean():.5g}")


if __name__ == "__main__":
    main()
