"""harness.py - what the end-to-end training tests share: their command line, the import
check for Debian's Python stack, and a check() that records failures and keeps going."""
import argparse
import os
import subprocess
import sys

try:
    import h5py  # noqa: F401  (imported here so a missing package fails with a hint)
    import numpy  # noqa: F401
except ImportError as e:
    sys.exit(f"FAIL: {e}: install python3-h5py and python3-numpy (./tools/setup.sh does)")

failures = []


def run(cmd, timeout=600):
    """Run cmd; stdout and stderr together in .stdout."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


def write_ini(folder, name, body):
    """Write body to folder/name and return the path."""
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(body)
    return path


def tensors(path):
    """Every dataset of an HDF5 file by its path: {name: numpy array}."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def same(a, b):
    """Two tensors() dicts hold the same names with bit-identical values."""
    return sorted(a) == sorted(b) and all(numpy.array_equal(a[k], b[k]) for k in a)


def parse_args(extra=None):
    """--feed-mpi, --mpiexec, --data, --work, plus extra [(flag, kwargs), ...]."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--feed-mpi", required=True)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    for flag, kw in extra or []:
        ap.add_argument(flag, **kw)
    return ap.parse_args()


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def finish():
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)
