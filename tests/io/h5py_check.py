"""h5py_check.py - reads a checkpoint written by feed_mpi (test_ckpt_h5py) with h5py and checks
what a Python user relies on: string attributes are str, integers are integers, every tensor
has the expected dtype, shape, values and CRC32, and the docs' snippet loads /model into a
PyTorch module with the same state_dict names.

    h5py_check.py FILE PATH:INDEX:DTYPE:DIMS ...     (DIMS like 16x3x3x3, '' for a scalar)
Values follow ckpt_test_util.c's sample_value(index, i). Exit code 0 = all good.
"""
import sys
import zlib

import h5py
import numpy as np

failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)


def sample_values(index, dtype, n):
    base = (np.arange(n, dtype=np.int64) * 7 + index * 13) % 251
    if dtype in ("float32", "float64"):
        return (base - 125) * 0.25
    return base + {"int32": -125, "int64": -125 + 2**40, "uint8": 0, "uint32": 2**31, "uint64": 2**40}[dtype]


def check_attrs(f):
    a = f.attrs
    for key in ("format", "arch", "dataset", "config_ini", "created_by", "created_at", "note"):
        expect(isinstance(a[key], str), f"attribute {key} is {type(a[key]).__name__}, not str")
    expect(a["format"] == "feed_mpi", "format")
    expect(a["arch"] == "resnet20", "arch")
    expect("µ-test ✓" in a["config_ini"] and a["config_ini"].count("\n") == 5, "config_ini verbatim UTF-8")
    for key, want in (("format_version", 1), ("num_classes", 10), ("in_channels", 3), ("epoch", 7),
                      ("step", 2737), ("seed", 42), ("complete", 1), ("world_size", 4)):
        expect(isinstance(a[key], np.integer) and a[key] == want, f"attribute {key} = {a[key]!r}, want {want}")
    expect(f["train"].attrs["best_error"] == 0.0625, "train attribute best_error")
    expect(f["model/fc/weight"].attrs["layout"] == "[out, in]", "tensor attribute layout")


def check_tensor(f, spec):
    path, index, dtype, dims = spec.split(":")
    shape = tuple(int(d) for d in dims.split("x")) if dims else ()
    expect(path in f, f"{path} missing")
    if path not in f:
        return
    ds = f[path]
    expect(ds.dtype == np.dtype(dtype), f"{path}: dtype {ds.dtype}, want {dtype}")
    expect(ds.shape == shape, f"{path}: shape {ds.shape}, want {shape}")
    values = np.asarray(ds[()])
    want = sample_values(int(index), dtype, int(np.prod(shape, dtype=np.int64))).reshape(shape)
    expect(np.array_equal(values, want.astype(dtype)), f"{path}: values differ")
    crc = zlib.crc32(np.ascontiguousarray(values).tobytes())
    expect(int(ds.attrs["crc32"]) == crc, f"{path}: crc32 {int(ds.attrs['crc32']):#x} but the values give {crc:#x}")


def check_torch(path):
    try:
        import torch
        from torch import nn
    except ImportError:
        print("h5py_check.py: torch not installed, skipping the state_dict load")
        return

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(16, 16, 3, bias=False)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.layer1 = nn.Sequential(Block())
            self.fc = nn.Linear(16, 10)

    # the snippet of docs/checkpoint.md
    with h5py.File(path, "r") as f:
        state = {}
        f["model"].visititems(lambda k, v: state.__setitem__(k.replace("/", "."), torch.from_numpy(np.asarray(v[()])))
                              if isinstance(v, h5py.Dataset) else None)
    net = Net()
    net.load_state_dict(state, strict=True)
    print("h5py_check.py: torch load_state_dict(strict=True) of /model ok")
    expect(float(net.fc.weight[0, 0]) == sample_values(7, "float32", 1)[0], "torch fc.weight[0,0]")
    expect(int(net.bn1.num_batches_tracked) == 2**40 - 125 + (5 * 13) % 251, "torch num_batches_tracked")


def main():
    path, specs = sys.argv[1], sys.argv[2:]
    with h5py.File(path, "r") as f:
        check_attrs(f)
        for spec in specs:
            check_tensor(f, spec)
    check_torch(path)
    for what in failures:
        print("h5py_check.py: FAIL", what)
    print(f"h5py_check.py: {len(specs)} tensors, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
