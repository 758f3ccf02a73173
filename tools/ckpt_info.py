#!/usr/bin/python3
"""ckpt_info.py - print a feed_mpi checkpoint's metadata and a table of its tensors.

    /usr/bin/python3 tools/ckpt_info.py CHECKPOINT.h5 [...] [--config] [--no-verify] [--group model]

For every tensor: path, dtype, shape, min, max, mean and whether its stored CRC32 matches the
values (the check feed_mpi makes when it opens a checkpoint; see docs/checkpoint.md).
Exit code: 0 if every file is a complete feed_mpi checkpoint whose tensors verify, 1 if any is
damaged or incomplete, 2 if a file cannot be opened at all.
"""
import argparse
import sys
import zlib

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit(f"ckpt_info.py: {e}\n  hint: run it with /usr/bin/python3 (Debian's python3-h5py)")

ROOT_ATTRS = ["format", "format_version", "arch", "dataset", "num_classes", "in_channels",
              "epoch", "step", "seed", "created_by", "created_at", "complete"]


def as_text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def crc32_of(values):
    """CRC-32 (zlib) of the values as little-endian C-order bytes, as feed_mpi stores it."""
    arr = np.ascontiguousarray(values)
    return zlib.crc32(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()) & 0xFFFFFFFF


def tensors(group, prefix=""):
    """(path, dataset) of every dataset below group, in the file's own order."""
    for name, obj in group.items():
        path = f"{prefix}{name}"
        if isinstance(obj, h5py.Dataset):
            yield path, obj
        elif isinstance(obj, h5py.Group):
            yield from tensors(obj, path + "/")


def describe(path, args):
    """Prints one checkpoint; returns 0 (good), 1 (damaged/incomplete)."""
    problems = []
    with h5py.File(path, "r") as f:
        print(f"== {path}")
        attrs = {k: as_text(v) for k, v in f.attrs.items()}
        if attrs.get("format") != "feed_mpi":
            problems.append(f"root attribute format is {attrs.get('format')!r}, not 'feed_mpi'")
        if attrs.get("complete") != 1:
            problems.append("root attribute complete is not 1 (an unfinished write)")
        for key in ROOT_ATTRS:
            print(f"  {key:<15} {attrs.get(key, '(missing)')}")
        extras = [k for k in attrs if k not in ROOT_ATTRS and k != "config_ini"]
        for key in extras:
            print(f"  {key:<15} {attrs[key]}  (extra)")
        ini = attrs.get("config_ini", "")
        if args.config:
            print("  config_ini:\n" + "".join(f"    {line}\n" for line in ini.splitlines()))
        else:
            print(f"  config_ini      {len(ini.splitlines())} lines (--config prints them)")

        start = f[args.group] if args.group else f
        prefix = args.group.strip("/") + "/" if args.group else ""
        rows = []
        for name, ds in tensors(start, prefix):
            values = ds[()]
            arr = np.asarray(values)
            numeric = arr.dtype.kind in "biuf"
            if numeric and arr.size:
                lo, hi, mean = arr.min(), arr.max(), arr.astype(np.float64).mean()
                bound = (lambda v: str(int(v))) if arr.dtype.kind in "biu" else (lambda v: f"{v:.6g}")
                stats = (bound(lo), bound(hi), f"{mean:.6g}")
            else:
                stats = ("-", "-", "-")
            if args.no_verify:
                status = "-"
            elif "crc32" not in ds.attrs:
                status = "NO CRC32"
            elif not numeric:
                status = "?"
            else:
                status = "ok" if crc32_of(arr) == int(ds.attrs["crc32"]) & 0xFFFFFFFF else "CRC MISMATCH"
            if status in ("NO CRC32", "CRC MISMATCH"):
                problems.append(f"tensor {name}: {status}")
            rows.append((name, str(arr.dtype), str(tuple(arr.shape)), *stats, status))

        header = ("tensor", "dtype", "shape", "min", "max", "mean", "crc32")
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
        line = "  " + "  ".join(f"{{:<{w}}}" for w in widths)
        print(line.format(*header))
        for r in rows:
            print(line.format(*r))
        total = sum(np.prod(ds.shape, dtype=np.int64) for _, ds in tensors(start, prefix))
        print(f"  {len(rows)} tensors, {total} values")
    for p in problems:
        print(f"  PROBLEM: {p}")
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--config", action="store_true", help="print the verbatim INI text")
    ap.add_argument("--no-verify", action="store_true", help="skip the CRC32 check")
    ap.add_argument("--group", default="", help="only tensors below this group (e.g. model)")
    args = ap.parse_args()
    worst = 0
    for path in args.checkpoints:
        try:
            worst = max(worst, describe(path, args))
        except (OSError, KeyError) as e:
            print(f"ckpt_info.py: cannot read {path}: {e}", file=sys.stderr)
            worst = 2
    return worst


if __name__ == "__main__":
    sys.exit(main())
