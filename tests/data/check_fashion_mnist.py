#!/usr/bin/python3
"""Convert the real Fashion-MNIST release with feed_convert and check the file against a
direct reading of the gzip IDX files with numpy: 60000/10000 images, 6000/1000 per class,
identical arrays, mean/std of pixel/255, class names, SHA-256 of the sources.

usage: check_fashion_mnist.py FEED_CONVERT OUT_DIR   (exit 77 = skipped: data not installed)
"""
import gzip
import hashlib
import os
import subprocess
import sys

import h5py
import numpy as np

SRC = "/usr/share/datasets/fashion-mnist"
FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def read_idx(path):
    raw = gzip.open(path, "rb").read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    convert, out_dir = sys.argv[1], sys.argv[2]
    if not all(os.path.exists(os.path.join(SRC, f)) for f in FILES):
        print("SKIP: Fashion-MNIST not installed in %s (Debian package dataset-fashion-mnist)" % SRC)
        return 77
    out = os.path.join(out_dir, "fashion_mnist_real.h5")
    run = subprocess.run([convert, "fashion-mnist", SRC, out, "--force"], capture_output=True, text=True)
    expect(run.returncode == 0, "feed_convert exit code %d: %s" % (run.returncode, run.stderr))
    expect("wrote" in run.stderr, "progress on stderr")

    # The documented three lines.
    with h5py.File(out, "r") as f:
        x, y = f["train/images"][:], f["train/labels"][:]
        xt, yt = f["test/images"][:], f["test/labels"][:]
        attrs = dict(f.attrs)

    ref_x, ref_y = read_idx(os.path.join(SRC, FILES[0])), read_idx(os.path.join(SRC, FILES[1]))
    ref_xt, ref_yt = read_idx(os.path.join(SRC, FILES[2])), read_idx(os.path.join(SRC, FILES[3]))
    expect(x.shape == (60000, 28, 28, 1) and x.dtype == np.uint8, "train images shape %s" % (x.shape,))
    expect(xt.shape == (10000, 28, 28, 1), "test images shape %s" % (xt.shape,))
    expect(y.dtype == np.int32 and y.shape == (60000,), "train labels int32 N")
    expect(np.array_equal(x[..., 0], ref_x), "train images equal the IDX file")
    expect(np.array_equal(xt[..., 0], ref_xt), "test images equal the IDX file")
    expect(np.array_equal(y, ref_y) and np.array_equal(yt, ref_yt), "labels equal the IDX files")
    expect(np.all(np.bincount(y, minlength=10) == 6000), "6000 training images per class")
    expect(np.all(np.bincount(yt, minlength=10) == 1000), "1000 test images per class")

    pixels = ref_x.astype(np.float64) / 255.0
    mean, std = pixels.mean(), pixels.std()
    expect(attrs["mean"].shape == (1,) and abs(attrs["mean"][0] - mean) < 1e-6 * mean,
           "mean %r vs numpy %r" % (attrs["mean"], mean))
    expect(attrs["std"].shape == (1,) and abs(attrs["std"][0] - std) < 1e-6 * std,
           "std %r vs numpy %r" % (attrs["std"], std))
    expect(abs(mean - 0.2860) < 1e-4 and abs(std - 0.3530) < 1e-4, "published Fashion-MNIST statistics")

    expect(attrs["name"] == "fashion-mnist", "name %r" % attrs["name"])
    expect(int(attrs["num_classes"]) == 10, "num_classes")
    expect(list(attrs["class_names"]) == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
           "class_names %r" % list(attrs["class_names"]))
    expect(attrs["format"] == "feed_mpi_dataset" and int(attrs["format_version"]) == 1, "format")
    expect(list(attrs["source_files"]) == FILES, "source_files %r" % list(attrs["source_files"]))
    for name, digest in zip(attrs["source_files"], attrs["source_sha256"]):
        with open(os.path.join(SRC, name), "rb") as fh:
            expect(hashlib.sha256(fh.read()).hexdigest() == digest, "sha256 of %s" % name)
    os.remove(out)
    print("check_fashion_mnist: %d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
