"""h5py_write.py - writes a feed_mpi checkpoint from Python the way docs/checkpoint.md says
(what a converter from a PyTorch model does), for test_ckpt_h5py to read from C.

    h5py_write.py OUT.h5
Tensor values: model/conv1/weight = arange * 0.5 - 100 (float32, 16x1x3x3); model/fc/bias =
arange (float32, 10); model/bn1/num_batches_tracked = 12345 (int64 scalar); train/perm =
arange[::-1] (int64, 6). The file is written without creation order, as h5py does by default.
"""
import sys
import zlib

import h5py
import numpy as np


def put(f, path, values):
    ds = f.create_dataset(path, data=values)
    ds.attrs["crc32"] = np.uint32(zlib.crc32(np.ascontiguousarray(values).tobytes()))


def main():
    with h5py.File(sys.argv[1], "w") as f:
        put(f, "model/conv1/weight", (np.arange(144, dtype=np.float32) * 0.5 - 100).reshape(16, 1, 3, 3))
        put(f, "model/fc/bias", np.arange(10, dtype=np.float32))
        put(f, "model/bn1/num_batches_tracked", np.int64(12345))
        put(f, "train/perm", np.arange(6, dtype=np.int64)[::-1].copy())
        a = f.attrs
        a["format"] = "feed_mpi"
        a["format_version"] = 1
        a["arch"] = "resnet20"
        a["dataset"] = "fashion_mnist"
        a["num_classes"] = 10
        a["in_channels"] = 1
        a["epoch"] = 0
        a["step"] = 0
        a["seed"] = 0
        a["config_ini"] = ""
        a["created_by"] = "h5py_write.py (converted from PyTorch)"
        a["complete"] = 1  # last
    return 0


if __name__ == "__main__":
    sys.exit(main())
