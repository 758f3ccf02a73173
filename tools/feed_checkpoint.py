"""feed_checkpoint.py - write and read feed_mpi checkpoints from Python (docs/checkpoint.md).

    from feed_checkpoint import write_checkpoint, read_checkpoint, canonical_arch

write_checkpoint(path, tensors, attrs, force=False)
    Writes {key: numpy array} under /model (key '.' -> '/'), each with its crc32 attribute,
    the root attributes feed_mpi requires plus `attrs`, and complete=1 last. Atomic like
    feed_mpi's own writer: PATH.tmp, fsync, rename, fsync of the folder; an existing PATH is
    refused unless force, and no PATH.tmp is left behind when anything fails.
read_checkpoint(path) -> (attrs, {key: numpy array})
    Opens a checkpoint the way feed_mpi does: format, format_version, complete == 1, then
    every dataset's crc32. Raises CheckpointError naming the file, the tensor and a hint.
canonical_arch(name) -> the spelling feed_mpi writes ("resnet20" -> "resnet20-b").
parse_size(text) -> (height, width) of "32" or "32x24" (an argparse type).

Only h5py and numpy: the tools that need PyTorch import it themselves.
"""
import argparse
import datetime
import os
import re
import zlib

import h5py
import numpy as np

FORMAT_VERSION = 1
ARCH_HELP = ("architectures: resnet<6n+2>[-a|-b] (resnet20 = resnet20-b), wrn-<depth>-<widen>, "
             "resnext<9m+2>-<c>x<d>d[-w<k>], resnet18, resnet34")


class CheckpointError(Exception):
    """A file that is not a usable feed_mpi checkpoint; str() is the whole message."""


def crc32_of(values):
    """CRC-32 (zlib) of the values as little-endian C-order bytes, as feed_mpi stores it."""
    arr = np.ascontiguousarray(values)
    return zlib.crc32(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()) & 0xFFFFFFFF


def canonical_arch(name):
    """The model name as feed_mpi spells it in `arch` (src/nn/models.c feed_model_name), or
    ValueError (also for a depth the family does not have)."""
    s = name.strip().lower()
    m = re.fullmatch(r"wrn-(\d+)-(\d+)", s)
    if m and (int(m[1]) - 4) % 6 == 0 and int(m[1]) >= 10 and int(m[2]) >= 1:
        return f"wrn-{int(m[1])}-{int(m[2])}"
    m = re.fullmatch(r"resnext(\d+)-(\d+)x(\d+)d(?:-w(\d+))?", s)
    if m and (int(m[1]) - 2) % 9 == 0 and int(m[1]) >= 11 and min(int(m[2]), int(m[3]), int(m[4] or 4)) >= 1:
        widen = int(m[4] or 4)
        return f"resnext{int(m[1])}-{int(m[2])}x{int(m[3])}d" + ("" if widen == 4 else f"-w{widen}")
    if s in ("resnet18", "resnet34"):
        return s
    m = re.fullmatch(r"resnet(\d+)(?:-([ab]))?", s)
    if m and (int(m[1]) - 2) % 6 == 0 and int(m[1]) >= 8:
        return f"resnet{int(m[1])}-{m[2] or 'b'}"
    raise ValueError(f"unknown architecture '{name}'; {ARCH_HELP}")


def parse_size(text):
    """'32' or '32x24' (height x width) -> (h, w)."""
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, 0)
    except ValueError:
        h = w = 0
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"'{text}': give the image size as HW (e.g. 32) or HxW (e.g. 32x24)")
    return h, w


def _root_attrs(attrs):
    """The required root attributes (docs/checkpoint.md) with defaults, updated by attrs."""
    out = {"format": "feed_mpi", "format_version": np.int64(FORMAT_VERSION), "arch": "", "dataset": "",
           "num_classes": np.int64(0), "in_channels": np.int64(0), "epoch": np.int64(0),
           "step": np.int64(0), "seed": np.int64(0), "config_ini": "", "created_by": "feed_checkpoint.py",
           "created_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for k, v in attrs.items():
        out[k] = np.int64(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    return out


def _fsync_path(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(path, tensors, attrs, force=False):
    """tensors: {state_dict key: numpy array} (written under /model, '.' -> '/');
    attrs: root attributes (ints become int64, str stay str). complete=1 is written last."""
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path} exists; give --force to replace it")
    tmp = path + ".tmp"
    try:
        with h5py.File(tmp, "w") as f:
            for key, values in tensors.items():
                values = np.array(values, order="C", copy=False)  # ascontiguousarray makes 0-dim 1-dim
                ds = f.create_dataset("model/" + key.replace(".", "/"), data=values)
                ds.attrs["crc32"] = np.uint32(crc32_of(values))
            for k, v in _root_attrs(attrs).items():
                f.attrs[k] = v
            f.attrs["complete"] = np.int64(1)
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(os.path.dirname(os.path.abspath(path)))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def read_checkpoint(path):
    """(root attributes {name: str/int/array}, {state_dict key: numpy array} of /model), after
    the checks feed_mpi makes on open; CheckpointError otherwise."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CheckpointError(f"{path}: cannot open as HDF5 ({e})\n  hint: is it a feed_mpi checkpoint "
                              "(.h5)? A truncated copy also fails here")
    with f:
        attrs = {k: _text(v) for k, v in f.attrs.items()}
        if attrs.get("format") != "feed_mpi":
            raise CheckpointError(f"{path}: root attribute format is {attrs.get('format')!r}, not 'feed_mpi'\n"
                                  "  hint: a data set file or another program's HDF5 file?")
        if attrs.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: format_version {attrs.get('format_version')!r}; this tool reads "
                                  f"version {FORMAT_VERSION}")
        if attrs.get("complete") != 1:
            raise CheckpointError(f"{path}: root attribute complete is not 1: its writer stopped before "
                                  "finishing it\n  hint: use an older checkpoint")
        for key in ("arch", "num_classes", "in_channels"):
            if key not in attrs:
                raise CheckpointError(f"{path}: lacks the root attribute '{key}'")
        if "model" not in f:
            raise CheckpointError(f"{path}: has no group /model (no network weights)")
        state, bad = {}, []

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            values = obj[()]
            stored = obj.attrs.get("crc32")
            if stored is None or int(stored) != crc32_of(values):
                bad.append(f"/{name} ({'no crc32 attribute' if stored is None else 'crc32 mismatch'})")
            if name.startswith("model/"):
                state[name[len("model/"):].replace("/", ".")] = np.asarray(values)

        f.visititems(visit)
        if bad:
            raise CheckpointError(f"{path}: {len(bad)} tensor(s) fail their checksum: {', '.join(bad[:5])}"
                                  + (" ..." if len(bad) > 5 else "") +
                                  "\n  hint: the file is damaged or was edited without updating crc32 "
                                  "(docs/checkpoint.md)")
    return attrs, state
