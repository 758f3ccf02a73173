"""harness.py - what the end-to-end training tests share: their command line, the import
check for Debian's Python stack, and a check() that records failures and keeps going."""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

try:
    import h5py  # noqa: F401  (imported here so a missing package fails with a hint)
    import numpy  # noqa: F401
except ImportError as e:
    sys.exit(f"FAIL: {e}: install python3-h5py and python3-numpy (./tools/setup.sh does)")

failures = []


def run(cmd, timeout=600):
    """Run cmd; stdout and stderr together in .stdout."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


def _children(pid):
    """Pids whose parent is pid (from /proc: no procps needed)."""
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                kids.append(int(d))
    return kids


def _alive(pid):
    try:
        return "zombie" not in open(f"/proc/{pid}/status").read()
    except OSError:
        return False


def kill_job(p):
    """SIGKILL a job started as Popen(mpirun ..., start_new_session=True): mpirun's process
    group and every rank it launched (Open MPI gives ranks process groups of their own, and an
    orphaned rank runs on for a few seconds), then wait until all are gone: a restart must not
    find the killed run still holding its run folder. Returns mpirun's captured output."""
    ranks = _children(p.pid)
    for kill in [lambda: os.killpg(p.pid, signal.SIGKILL)] + [lambda r=r: os.kill(r, signal.SIGKILL) for r in ranks]:
        try:
            kill()
        except ProcessLookupError:
            pass
    out, _ = p.communicate()
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(r) for r in ranks):
        time.sleep(0.05)
    return out


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


def start(extra=None):
    """parse_args(extra), then an empty --work folder. Returns (args, the work folder, the
    mpirun prefix of every test: oversubscribed, unbound; add "-np", N)."""
    args = parse_args(extra)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    return args, args.work, [args.mpiexec, "--oversubscribe", "--bind-to", "none"]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def finish():
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)
