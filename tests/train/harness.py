"""harness.py - what the end-to-end training tests share: their command line, the import
check for Debian's Python stack, and a check() that records failures and keeps going."""
import argparse
import sys

try:
    import h5py  # noqa: F401  (imported here so a missing package fails with a hint)
    import numpy  # noqa: F401
except ImportError as e:
    sys.exit(f"FAIL: {e}: install python3-h5py and python3-numpy (./tools/setup.sh does)")

failures = []


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
