#!/usr/bin/env python3
"""bad_inputs.py - the bad-input corpus: hostile but realistic inputs to feed_mpi and
feed_convert, one row of CASES each, run against the real programs on real Fashion-MNIST data.

Every case crafts its input from real files - the fixture data set cut to its first 600
training and 200 test images, and the checkpoints of a 1-epoch scratch run made once at the
start - by damaging a copy (h5py edits, cut or flipped bytes, folders, links, mounts), runs
the command and asserts
  * the exact exit code: 2 bad input, 1 run-time failure, 0 success, -N killed by signal N;
  * a regex on the message (stderr for failures, which must also carry a hint: or usage:
    line): it names the file, key or tensor at fault;
  * that nothing was lost: files the case froze are byte-identical afterwards, no *.tmp is
    left anywhere in the case's folder, plus the case's own checks (the newest good checkpoint
    still loads in `feed_mpi eval`, metrics list every epoch once, a resumed run ends
    bit-identical to an uninterrupted one, ...);
  * no sanitizer report (AddressSanitizer / UndefinedBehaviorSanitizer) in any output.
A case with known_bad describes the correct behaviour that feed_mpi does not show yet: it is
reported as XFAIL and does not fail the run. A known_bad case that passes is reported as XPASS
and fails the run: remove its known_bad.

    bad_inputs.py --feed-mpi BUILD/feed_mpi --mpiexec mpirun --data BUILD/fixtures/fashion_mnist.h5
                  --work DIR [--only REGEX] [--category CAT] [--jobs N] [--list]

Cases needing root (tmpfs mounts, a run as user nobody so that permissions apply) are skipped
without it. feed_convert is taken from the folder of --feed-mpi.
"""
import glob
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import harness  # noqa: E402  (checks that h5py and numpy import)
import h5py  # noqa: E402
import numpy as np  # noqa: E402

CATEGORIES = ("config", "dataset", "checkpoint", "signal", "filesystem", "cli")
SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: \w+Sanitizer|runtime error:")
NOBODY = 65534


class G:
    """What every case shares, set once by prepare()."""
    feed = convert = mpiexec = work = fixture = data = ckpt = run2 = idx = ""
    mpi = []
    env = {}
    ref = {}  # tensors of the uninterrupted reference run of SIGNAL_RUN
    can_mount = False
    nobody_ok = False


# ---- the table ------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    category: str
    story: str                         # one line: what the user did -> what they must see
    setup: Callable                    # setup(ctx): crafts the input, sets ctx.cmd or ctx.action
    code: int                          # exact exit code (-N: killed by signal N)
    message: Optional[str] = None      # regex; <bad> <run> <dir> <cfg> <data> <ckpt> = escaped paths
    keep: Optional[Callable] = None    # keep(ctx, result): the case's "nothing lost" checks
    known_bad: str = ""                # why feed_mpi fails this case today (XFAIL)
    timeout: float = 120
    needs: tuple = ()                  # "mount", "nobody", "convert": skipped when missing


@dataclass
class Result:
    code: Optional[int]
    out: str
    err: str
    seconds: float
    timed_out: bool = False
    cmd: tuple = ()


class Skip(Exception):
    pass


# ---- per-case context -------------------------------------------------------------------------

class Ctx:
    """A case's own folder, its commands and what it must find unchanged."""

    def __init__(self, case):
        self.case = case
        self.dir = os.path.join(G.work, "cases", case.name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.run_dir = self.path("run")
        self.tokens = {"dir": self.dir, "run": self.run_dir, "data": G.data, "ckpt": G.ckpt}
        self.cmd = None
        self.action = None
        self.frozen = {}
        self.failures = []
        self.results = []
        self.mounts = []

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def expect(self, cond, what):
        if not cond:
            self.failures.append(what)
        return bool(cond)

    # -- inputs --
    def ini(self, text=None, name="run.ini", run_dir=None):
        """Write a config (TINY unless text is given; str or bytes) and return its path."""
        body = TINY if text is None else text
        if isinstance(body, str):
            body = body.replace("{run}", run_dir or self.run_dir).replace("{data}", G.data).encode()
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(body)
        self.tokens["cfg"] = p
        return p

    def copy(self, src, name="bad.h5"):
        p = self.path(name)
        shutil.copy(src, p)
        self.tokens["bad"] = p
        return p

    def freeze(self, *paths):
        """Remember the bytes of these files (folders: every file in them, the lock file aside)."""
        for p in paths:
            if os.path.isdir(p) and not os.path.islink(p):
                for root, _, files in os.walk(p):
                    for n in files:
                        if n != ".feed_mpi.lock":
                            self.frozen[os.path.join(root, n)] = digest(os.path.join(root, n))
            else:
                self.frozen[p] = digest(p)

    def check_frozen(self):
        for p, h in self.frozen.items():
            self.expect(digest(p) == h, f"nothing lost: {os.path.relpath(p, self.dir)} changed or vanished")

    def mount_tmpfs(self, where, size):
        if not G.can_mount:
            raise Skip("mount -t tmpfs is not available (needs root)")
        os.makedirs(where, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", where], capture_output=True, text=True)
        if r.returncode:
            raise Skip(f"mount failed: {r.stderr.strip()}")
        self.mounts.append(where)
        return where

    def remount(self, where, options):
        r = subprocess.run(["mount", "-o", f"remount,{options}", where], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"remount {options} failed: {r.stderr}")

    def unmount_all(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        self.mounts = []

    # -- running --
    def start(self, argv, as_nobody=False, stdout=subprocess.PIPE):
        kw = {}
        if as_nobody:
            if not G.nobody_ok:
                raise Skip("cannot run as user nobody here")
            if os.geteuid() == 0:
                kw = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
        p = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, encoding="utf-8", errors="replace", env=G.env,
                             start_new_session=True, cwd=self.dir, **kw)
        p.t0 = time.time()
        return p

    def finish(self, p, timeout=None):
        timeout = timeout or self.case.timeout
        try:
            out, err = p.communicate(timeout=max(1, timeout - (time.time() - p.t0)))
            r = Result(p.returncode, out or "", err or "", time.time() - p.t0, cmd=tuple(p.args))
        except subprocess.TimeoutExpired:
            harness.kill_job(p)
            r = Result(None, "", "", time.time() - p.t0, timed_out=True, cmd=tuple(p.args))
        self.results.append(r)
        return r

    def run(self, argv, timeout=None, as_nobody=False):
        return self.finish(self.start(argv, as_nobody=as_nobody), timeout)

    def wait_for(self, pred, what, timeout=60):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if pred():
                return True
            time.sleep(0.01)
        raise RuntimeError(f"gave up waiting for {what} after {timeout} s")

    def expand(self, pattern):
        """The regex with <token> paths filled in; "\\n  hint: " also admits the "  at FILE:LINE" line
        that feed_mpi prints between a message and its hint."""
        pattern = pattern.replace(r"\n  hint: ", r"\n(?:  at \S+\n)?  hint: ")
        return re.sub(r"<(\w+)>", lambda m: re.escape(self.tokens[m.group(1)]) if m.group(1) in self.tokens
                      else m.group(0), pattern)


def digest(p):
    if os.path.islink(p) and not os.path.exists(p):
        return "link:" + os.readlink(p)
    try:
        with open(p, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        return f"unreadable: {e.strerror}"


# ---- shared checks (the "nothing lost" part) ---------------------------------------------------

def checkpoints(d, prefix="teacher0"):
    return sorted(glob.glob(os.path.join(d, f"{prefix}_e*_s*.h5")))


def loads(ctx, ckpt):
    """feed_mpi eval on ckpt: exit 0 and a finite error."""
    r = ctx.run([G.feed, "eval", "--json", "--data", G.data, ckpt], timeout=120)
    try:
        err = json.loads(r.out)["models"][0]["error"]
    except (ValueError, KeyError, IndexError, TypeError):
        err = None
    return ctx.expect(r.code == 0 and err is not None and 0 <= err <= 1,
                      f"{os.path.relpath(ckpt, ctx.dir)} loads in feed_mpi eval (exit {r.code}: {tail(r.err, 2)})")


def metrics_epochs(ctx, path):
    """Epochs listed in a metrics file, every line checked to be complete JSON."""
    epochs = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                except ValueError:
                    ctx.expect(False, f"{os.path.basename(path)} line {n} is not complete JSON: {line[:80]!r}")
                    continue
                if "event" not in row:
                    epochs.append(row["epoch"])
    except OSError as e:
        ctx.expect(False, f"metrics file {path}: {e.strerror}")
    return epochs


def expect_epochs(ctx, path, want):
    got = metrics_epochs(ctx, path)
    ctx.expect(got == want, f"{os.path.basename(path)} lists epochs {got}, expected {want} (each once)")


def expect_no_checkpoints(ctx, d=None):
    d = d or ctx.run_dir
    found = glob.glob(os.path.join(d, "*.h5")) if os.path.isdir(d) else []
    ctx.expect(not found, f"no checkpoint written (found {[os.path.basename(f) for f in found]})")


def expect_no_run_dir(ctx):
    ctx.expect(not os.path.exists(ctx.run_dir), "run.dir not created for a config that is refused")


def expect_same_as_reference(ctx, final):
    try:
        got = harness.tensors(final)
    except OSError as e:
        ctx.expect(False, f"final checkpoint {os.path.basename(final)} unreadable: {e}")
        return
    differ = sorted(k for k in G.ref if k in got and not np.array_equal(G.ref[k], got[k]))
    ctx.expect(sorted(got) == sorted(G.ref) and not differ,
               f"{os.path.basename(final)} bit-identical to the uninterrupted reference run (differ: {differ[:4]})")


def expect_lock_released(ctx, d=None):
    lock = os.path.join(d or ctx.run_dir, ".feed_mpi.lock")
    ctx.expect(not os.path.exists(lock) or os.path.getsize(lock) == 0, "the lock file is left empty at the end")


def tail(text, n=12):
    lines = [l for l in (text or "").splitlines() if l.strip()]
    return "\n".join(lines[-n:])


# ---- running the table -------------------------------------------------------------------------

def verify(case, ctx, r):
    f = ctx.failures
    if r.timed_out:
        f.append(f"timed out after {case.timeout:.0f} s")
    elif r.code != case.code:
        f.append(f"exit code {r.code}, expected {case.code}")
    text = r.err if case.code != 0 else r.out + r.err
    if case.message and not re.search(ctx.expand(case.message), text, re.M):
        f.append(f"message does not match /{case.message}/")
    if case.message and case.code in (1, 2) and r.code == case.code:  # a message of feed_mpi's own
        ctx.expect(re.search(r"(?m)^(\S+: )?(rank \d+: )?error: ", r.err), "stderr has no 'error:' line")
        ctx.expect(re.search(r"(?m)^\s*(hint|usage): \S", r.err), "stderr has no hint: / usage: line")
    if case.code == 0 and r.code == 0:
        ctx.expect("error:" not in r.err, "a successful run prints no error")
    for res in ctx.results:
        m = SANITIZER.search(res.err + res.out)
        ctx.expect(not m, f"sanitizer report in the output: {m.group(0) if m else ''}")
    left = [os.path.relpath(p, ctx.dir) for p in glob.glob(os.path.join(ctx.dir, "**", "*.tmp"), recursive=True)]
    ctx.expect(not left, f"nothing half-written left: {left}")
    ctx.check_frozen()
    if case.keep:
        case.keep(ctx, r)


def run_case(case):
    ctx = Ctx(case)
    r = Result(None, "", "", 0)
    t0 = time.time()
    try:
        missing = [n for n in case.needs if not {"mount": G.can_mount, "nobody": G.nobody_ok,
                                                  "convert": bool(G.convert)}[n]]
        if missing:
            raise Skip(f"needs {', '.join(missing)}")
        case.setup(ctx)
        r = ctx.action(ctx) if ctx.action else ctx.run(ctx.cmd)
        verify(case, ctx, r)
    except Skip as e:
        ctx.unmount_all()
        return case, "SKIP", [str(e)], r, time.time() - t0
    except Exception:
        ctx.failures.append("the case itself raised:\n" + traceback.format_exc(limit=4))
    finally:
        ctx.unmount_all()
    if case.known_bad:
        status = "XFAIL" if ctx.failures else "XPASS"
    else:
        status = "FAIL" if ctx.failures else "ok"
    return case, status, ctx.failures, r, time.time() - t0


def report(outcomes, seconds):
    by_cat = {c: {} for c in CATEGORIES}
    for case, status, *_ in outcomes:
        by_cat[case.category][status] = by_cat[case.category].get(status, 0) + 1
    print("\nper category:")
    for c, counts in by_cat.items():
        print(f"  {c:11s} " + "  ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    bad = [o for o in outcomes if o[1] in ("FAIL", "XPASS")]
    xfail = [o for o in outcomes if o[1] == "XFAIL"]
    if xfail:
        print(f"\nexpected failures (known_bad, for the maintainer to fix in src/): {len(xfail)}")
        for case, _, fails, r, _ in xfail:
            print(f"  XFAIL {case.name}: {case.known_bad}\n        got exit {r.code}; {fails[0].splitlines()[0]}")
            if r.cmd:
                print(f"        command: {shlex.join(r.cmd)}")
    for case, status, fails, r, _ in bad:
        print(f"\n{status} {case.name} [{case.category}]: {case.story}")
        if status == "XPASS":
            print(f"  passes now: remove known_bad ({case.known_bad})")
        print(f"  expected exit {case.code}" + (f", message /{case.message}/" if case.message else ""))
        print(f"  got exit {r.code}" + (" (timed out)" if r.timed_out else ""))
        if r.cmd:
            print(f"  command: {shlex.join(r.cmd)}")
        for f in fails:
            print("  - " + f.replace("\n", "\n    "))
        if r.err.strip():
            print("  stderr (tail):\n    " + tail(r.err).replace("\n", "\n    "))
    n_ok = sum(1 for o in outcomes if o[1] == "ok")
    print(f"\n{n_ok} passed, {len(xfail)} xfail, {sum(1 for o in outcomes if o[1] == 'SKIP')} skipped, "
          f"{len(bad)} failed, of {len(outcomes)} cases in {seconds:.0f} s")
    return not bad


# ---- inputs -----------------------------------------------------------------------------------

# The tiny run every case starts from (line numbers matter to the config cases): 40 training
# images, 5 steps, 200 test images; well under a second.
TINY = """[run]
mode = scratch
dir = {run}
seed = 3
threads = 1
[data]
path = {data}
pad = 2
subset_per_class = 4
[model]
arch = resnet20
[train]
epochs = 1
batch = 8
[checkpoint]
keep_last = 2
"""
# 25 steps per epoch, 4 epochs: time enough to signal a run between its checkpoints
SIGNAL_RUN = ["data.subset_per_class=20", "train.epochs=4"]
CKPT_NAME = "teacher0_e0001_s00000005.h5"  # the base run's checkpoint


def T(old, new, text=TINY):
    """TINY with one line changed (old must be in it)."""
    assert old in text, old
    return text.replace(old, new, 1)


def crc(ds):
    ds.attrs["crc32"] = np.uint32(zlib.crc32(np.ascontiguousarray(ds[()]).tobytes()))


def h5(edit):
    """A damage(path) that edits the HDF5 file in place with h5py."""
    def damage(path):
        with h5py.File(path, "r+") as f:
            edit(f)
    return damage


def raw(edit):
    """A damage(path) that rewrites the file's bytes: edit(bytes) -> bytes."""
    def damage(path):
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(edit(data))
    return damage


def replace(f, name, data, with_crc=False):
    """Dataset name replaced by data (another dtype or shape)."""
    del f[name]
    ds = f.create_dataset(name, data=data)
    if with_crc:
        crc(ds)
    return ds


def set_tensor(name, value, index=None):
    """A checkpoint edit: tensor name (or one element) set to value, CRC updated to match."""
    def edit(f):
        ds = f[name]
        v = ds[()]
        if index is None:
            v = np.asarray(value, dtype=v.dtype) if np.ndim(v) == 0 else np.full_like(v, value)
        else:
            v.flat[index] = value
        ds[...] = v
        crc(ds)
    return h5(edit)


def set_attr(name, value, obj="/"):
    def edit(f):
        f[obj].attrs[name] = value
    return h5(edit)


def del_attr(name, obj="/"):
    def edit(f):
        del f[obj].attrs[name]
    return h5(edit)


def del_object(name):
    def edit(f):
        del f[name]
    return h5(edit)


def flip_tensor_byte(name, at=5):
    """One bit flipped in a tensor's stored bytes (its CRC no longer matches)."""
    def damage(path):
        with h5py.File(path, "r") as f:
            offset = f[name].id.get_offset()
        with open(path, "r+b") as fh:
            fh.seek(offset + at)
            b = fh.read(1)
            fh.seek(offset + at)
            fh.write(bytes([b[0] ^ 0x40]))
    return damage


def flip_chunk_byte(name):
    """A byte flipped in the middle of a compressed chunk (deflate can no longer read it)."""
    def damage(path):
        with h5py.File(path, "r") as f:
            info = f[name].id.get_chunk_info(0)
        with open(path, "r+b") as fh:
            fh.seek(info.byte_offset + info.size // 2)
            b = fh.read(1)
            fh.seek(info.byte_offset + info.size // 2)
            fh.write(bytes([b[0] ^ 0xff]))
    return damage


def write_text(text):
    def damage(path):
        with open(path, "w") as f:
            f.write(text)
    return damage


def as_folder(path):
    os.remove(path)
    os.makedirs(path)


def as_symlink_loop(path):
    os.remove(path)
    os.symlink(os.path.basename(path), path)


def as_dangling_symlink(path):
    os.remove(path)
    os.symlink("moved-away.h5", path)


def as_missing(path):
    os.remove(path)


def truncate_to(fraction_or_bytes):
    def cut(data):
        n = fraction_or_bytes if isinstance(fraction_or_bytes, int) else int(len(data) * fraction_or_bytes)
        return data[:n]
    return raw(cut)


def padded_to_32(f):
    """The data set's images padded to 32x32 (a CIFAR-sized copy of the same pictures)."""
    for split in ("train", "test"):
        x = f[f"{split}/images"][()]
        replace(f, f"{split}/images", np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))))


def rebuilt_with_h5py(path):
    """The checkpoint rewritten from scratch the way docs/checkpoint.md tells a converter to."""
    tensors, attrs = {}, {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: tensors.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        attrs = dict(f.attrs)
    os.remove(path)
    with h5py.File(path, "w") as f:
        for name, v in tensors.items():
            ds = f.create_dataset(name, data=v)
            crc(ds)
        for k, v in attrs.items():
            if k != "complete":
                f.attrs[k] = v
        f.attrs["complete"] = 1


# ---- case constructors ------------------------------------------------------------------------

def fill(ctx, items):
    return [re.sub(r"\{(\w+)\}", lambda m: {"run": ctx.run_dir, "dir": ctx.dir, "data": G.data, "ckpt": G.ckpt}
                   .get(m.group(1), m.group(0)), a) for a in items]


def config_case(name, story, text, code=2, message=None, overrides=(), known_bad="", keep=None):
    """feed_mpi run.ini [overrides] on a crafted config: refused ones leave no run.dir,
    accepted ones train and write a checkpoint that loads."""
    def setup(ctx):
        cfg = ctx.ini(text(ctx) if callable(text) else text)
        ctx.cmd = [G.feed, cfg] + fill(ctx, overrides)

    def check(ctx, r):
        if code != 0:
            expect_no_run_dir(ctx)
        elif keep is None:
            found = checkpoints(ctx.run_dir)
            if ctx.expect(found, "the run wrote its checkpoint"):
                loads(ctx, found[-1])
        if keep:
            keep(ctx, r)
    return Case(name, "config", story, setup, code, message, check, known_bad)


def dataset_case(name, story, damage, code=2, message=None, known_bad="", check_only=False, timeout=120):
    """feed_mpi run.ini data.path=BAD on a damaged copy of the data set: refused before any
    checkpoint, the file itself never modified."""
    def setup(ctx):
        bad = ctx.copy(G.data)
        damage(bad)
        ctx.cmd = [G.feed] + (["--check"] if check_only else []) + [ctx.ini(), f"data.path={bad}"]
        ctx.freeze(bad)
    return Case(name, "dataset", story, setup, code, message, lambda ctx, r: expect_no_checkpoints(ctx), known_bad,
                timeout=timeout)


def ckpt_case(name, story, damage, code=2, message=None, known_bad="", keep=None):
    """feed_mpi eval on a damaged copy of a real checkpoint: the file is never modified."""
    def setup(ctx):
        bad = ctx.copy(G.ckpt)
        damage(bad)
        ctx.cmd = [G.feed, "eval", "--data", G.data, bad]
        ctx.freeze(bad)
    return Case(name, "checkpoint", story, setup, code, message, keep, known_bad)


def resume_case(name, story, damage, overrides=(), code=2, message=None, known_bad=""):
    """checkpoint.resume=BAD (a damaged copy of the base checkpoint) for a 2-epoch run: refused
    before anything is written, the file untouched."""
    def setup(ctx):
        bad = ctx.copy(G.ckpt)
        damage(bad)
        resume = [] if any(o.startswith("checkpoint.resume=") for o in overrides) else [f"checkpoint.resume={bad}"]
        ctx.cmd = [G.feed, ctx.ini(), "train.epochs=2"] + resume + fill(ctx, overrides)
        ctx.freeze(bad)

    def check(ctx, r):
        if code != 0:
            expect_no_checkpoints(ctx)
    return Case(name, "checkpoint", story, setup, code, message, check, known_bad)


def run_dir_case(name, story, damage, overrides=(), code=2, message=None, known_bad="", keep=None):
    """A copy of a finished 2-epoch run folder (checkpoints of epochs 1 and 2, best, final,
    metrics), damaged, then `feed_mpi run.ini train.epochs=3` in it (resume = auto). A refused
    run leaves every file of the folder byte-identical."""
    def setup(ctx):
        shutil.copytree(G.run2, ctx.run_dir)
        damage(ctx)
        ctx.cmd = [G.feed, ctx.ini(), "train.epochs=3"] + fill(ctx, overrides)
        if code != 0:
            ctx.freeze(ctx.run_dir)
    return Case(name, "checkpoint", story, setup, code, message, keep, known_bad)


def in_run(fn_name, damage):
    """Apply a file damage to one file of the run folder."""
    return lambda ctx: damage(os.path.join(ctx.run_dir, fn_name))


def resumed_and_finished(first_epoch_kept):
    """keep(): the resumed run finished: final model loads, metrics list epochs 1..3 once."""
    def check(ctx, r):
        final = os.path.join(ctx.run_dir, "teacher_0.h5")
        loads(ctx, final)
        expect_epochs(ctx, os.path.join(ctx.run_dir, "teacher0_metrics.jsonl"), [1, 2, 3])
        ctx.expect(f"resumed from {ctx.run_dir}/{first_epoch_kept}" in r.out, f"resumed from {first_epoch_kept}")
    return check


def cli_case(name, story, argv, code=2, message=None, known_bad="", keep=None, prepare=None):
    """A command line; argv items may use {dir} {data} {ckpt} {run}, and {cfg} for TINY."""
    def setup(ctx):
        if prepare:
            prepare(ctx)
        if any("{cfg}" in a for a in argv):
            ctx.ini()
        if argv:
            ctx.cmd = [a.replace("{cfg}", ctx.tokens.get("cfg", "")) for a in fill(ctx, argv)]
            ctx.cmd = [G.feed if a == "FEED" else G.convert if a == "CONVERT" else a for a in ctx.cmd]
    needs = ("convert",) if "CONVERT" in argv else ()
    return Case(name, "cli", story, setup, code, message, keep, known_bad, needs=needs)


# ---- config ----------------------------------------------------------------------------------

def utf16(ctx):
    return TINY.replace("{run}", ctx.run_dir).replace("{data}", G.data).encode("utf-16")


def latin1_comment(ctx):
    return ("# r\xe9sultats de l'\xe9t\xe9\n" + TINY).replace("{run}", ctx.run_dir).replace(
        "{data}", G.data).encode("latin-1")


def non_utf8_value(ctx):
    return T("arch = resnet20", "arch = res\xffnet20").replace("{run}", ctx.run_dir).replace(
        "{data}", G.data).encode("latin-1")


def spaced_dir(ctx):
    return T("dir = {run}", 'dir = "{run} with spaces"')


CONFIG_CASES = [
    config_case("cfg_unknown_key", "typed 'epoch' for 'epochs': file:line, the key and a suggestion",
                T("epochs = 1", "epoch = 1"), 2,
                r"^<cfg>:13: unknown key 'epoch' in section \[train\]\n  hint: did you mean 'epochs'\?"),
    config_case("cfg_unknown_section", "misspelt a section header: file:line and the section it meant",
                T("[train]", "[trian]"), 2, r"^<cfg>:12: unknown section \[trian\]\n  hint: did you mean \[train\]\?"),
    config_case("cfg_key_capitalised", "wrote 'Mode' (keys are lower case): the key and a suggestion",
                T("mode = scratch", "Mode = scratch"), 2,
                r"<cfg>:2: unknown key 'Mode' in section \[run\]\n.*did you mean 'mode'"),
    config_case("cfg_section_capitalised", "wrote [Model]: the section and a suggestion",
                T("[model]", "[Model]"), 2, r"<cfg>:10: unknown section \[Model\]\n.*did you mean \[model\]"),
    config_case("cfg_int_word", "batch = eight: the key, the value, not an integer",
                T("batch = 8", "batch = eight"), 2, r"<cfg>:14: train\.batch = 'eight' is not an integer"),
    config_case("cfg_int_fraction", "epochs = 1.5: not an integer", T("epochs = 1", "epochs = 1.5"), 2,
                r"<cfg>:13: train\.epochs = '1\.5' is not an integer"),
    config_case("cfg_int_hex", "epochs = 0x10: not an integer (no silent 0 or 16)", T("epochs = 1", "epochs = 0x10"), 2,
                r"<cfg>:13: train\.epochs = '0x10' is not an integer"),
    config_case("cfg_int_scientific", "epochs = 1e3: not an integer (no silent 1)", T("epochs = 1", "epochs = 1e3"), 2,
                r"<cfg>:13: train\.epochs = '1e3' is not an integer"),
    config_case("cfg_int_overflow", "seed with 20 digits: not an integer (no wrap-around)",
                T("seed = 3", "seed = 99999999999999999999"), 2,
                r"<cfg>:4: run\.seed = '99999999999999999999' is not an integer"),
    config_case("cfg_negative_batch", "batch = -8: out of range, with the range", T("batch = 8", "batch = -8"), 2,
                r"<cfg>:14: train\.batch = -8 is out of range \[1, 65536\]"),
    config_case("cfg_lr_too_high", "lr = 1000: out of range", T("batch = 8", "batch = 8\nlr = 1000"), 2,
                r"<cfg>:15: train\.lr = 1000 is out of range"),
    config_case("cfg_lr_nan", "lr = nan: not a number", T("batch = 8", "batch = 8\nlr = nan"), 2,
                r"<cfg>:15: train\.lr = 'nan' is not a number"),
    config_case("cfg_bool_word", "flip = perhaps: not true or false, with the accepted words",
                T("pad = 2", "pad = 2\nflip = perhaps"), 2, r"<cfg>:9: data\.flip = 'perhaps' is not true or false"),
    config_case("cfg_enum_typo", "arch = resnet21: the allowed values and the nearest one",
                T("arch = resnet20", "arch = resnet21"), 2,
                r"<cfg>:11: model\.arch = 'resnet21' is not one of: resnet20, .*\n  hint: did you mean 'resnet20'\?"),
    config_case("cfg_enum_accent", "arch = résnet20 (a pasted accent): the value and the nearest one",
                T("arch = resnet20", "arch = r\u00e9snet20"), 2,
                r"<cfg>:11: model\.arch = 'r.+snet20' is not one of.*\n.*did you mean 'resnet20'"),
    config_case("cfg_non_utf8_value", "a Latin-1 byte inside a value: that line and key, exit 2",
                non_utf8_value, 2, r"<cfg>:11: model\.arch = 'res.net20' is not one of"),
    config_case("cfg_non_utf8_comment", "a Latin-1 comment (file saved by an old editor) is fine: trains",
                latin1_comment, 0),
    config_case("cfg_duplicate_key", "batch given twice in [train]: both lines named",
                T("batch = 8", "batch = 8\nbatch = 16"), 2,
                r"<cfg>:15: duplicate key 'batch' in \[train\] \(first set at line 14\)"),
    config_case("cfg_duplicate_key_later_block", "[train] repeated at the end with epochs again: the duplicate named",
                TINY + "[train]\nepochs = 5\n", 2,
                r"<cfg>:18: duplicate key 'epochs' in \[train\] \(first set at line 13\)"),
    config_case("cfg_repeated_section_new_key", "[train] repeated with a new key is fine: trains",
                TINY + "[train]\nlr = 0.05\n", 0),
    config_case("cfg_empty_file", "an empty config: says it has no settings", "", 2, r"<cfg>: the file has no settings"),
    config_case("cfg_only_comments", "a config of comments only: says it has no settings", "# learning-rate study\n; the settings follow\n", 2,
                r"<cfg>: the file has no settings"),
    config_case("cfg_utf16", "config saved as UTF-16 by a Windows editor: binary data at line 1", utf16, 2,
                r"<cfg>:1: line contains a NUL byte\n  hint: is this really an INI text file"),
    config_case("cfg_utf8_bom", "config with a UTF-8 byte-order mark (Windows editor) is fine: trains",
                lambda ctx: b"\xef\xbb\xbf" + TINY.replace("{run}", ctx.run_dir).replace("{data}", G.data).encode(), 0),
    config_case("cfg_crlf", "config with CRLF line ends is fine: trains",
                lambda ctx: TINY.replace("{run}", ctx.run_dir).replace("{data}", G.data).replace("\n", "\r\n").encode(), 0),
    config_case("cfg_cr_only", "config with old-Mac CR line ends: refused, naming the file (nothing trains on defaults)",
                lambda ctx: TINY.replace("{run}", ctx.run_dir).replace("{data}", G.data).replace("\n", "\r").encode(), 2,
                r"<cfg>: (the file has no settings|missing required key 'path')"),
    config_case("cfg_quoted_path_with_spaces", 'dir = "... with spaces": quotes dropped, the folder has the spaces',
                spaced_dir, 0, keep=lambda ctx, r: ctx.expect(checkpoints(ctx.run_dir + " with spaces"),
                                                              "checkpoints in the folder named without the quotes")),
    config_case("cfg_single_quoted_number", "batch = '8' in single quotes is fine: trains",
                T("batch = 8", "batch = '8'"), 0),
    config_case("cfg_unbalanced_quote",
                'dir = "/path (closing quote forgotten): refused naming run.dir, no folder named \'"\'',
                T("dir = {run}", 'dir = "{run}'), 2, r"<cfg>:3: .*run\.dir",
                keep=lambda ctx, r: ctx.expect(not os.path.exists(ctx.path('"')), "no folder named '\"' created")),
    config_case("cfg_inline_comments", "inline ; and # comments after values are fine: trains",
                T("batch = 8", "batch = 8 ; per step").replace("epochs = 1", "epochs = 1 # quick"), 0),
    config_case("cfg_colon_separator", "'epochs: 1' (colon) is fine: trains", T("epochs = 1", "epochs: 1"), 0),
    config_case("cfg_tab_indented", "a tab-indented key is fine: trains", T("batch = 8", "\tbatch = 8"), 0),
    config_case("cfg_line_too_long", "a 5000-character value: the line, its length and the limit",
                T("pad = 2", "pad = 2\nname = " + "x" * 5000), 2,
                r"<cfg>:9: line is 5007 characters long; the limit is 4095"),
    config_case("cfg_path_component_too_long", "data path with a 260-character file name: the key and the OS reason",
                T("path = {data}", "path = /tmp/" + "d" * 260 + ".h5"), 2,
                r"<cfg>:7: data\.path: cannot read '/tmp/d{260}\.h5': File name too long"),
    config_case("cfg_long_path_in_message", "a 400-character data path that does not exist: the message shows all of it",
                T("path = {data}", "path = /tmp/" + "/".join(["deep_project_folder"] * 20) + "/data.h5"), 2,
                r"<cfg>:7: data\.path: cannot read '/tmp/(deep_project_folder/){20}data\.h5': No such file or directory"),
    config_case("cfg_nul_byte", "a NUL byte in a line (binary garbage): the line, binary data found",
                T("batch = 8", "batch = 8\x00"), 2, r"<cfg>:14: line contains a NUL byte"),
    config_case("cfg_escape_sequence", "a pasted terminal colour code in a value: the line and the character",
                T("arch = resnet20", "arch = resnet20\x1b[0m"), 2,
                r"<cfg>:11: line contains control character 0x1b at column 16"),
    config_case("cfg_indented_continuation", "a list continued on an indented line (configparser habit): both lines named",
                T("batch = 8", "batch = 8\nmilestones = 1,\n    2"), 2,
                r"<cfg>:15: train\.milestones = '1,' .*\n.*\n<cfg>:16: cannot parse '2'"),
    config_case("cfg_key_before_section", "a key above the first [section]: that line", "epochs = 1\n" + TINY, 2,
                r"<cfg>:1: key 'epochs' appears before any \[section\]"),
    config_case("cfg_no_equals", "'epochs 1' without '=': cannot parse, the line quoted", T("epochs = 1", "epochs 1"), 2,
                r"<cfg>:13: cannot parse 'epochs 1'"),
    config_case("cfg_unclosed_section", "'[train' without ']': the header named", T("[train]", "[train"), 2,
                r"<cfg>:12: section header without closing '\]'"),
    config_case("cfg_empty_value", "'batch =' with nothing after it: empty value", T("batch = 8", "batch ="), 2,
                r"<cfg>:14: train\.batch has an empty value"),
    config_case("cfg_missing_data_path", "forgot data.path: the required key and where to add it",
                T("path = {data}\n", ""), 2,
                r"<cfg>:6: missing required key 'path' in section \[data\]\n  hint: add 'path = \.\.\.' under \[data\]"),
    config_case("cfg_data_file_missing", "data.path names a file that is not there: the key, the path, the OS reason",
                T("path = {data}", "path = {run}-nope.h5"), 2,
                r"<cfg>:7: data\.path: cannot read '<run>-nope\.h5': No such file or directory"),
    config_case("cfg_several_problems", "three mistakes at once: all three reported in one go",
                T("batch = 8", "batch = x").replace("epochs = 1", "epochs = y").replace("arch = resnet20", "arch = z"), 2,
                r"3 problems in the configuration:\n<cfg>:11: .*\n.*\n<cfg>:13: .*\n.*\n<cfg>:14: "),
    config_case("cfg_milestones_decrease", "milestones = 8,4: must increase", T("batch = 8",
                                                                                "batch = 8\nmilestones = 8,4"), 2,
                r"<cfg>:15: train\.milestones must increase"),
    config_case("cfg_subset_both", "subset_per_class and subset_fraction together: both named",
                T("subset_per_class = 4", "subset_per_class = 4\nsubset_fraction = 0.5"), 2,
                r"data\.subset_per_class and data\.subset_fraction"),
    config_case("cfg_name_escapes_folder", "run.name = ../x (would write outside run.dir): refused", T("seed = 3",
                                                                                                       "seed = 3\nname "
                                                                                                       "= ../x"), 2,
                r"<cfg>:5: run\.name must be"),
    config_case("cfg_wrn_depth", "wrn_depth = 27: depth rule 6n+4 explained",
                T("arch = resnet20", "arch = wrn\nwrn_depth = 27"), 2,
                r"<cfg>:12: model\.wrn_depth = 27: WRN depth must be 6n\+4"),
    config_case("cfg_moved_key", "an old config with [feed] teachers: says where the key moved",
                TINY + "[feed]\nteachers = x.h5\n", 2,
                r"<cfg>:18: unknown key 'teachers' in section \[feed\]\n  hint: it moved: use \[distill\] teachers"),
    config_case("cfg_pfeed_no_teachers", "mode = pfeed without teachers: which key is needed",
                T("mode = scratch", "mode = pfeed"), 2, r"<cfg>:2: run\.mode = pfeed needs distill\.teachers"),
    config_case("cfg_teacher_missing", "a teacher checkpoint that does not exist: the key and the path",
                T("mode = scratch", "mode = pfeed") + "[distill]\nteachers = {run}-gone.h5\n", 2,
                r"<cfg>:18: distill\.teachers: cannot read '<run>-gone\.h5': No such file or directory"),
    config_case("cfg_teacher_listed_twice", "the same teacher listed twice (once via ./): both named as the same file",
                lambda ctx: T("mode = scratch",
                              "mode = pfeed") + f"[distill]\nteachers = {G.ckpt}, {os.path.dirname(G.ckpt)}/./{CKPT_NAME}\n",
                2, r"distill\.teachers lists teacher 1 \(.*\) again as teacher 2 .*the same file"),
    config_case("cfg_pfeed_one_rank", "a pfeed config started without mpirun: how many ranks, the mpirun line",
                lambda ctx: T("mode = scratch", "mode = pfeed") + f"[distill]\nteachers = {G.ckpt}\n", 2,
                r"run\.mode = pfeed needs 2 MPI ranks .*this job has 1\n  hint: mpirun -np 2 feed_mpi <cfg>"),
    config_case("cfg_override_unknown_key", "override train.epoch=2: the override quoted, a suggestion", TINY, 2,
                r"command line: 'train\.epoch=2': unknown key 'epoch' in section \[train\]\n  hint: did you mean 'epochs'\?",
                overrides=["train.epoch=2"]),
    config_case("cfg_override_no_section", "override 'epochs=2' without its section: the form to use", TINY, 2,
                r"command line: 'epochs=2': not a section\.key=value override\n  hint: overrides look like train\.epochs=10",
                overrides=["epochs=2"]),
    config_case("cfg_override_out_of_range", "override train.batch=0: out of range", TINY, 2,
                r"command line: 'train\.batch=0': train\.batch = 0 is out of range", overrides=["train.batch=0"]),
    config_case("cfg_override_twice", "the same override twice: says so", TINY, 2, r"train\.lr is overridden twice",
                overrides=["train.lr=0.1", "train.lr=0.2"]),
    config_case("cfg_override_empty", "override 'train.lr=' with no value: empty value", TINY, 2,
                r"command line: 'train\.lr=': train\.lr has an empty value", overrides=["train.lr="]),
    config_case("cfg_override_fixes_path", "a config with a wrong data.path fixed by an override is fine: trains",
                T("path = {data}", "path = /nonexistent/data.h5"), 0, overrides=["data.path={data}"]),
]


# ---- data sets --------------------------------------------------------------------------------

def labels_as(dtype, offset=0):
    return h5(lambda f: replace(f, "train/labels", f["train/labels"][()].astype(dtype) + offset))


def set_label(split, i, value):
    def edit(f):
        y = f[f"{split}/labels"][()]
        y[i] = value
        f[f"{split}/labels"][...] = y
    return h5(edit)


def sparse_images(n, h=28, w=28, labels=True):
    """/train/images (and labels) declared huge but never written: a tiny file claiming n images."""
    def edit(f):
        del f["train/images"]
        f.create_dataset("train/images", shape=(n, h, w, 1), dtype=np.uint8, chunks=(1, min(h, 256), min(w, 256), 1))
        if labels:
            del f["train/labels"]
            f.create_dataset("train/labels", shape=(n,), dtype=np.int32, chunks=(4096,))
    return h5(edit)


def swap_in_link(f):
    del f["train/images"]
    f["train/images"] = h5py.SoftLink("/test/images")


def group_for_images(f):
    del f["train/images"]
    f.create_group("train/images")


def external_images(f):
    del f["train/images"]
    f["train/images"] = h5py.ExternalLink("/nonexistent/elsewhere.h5", "/train/images")


LAYOUT = r"\n  hint: make data-set files with feed_convert; docs/data.md describes the layout"
DATASET_CASES = [
    dataset_case("ds_images_float32", "images saved as float32 (already divided by 255): must be uint8",
                 h5(lambda f: replace(f, "train/images", f["train/images"][()].astype(np.float32) / 255)), 2,
                 r"'<bad>': /train/images must be uint8" + LAYOUT),
    dataset_case("ds_images_int8", "images saved as signed int8: must be uint8",
                 h5(lambda f: replace(f, "train/images", f["train/images"][()].astype(np.int8))), 2,
                 r"'<bad>': /train/images must be uint8"),
    dataset_case("ds_images_uint16", "16-bit scans as uint16: must be uint8",
                 h5(lambda f: replace(f, "test/images", f["test/images"][()].astype(np.uint16) * 257)), 2,
                 r"'<bad>': /test/images must be uint8"),
    dataset_case("ds_images_nchw", "images in PyTorch's N x C x H x W order: the shape and the expected layout",
                 h5(lambda f: replace(f, "train/images", f["train/images"][()].transpose(0, 3, 1, 2))), 2,
                 r"'<bad>': /train/images has shape 600x1x28x28 \(N >= 1, 1 <= H, W <= 4096, 1 <= C <= 4\)"),
    dataset_case("ds_images_3d", "grey images stored N x H x W (no channel axis): 3 dimensions, expected 4",
                 h5(lambda f: replace(f, "train/images", f["train/images"][()][..., 0])), 2,
                 r"'<bad>': /train/images has 3 dimensions, expected 4 \(N x H x W x C\)"),
    dataset_case("ds_labels_float", "labels stored as float: must be integers", labels_as(np.float32), 2,
                 r"'<bad>': /train/labels must be an integer array"),
    dataset_case("ds_labels_one_hot", "one-hot labels N x 10: 2 dimensions, expected 1",
                 h5(lambda f: replace(f, "train/labels", np.eye(10, dtype=np.int32)[f["train/labels"][()]])), 2,
                 r"'<bad>': /train/labels has 2 dimensions, expected 1 \(N\)"),
    dataset_case("ds_labels_int64_overflow", "int64 labels beyond int32: the element, its stored value and the range",
                 labels_as(np.int64, 1 << 33), 2, r"'<bad>': /train/labels\[0\] = 8589934\d{3} is outside \[0, num_classes = 10\)"),
    dataset_case("ds_label_negative", "one label -1 (an 'unknown' marker): the element and the range",
                 set_label("train", 7, -1), 2, r"'<bad>': /train/labels\[7\] = -1 is outside \[0, num_classes = 10\)"),
    dataset_case("ds_test_label_10", "a test label equal to num_classes (1-based labels): element named",
                 set_label("test", 3, 10), 2, r"'<bad>': /test/labels\[3\] = 10 is outside \[0, num_classes = 10\)"),
    dataset_case("ds_fewer_labels", "one label short: counts of labels and images",
                 h5(lambda f: replace(f, "train/labels", f["train/labels"][()][:-1])), 2,
                 r"'<bad>': /train/labels has 599 labels for 600 images"),
    dataset_case("ds_test_other_size", "test images 32x32, training 28x28: both sizes named",
                 h5(lambda f: replace(f, "test/images", np.zeros((200, 32, 32, 1), np.uint8))), 2,
                 r"'<bad>': /test/images images are 32x32x1, training images 28x28x1"),
    dataset_case("ds_no_test_split", "a file without /test: the missing group", del_object("test"), 2,
                 r"'<bad>': missing group /test"),
    dataset_case("ds_no_train_labels", "a file without /train/labels: the missing dataset", del_object("train/labels"), 2,
                 r"'<bad>': missing dataset /train/labels"),
    dataset_case("ds_num_classes_zero", "num_classes = 0: says so", set_attr("num_classes", np.int32(0)), 2,
                 r"'<bad>': num_classes is 0"),
    dataset_case("ds_num_classes_negative", "num_classes = -3: says so", set_attr("num_classes", np.int32(-3)), 2,
                 r"'<bad>': num_classes is -3"),
    dataset_case("ds_num_classes_huge", "num_classes = 2^31-1 (a corrupt count): refused before it sizes anything",
                 set_attr("num_classes", np.int32(2**31 - 1)), 2, r"'<bad>': 10 class_names for num_classes = 2147483647"),
    dataset_case("ds_num_classes_mismatch", "num_classes = 5 with 10 class names: both counts",
                 set_attr("num_classes", np.int32(5)), 2, r"'<bad>': 10 class_names for num_classes = 5"),
    dataset_case("ds_no_class_names", "class_names attribute missing: which attribute", del_attr("class_names"), 2,
                 r"'<bad>': missing root attribute 'class_names'"),
    dataset_case("ds_std_zero", "std = 0 (a constant image set): mean, std and the rule",
                 set_attr("std", np.array([0], np.float32)), 2,
                 r"'<bad>': channel 0 has mean [0-9.e-]+, std 0 \(both finite, std > 0\)"),
    dataset_case("ds_std_negative", "std negative: the rule", set_attr("std", np.array([-0.35], np.float32)), 2,
                 r"'<bad>': channel 0 has mean .*, std -0\.35 \(both finite, std > 0\)"),
    dataset_case("ds_mean_nan", "mean = NaN: the channel and the rule", set_attr("mean", np.array([np.nan], np.float32)), 2,
                 r"'<bad>': channel 0 has mean nan"),
    dataset_case("ds_mean_rgb", "three means (an RGB recipe) for one channel: the counts",
                 set_attr("mean", np.array([0.49, 0.48, 0.45], np.float32)), 2,
                 r"'<bad>': attribute 'mean' has 3 values, expected 1"),
    dataset_case("ds_mean_string", "mean written as a string: not a number", set_attr("mean", "0.286"), 2,
                 r"'<bad>': attribute 'mean' is not a number"),
    dataset_case("ds_no_std", "std attribute missing: which attribute", del_attr("std"), 2,
                 r"'<bad>': missing root attribute 'std'"),
    dataset_case("ds_future_version", "format_version 7 (written by a newer converter): supported versions",
                 set_attr("format_version", np.int32(7)), 2,
                 r"'<bad>': format_version 7 is not supported \(this build reads 1\.\.1\)"),
    dataset_case("ds_no_name", "name attribute missing: which attribute", del_attr("name"), 2,
                 r"'<bad>': missing root attribute 'name'"),
    dataset_case("ds_name_number", "name stored as a number: not a string", set_attr("name", np.int32(3)), 2,
                 r"'<bad>': attribute 'name' is not a string"),
    dataset_case("ds_zero_images", "an empty training split (0 images): the shape", h5(lambda f: replace(
                 f, "train/images", np.zeros((0, 28, 28, 1), np.uint8))), 2, r"'<bad>': /train/images has shape 0x28x28x1"),
    dataset_case("ds_nine_channels", "9 channels (a multispectral set): the shape and the channel limit",
                 h5(lambda f: replace(f, "train/images", np.zeros((600, 28, 28, 9), np.uint8))), 2,
                 r"'<bad>': /train/images has shape 600x28x28x9 \(N >= 1, 1 <= H, W <= 4096, 1 <= C <= 4\)"),
    dataset_case("ds_sources_mismatch", "source_files and source_sha256 of different lengths: both counts",
                 set_attr("source_files", np.array(["a", "b"], dtype=h5py.string_dtype())), 2,
                 r"'<bad>': 2 source_files but 4 source_sha256"),
    dataset_case("ds_train_links_to_test", "/train/images a soft link to /test/images: label and image counts",
                 h5(swap_in_link), 2, r"'<bad>': /train/labels has 600 labels for 200 images"),
    dataset_case("ds_checkpoint_as_data", "a checkpoint given as data.path: what the file is and what was expected",
                 lambda p: shutil.copy(G.ckpt, p), 2, r"'<bad>': format is 'feed_mpi', expected 'feed_mpi_dataset'"),
    dataset_case("ds_text_file", "a text file named .h5 (a download error page): not an HDF5 file",
                 write_text("<html><body>404 Not Found</body></html>\n"), 2, r"'<bad>' is not an HDF5 file" + LAYOUT),
    dataset_case("ds_empty_file", "an empty .h5 (a failed copy): not an HDF5 file", write_text(""), 2,
                 r"'<bad>' is not an HDF5 file"),
    dataset_case("ds_truncated_half", "half of the file (an interrupted copy): truncated, both sizes, copy again",
                 truncate_to(0.5), 2,
                 r"data set '<bad>' is truncated \(HDF5: truncated file: eof = \d+.*stored_eof = \d+\)\n"
                 r"  hint: the file is incomplete \(an interrupted copy or conversion\?\)"),
    dataset_case("ds_truncated_1k", "only the first kilobyte: truncated", truncate_to(1000), 2,
                 r"data set '<bad>' is truncated"),
    dataset_case("ds_signature_overwritten", "the HDF5 signature overwritten: not an HDF5 file",
                 raw(lambda d: b"NOT_HDF5" + d[8:]), 2, r"'<bad>' is not an HDF5 file"),
    dataset_case("ds_superblock_flip", "a flipped byte in the superblock: cannot open, HDF5's reason",
                 raw(lambda d: d[:20] + bytes([d[20] ^ 0xff]) + d[21:]), 2, r"cannot open HDF5 file '<bad>' \(HDF5: .+\)"),
    dataset_case("ds_chunk_damaged", "a byte flipped inside a compressed image chunk: exit 2 naming file and object",
                 flip_chunk_byte("train/images"), 2, r"^(?!.*HDF5 call).*'<bad>'.*/train/images"),
    dataset_case("ds_images_group", "a group where /train/images should be: exit 2 naming the object",
                 h5(group_for_images), 2, r"^(?!.*HDF5 call).*'<bad>'.*/train/images"),
    dataset_case("ds_images_external_link", "/train/images an external link to a file that is gone: exit 2 naming it",
                 h5(external_images), 2, r"^(?!.*HDF5 call).*'<bad>'.*/train/images"),
    dataset_case("ds_images_huge_sides", "images declared 100000x100000 (corrupt header): refused, docs limit sides to 4096",
                 sparse_images(600, 100000, 100000, labels=False), 2, r"'<bad>'.*/train/images.*4096"),
    dataset_case("ds_images_huge_count", "a 400 KB file declaring 10^9 images: refused before allocating, naming the file",
                 sparse_images(10**9), 2, r"'<bad>': /train/images declares \d+ values but the file does not hold them all"),
    dataset_case("ds_symlink_loop", "data.path a symlink pointing to itself: the OS reason", as_symlink_loop, 2,
                 r"data\.path: cannot read '<bad>': Too many levels of symbolic links"),
    dataset_case("ds_dangling_symlink", "data.path a symlink to a moved file: no such file", as_dangling_symlink, 2,
                 r"data\.path: cannot read '<bad>': No such file or directory"),
    dataset_case("ds_folder", "data.path a folder named .h5: not a regular file", as_folder, 2,
                 r"data\.path: '<bad>' is not a regular file"),
    dataset_case("ds_check_truncated", "--check on a truncated data set: the same message, nothing written",
                 truncate_to(0.5), 2, r"data set '<bad>' is truncated", check_only=True),
]


# feed_convert on IDX files written from the same images (gzip, as distributed)

def idx_setup(damage=None, out_exists=False, extra=()):
    def setup(ctx):
        src = ctx.path("idx")
        shutil.copytree(G.idx, src)
        if damage:
            damage(src)
        out = ctx.path("out.h5")
        ctx.tokens.update(src=src, out=out)
        if out_exists:
            shutil.copy(G.data, out)
            ctx.freeze(out)
        ctx.cmd = [G.convert, "fashion-mnist", src, out] + list(extra)
    return setup


def idx_file(name, edit):
    """Rewrite one gzip'ed IDX file: edit(raw bytes) -> bytes."""
    def damage(src):
        p = os.path.join(src, name)
        with gzip.open(p) as f:
            data = f.read()
        with gzip.open(p, "wb") as f:
            f.write(edit(bytearray(data)))
    return damage


def no_output(ctx, r):
    ctx.expect(not os.path.exists(ctx.tokens["out"]), "no OUT.h5 from a failed conversion")


def converted_and_usable(ctx, r):
    r2 = ctx.run([G.feed, "--check", ctx.ini(), f"data.path={ctx.tokens['out']}"])
    ctx.expect(r2.code == 0 and "ready to run" in r2.out, f"feed_mpi --check accepts the converted file ({tail(r2.err, 3)})")


def convert_case(name, story, setup, code=2, message=None, keep=no_output):
    return Case(name, "dataset", story, setup, code, message, keep, needs=("convert",))


def copy_over(src, dst):
    """One IDX file copied over another (files of a mixed-up download)."""
    return lambda folder: shutil.copy(os.path.join(folder, src), os.path.join(folder, dst))


def put_label(i, v):
    def edit(d):
        d[8 + i] = v
        return d
    return edit


CONVERT_CASES = [
    convert_case("cv_valid_idx", "convert real IDX files: exit 0 and feed_mpi --check accepts the result",
                 idx_setup(), 0, r"wrote <out>", keep=converted_and_usable),
    convert_case("cv_truncated_gz", "a truncated train-images .gz (interrupted download): how much data, download again",
                 idx_setup(lambda s: truncate_to(0.5)(os.path.join(s, "train-images-idx3-ubyte.gz"))), 2,
                 r"'<src>/train-images-idx3-ubyte\.gz': the data ends after \d+ of 470400 bytes.*\n  hint: the file is "
                 r"truncated or corrupt"),
    convert_case("cv_labels_as_images", "the labels file copied over the images file: wrong magic, what was expected",
                 idx_setup(copy_over("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz")),
                 2, r"'<src>/train-images-idx3-ubyte\.gz': wrong magic number 0x00000801, expected 0x00000803"),
    convert_case("cv_label_count_mismatch", "test labels in place of the training labels: both counts",
                 idx_setup(copy_over("t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz")),
                 2,
                 r"'<src>/train-images-idx3-ubyte\.gz' holds 600 images but '<src>/train-labels-idx1-ubyte\.gz' holds "
                 r"200 labels"),
    convert_case("cv_missing_file", "t10k labels missing from the folder: both names tried",
                 idx_setup(lambda s: os.remove(os.path.join(s, "t10k-labels-idx1-ubyte.gz"))), 2,
                 r"missing file: neither '<src>/t10k-labels-idx1-ubyte\.gz' nor '<src>/t10k-labels-idx1-ubyte' exists"),
    convert_case("cv_label_out_of_range", "a label 10 in a 10-class labels file: which label",
                 idx_setup(idx_file("train-labels-idx1-ubyte.gz", put_label(5, 10))), 2,
                 r"'<src>/train-labels-idx1-ubyte\.gz': label 5 is 10, out of range \[0, 10\)"),
    convert_case("cv_extra_bytes", "an IDX file longer than its header says: extra bytes",
                 idx_setup(idx_file("train-labels-idx1-ubyte.gz", lambda d: d + b"xx")), 2,
                 r"'<src>/train-labels-idx1-ubyte\.gz': extra bytes after the 600 data bytes the header announces"),
    convert_case("cv_header_count_too_big", "an images header announcing 601 images for 600: the data ends early",
                 idx_setup(idx_file("train-images-idx3-ubyte.gz", lambda d: d[:4] + struct.pack(">I", 601) + d[8:])), 2,
                 r"'<src>/train-images-idx3-ubyte\.gz': the data ends after 470400 of 471184 bytes"),
    convert_case("cv_corrupt_gzip", "a byte flipped inside the gzip stream: damaged, download again",
                 idx_setup(lambda s: raw(lambda d: d[:len(d) // 2] + bytes([d[len(d) // 2] ^ 0xff]) + d[len(d) // 2 + 1:])(
                     os.path.join(s, "train-images-idx3-ubyte.gz"))), 2,
                 r"'<src>/train-images-idx3-ubyte\.gz': .*\n  hint: the file is truncated or corrupt"),
    convert_case("cv_test_other_size", "test images 32x32 next to 28x28 training images: both sizes",
                 idx_setup(idx_file("t10k-images-idx3-ubyte.gz", lambda d: d[:8] + struct.pack(">II", 32,
                                                                                               32) + bytes(200 * 1024))), 2,
                 r"'<src>/t10k-images-idx3-ubyte\.gz' holds 32x32 images, the training set 28x28"),
    convert_case("cv_output_exists", "OUT.h5 already exists, no --force: refused, the old file untouched",
                 idx_setup(out_exists=True), 2, r"'<out>' already exists\n  hint: pass --force", keep=None),
]


# ---- checkpoints ------------------------------------------------------------------------------

def add_dataset(name, data, with_crc=True):
    def edit(f):
        ds = f.create_dataset(name, data=data)
        if with_crc:
            crc(ds)
    return h5(edit)


def torch_export(path):
    """What a user's own export of a state_dict looks like: tensors only, no attributes."""
    with h5py.File(G.ckpt, "r") as src:
        model = {}
        src["model"].visititems(lambda n, o: model.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    os.remove(path)
    with h5py.File(path, "w") as f:
        for k, v in model.items():
            f.create_dataset("model/" + k, data=v)


def also_bad(ctx):
    """eval GOOD --also BAD: the damaged one named, the good one untouched."""
    good = ctx.copy(G.ckpt, "good.h5")
    bad = ctx.copy(G.ckpt, "bad.h5")
    flip_tensor_byte("model/fc/weight")(bad)
    ctx.freeze(good, bad)
    ctx.cmd = [G.feed, "eval", "--data", G.data, good, "--also", bad]


def second_of_three_bad(ctx):
    good = ctx.copy(G.ckpt, "good.h5")
    bad = ctx.copy(G.ckpt, "bad.h5")
    set_attr("complete", np.int64(0))(bad)
    ctx.freeze(good, bad)
    ctx.cmd = [G.feed, "eval", "--data", G.data, good, bad, good]


DAMAGED = r"\n  hint: the file changed after it was written .*use an older checkpoint"
CHECKPOINT_CASES = [
    ckpt_case("ck_bit_flip", "one bit flipped in a stored weight (bad disk/copy): corrupt, tensor and both CRCs",
              flip_tensor_byte("model/conv1/weight"), 2,
              r"checkpoint '<bad>' is corrupt: tensor 'model/conv1/weight' \(\[16, 1, 3, 3\] float32\) has CRC32 "
              r"0x[0-9a-f]{8} "
              r"but 0x[0-9a-f]{8} was stored when it was written" + DAMAGED),
    ckpt_case("ck_crc_edited", "a weight edited in h5py without updating its crc32: corrupt, tensor named",
              set_attr("crc32", np.uint32(123), "model/layer3/2/bn2/weight"), 2,
              r"checkpoint '<bad>' is corrupt: tensor 'model/layer3/2/bn2/weight' .* but 0x0000007b was stored"),
    ckpt_case("ck_crc_missing", "a tensor without its crc32 attribute: the tensor and how to add it",
              del_attr("crc32", "model/fc/bias"), 2,
              r"checkpoint '<bad>': tensor 'model/fc/bias' has no 'crc32' attribute\n  hint: .*zlib\.crc32"),
    ckpt_case("ck_crc_string", "crc32 stored as a string by a converter: not an integer crc32",
              set_attr("crc32", "0x1234", "model/fc/bias"), 2,
              r"checkpoint '<bad>': tensor 'model/fc/bias' has no integer 'crc32' attribute"),
    ckpt_case("ck_crc_int32_ok", "a converter that stored the crc32 as (negative) int32: accepted, loads",
              h5(lambda f: [f[k].attrs.__setitem__("crc32", np.int32(np.uint32(f[k].attrs["crc32"]).astype(np.int32)))
                            for k in ("model/conv1/weight", "model/fc/weight")]), 0, r"bad\.h5 +resnet20-b"),
    ckpt_case("ck_truncated_half", "half a checkpoint (copy interrupted): cannot be opened, sizes, truncated",
              truncate_to(0.5), 2, r"checkpoint '<bad>' \(\d+ bytes\) cannot be opened by HDF5: .*truncated file"),
    ckpt_case("ck_truncated_4k", "only the first 4 KB: cannot be opened", truncate_to(4096), 2,
              r"checkpoint '<bad>' \(4096 bytes\) cannot be opened by HDF5"),
    ckpt_case("ck_empty_file", "an empty checkpoint file: not HDF5, 0 bytes", write_text(""), 2,
              r"checkpoint '<bad>' is not an HDF5 file \(0 bytes, no HDF5 signature\)"),
    ckpt_case("ck_text_file", "a text file named .h5 (an scp error message): not HDF5",
              write_text("scp: /runs/teacher_0.h5: No such file or directory\n"), 2,
              r"checkpoint '<bad>' is not an HDF5 file \(\d+ bytes"),
    ckpt_case("ck_folder", "a folder named .h5: not a regular file", as_folder, 2,
              r"checkpoint '<bad>' is not a regular file"),
    ckpt_case("ck_symlink_loop", "a symlink that points to itself: the OS reason", as_symlink_loop, 2,
              r"cannot open checkpoint '<bad>': Too many levels of symbolic links"),
    ckpt_case("ck_dangling_symlink", "a symlink to a deleted checkpoint: no such file", as_dangling_symlink, 2,
              r"cannot open checkpoint '<bad>': No such file or directory"),
    ckpt_case("ck_missing", "a checkpoint path with a typo: no such file, what a run folder holds", as_missing, 2,
              r"cannot open checkpoint '<bad>': No such file or directory\n  hint: check the path"),
    ckpt_case("ck_incomplete", "complete = 0 (writer stopped): incomplete", set_attr("complete", np.int64(0)), 2,
              r"checkpoint '<bad>' is incomplete: root attribute 'complete' is not 1"),
    ckpt_case("ck_complete_missing", "no 'complete' attribute: incomplete, missing", del_attr("complete"), 2,
              r"checkpoint '<bad>' is incomplete: root attribute 'complete' is missing"),
    ckpt_case("ck_version_2", "format_version 2 (a newer feed_mpi): which versions, use a newer feed_mpi",
              set_attr("format_version", np.int64(2)), 2,
              r"checkpoint '<bad>' has format_version 2; this feed_mpi reads version 1\n  hint: use a newer feed_mpi"),
    ckpt_case("ck_version_0", "format_version 0: convert with the feed_mpi that wrote it", set_attr("format_version",
                                                                                                    np.int64(0)), 2,
              r"checkpoint '<bad>' has format_version 0.*\n  hint: convert it with the feed_mpi that wrote it"),
    ckpt_case("ck_format_pytorch", "format = 'pytorch': an HDF5 file but not a feed_mpi checkpoint",
              set_attr("format", "pytorch"), 2,
              r"'<bad>' is an HDF5 file but not a feed_mpi checkpoint: root attribute 'format' is 'pytorch'"),
    ckpt_case("ck_format_missing", "the format attribute deleted: format is missing", del_attr("format"), 2,
              r"'<bad>' is an HDF5 file but not a feed_mpi checkpoint: root attribute 'format' is missing"),
    ckpt_case("ck_format_number", "format stored as a number: not a string", set_attr("format", np.int64(1)), 2,
              r"root attribute 'format' is not a string"),
    ckpt_case("ck_state_dict_export",
              "a user's own h5py export of the state_dict (no attributes): not a feed_mpi checkpoint",
              torch_export, 2, r"'<bad>' is an HDF5 file but not a feed_mpi checkpoint: root attribute 'format' is missing"),
    ckpt_case("ck_data_set_as_checkpoint", "the data set file given as a checkpoint: what it is",
              lambda p: shutil.copy(G.data, p), 2, r"root attribute 'format' is 'feed_mpi_dataset' \(expected 'feed_mpi'\)"),
    ckpt_case("ck_no_arch", "arch attribute missing: which attribute", del_attr("arch"), 2,
              r"checkpoint '<bad>' lacks the string root attribute 'arch'"),
    ckpt_case("ck_epoch_string", "epoch stored as a string: lacks the integer attribute", set_attr("epoch", "one"), 2,
              r"checkpoint '<bad>' lacks the integer root attribute 'epoch'"),
    ckpt_case("ck_no_seed", "seed attribute missing: which attribute", del_attr("seed"), 2,
              r"checkpoint '<bad>' lacks the integer root attribute 'seed'"),
    ckpt_case("ck_weight_float64", "a weight saved as float64 (CRC right): both dtypes",
              h5(lambda f: replace(f, "model/conv1/weight", f["model/conv1/weight"][()].astype(np.float64), True)), 2,
              r"checkpoint '<bad>': tensor 'model/conv1/weight' is \[16, 1, 3, 3\] float64 but \[16, 1, 3, 3\] float32 "
              r"is expected"),
    ckpt_case("ck_weight_float16", "a weight saved as float16: a type feed_mpi does not read, tensor named",
              h5(lambda f: replace(f, "model/conv1/weight", f["model/conv1/weight"][()].astype(np.float16), True)), 2,
              r"checkpoint '<bad>': dataset 'model/conv1/weight' has a type or shape feed_mpi does not read"),
    ckpt_case("ck_weight_shape", "a conv weight with 8 filters instead of 16: both shapes",
              h5(lambda f: replace(f, "model/conv1/weight", f["model/conv1/weight"][()][:8], True)), 2,
              r"tensor 'model/conv1/weight' is \[8, 1, 3, 3\] float32 but \[16, 1, 3, 3\] float32 is expected"),
    ckpt_case("ck_fc_transposed", "the fc weight transposed (Keras layout): both shapes",
              h5(lambda f: replace(f, "model/fc/weight", f["model/fc/weight"][()].T.copy(), True)), 2,
              r"tensor 'model/fc/weight' is \[64, 10\] float32 but \[10, 64\] float32 is expected"),
    ckpt_case("ck_missing_tensor", "model/fc/bias deleted: which tensor", del_object("model/fc/bias"), 2,
              r"checkpoint '<bad>' has no tensor 'model/fc/bias'"),
    ckpt_case("ck_nan_weight", "a NaN weight with a matching CRC (saved by a diverged tool): tensor and element",
              set_tensor("model/layer2/1/conv1/weight", np.nan, 5), 2,
              r"checkpoint '<bad>': tensor 'model/layer2/1/conv1/weight' holds nan at element 5"),
    ckpt_case("ck_inf_running_var", "an Inf BN running_var: tensor and element", set_tensor("model/bn1/running_var",
                                                                                            np.inf, 0), 2,
              r"checkpoint '<bad>': tensor 'model/bn1/running_var' holds inf at element 0"),
    ckpt_case("ck_string_dataset", "a string dataset (notes) inside /model: a type feed_mpi does not read",
              add_dataset("model/notes", np.array([b"trained on my laptop"]), with_crc=False), 2,
              r"dataset 'model/notes' has a type or shape feed_mpi does not read"),
    ckpt_case("ck_complex_dataset", "a complex64 dataset: a type feed_mpi does not read",
              add_dataset("model/spectrum", np.zeros(3, np.complex64), with_crc=False), 2,
              r"dataset 'model/spectrum' has a type or shape"),
    ckpt_case("ck_rank9_dataset", "a 9-dimensional tensor: a shape feed_mpi does not read",
              add_dataset("extra/t9", np.zeros((1,) * 9, np.float32)), 2, r"dataset 'extra/t9' has a type or shape"),
    ckpt_case("ck_extra_group", "an extra group with its own CRC'd tensor (a tool's notes): accepted, loads",
              add_dataset("notes/lr_finder", np.linspace(0, 1, 7).astype(np.float32)), 0, r"bad\.h5 +resnet20-b"),
    ckpt_case("ck_rebuilt_by_h5py", "rewritten tensor by tensor with h5py as docs/checkpoint.md says: accepted, loads",
              rebuilt_with_h5py, 0, r"bad\.h5 +resnet20-b"),
    ckpt_case("ck_num_classes_100", "num_classes 100 against a 10-class data set: both counts",
              set_attr("num_classes", np.int64(100)), 2,
              r"checkpoint '<bad>' has num_classes 100 but the config asks for 10"),
    ckpt_case("ck_in_channels_3", "in_channels 3 (an RGB model) on grey images: both counts",
              set_attr("in_channels", np.int64(3)), 2, r"checkpoint '<bad>' has in_channels 3 but the config asks for 1"),
    ckpt_case("ck_input_32", "a model of 32x32 images on 28x28 data: both sizes and the data set",
              h5(lambda f: [f.attrs.__setitem__(k, np.int64(32)) for k in ("input_height", "input_width")]), 2,
              r"model <bad> was trained on 32x32 images, <data> has 28x28"),
    ckpt_case("ck_arch_vgg", "arch 'vgg16' (another zoo): unknown arch, the zoo listed",
              set_attr("arch", "vgg16"), 2, r"<bad>: unknown arch 'vgg16'(.|\n)*hint: architectures: resnet<6n\+2>"),
    ckpt_case("ck_model_name_disagrees", "an older file's model_name resnet32-b beside arch resnet20-b: the two disagree",
              set_attr("model_name", "resnet32-b"), 2, r"<bad>: arch 'resnet20-b' and model_name 'resnet32-b' disagree"),
    ckpt_case("ck_model_depth_9999", "arch 'resnet9999-b': exit 2 naming the file and the model",
              set_attr("arch", "resnet9999-b"), 2, r"<bad>.*resnet9999"),
    ckpt_case("ck_input_height_negative", "input_height = -5: exit 2 naming the file and the attribute",
              set_attr("input_height", np.int64(-5)), 2, r"<bad>.*input_height"),
    ckpt_case("ck_input_height_2p40", "input_height = 2^40: refused with the stored value",
              set_attr("input_height", np.int64(1 << 40)), 2, r"<bad>.*1099511627776"),
    Case("ck_eval_also_bad", "checkpoint", "eval GOOD --also BAD: exit 2 naming the damaged one, both files untouched",
         also_bad, 2, r"checkpoint '<bad>' is corrupt: tensor 'model/fc/weight'"),
    Case("ck_eval_one_of_three_bad", "checkpoint", "eval of three checkpoints, the second incomplete: that one named",
         second_of_three_bad, 2, r"checkpoint '<bad>' is incomplete"),
]


# resuming from a named checkpoint (checkpoint.resume = PATH)
RESUME_CASES = [
    resume_case("rs_missing", "checkpoint.resume names a file that is not there: the path", as_missing, (), 2,
                r"cannot open checkpoint '<bad>': No such file or directory"),
    resume_case("rs_rank_pattern_missing", "checkpoint.resume = .../teacher{rank}.h5 without teacher0.h5: the expanded path",
                as_missing, ["checkpoint.resume={dir}/teacher{rank}.h5"], 2, r"cannot open checkpoint '<dir>/teacher0\.h5'"),
    resume_case("rs_other_seed", "resumed with another run.seed: both seeds", lambda p: None, ["run.seed=4"], 2,
                r"checkpoint <bad> was trained with seed 3, this rank uses 4\n  hint: resume with the run\.seed"),
    resume_case("rs_other_arch", "resumed with model.arch = resnet32: both architectures", lambda p: None,
                ["model.arch=resnet32"], 2,
                r"checkpoint '<bad>' has arch resnet20-b but the config asks for resnet32-b"),
    resume_case("rs_no_trainer_state", "a checkpoint without /train/step_in_epoch (an eval-only export): the tensor",
                del_object("train/step_in_epoch"), (), 2, r"checkpoint '<bad>' has no tensor 'train/step_in_epoch'"),
    resume_case("rs_no_momentum", "a checkpoint without optimizer state: the first missing tensor",
                del_object("optim"), (), 2, r"checkpoint '<bad>' has no tensor 'optim/momentum/conv1/weight'"),
    resume_case("rs_momentum_nan", "a NaN in the momentum buffer: tensor and element",
                set_tensor("optim/momentum/conv1/weight", np.nan, 0), (), 2,
                r"checkpoint '<bad>': tensor 'optim/momentum/conv1/weight' holds nan at element 0"),
    resume_case("rs_epoch_float", "train/epoch stored as float64: both dtypes",
                h5(lambda f: replace(f, "train/epoch", np.float64(f["train/epoch"][()]), True)), (), 2,
                r"checkpoint '<bad>': tensor 'train/epoch' is \[\] float64 but \[\] int64 is expected"),
    resume_case("rs_rgb_checkpoint", "resumed from an RGB model's checkpoint: in_channels both ways",
                set_attr("in_channels", np.int64(3)), (), 2,
                r"checkpoint '<bad>' has in_channels 3 but the config asks for 1"),
    resume_case("rs_step_beyond_epoch",
                "a mid-epoch checkpoint resumed with a larger train.batch: exit 2, the step and the batch",
                set_tensor("train/step_in_epoch", 4), ["train.batch=16"], 2,
                r"checkpoint <bad> stopped at step 4 of an epoch, but an epoch now has 2 steps"),
    resume_case("rs_step_in_epoch_negative", "train/step_in_epoch = -3 (CRC right): exit 2 naming the file and tensor",
                set_tensor("train/step_in_epoch", -3), (), 2, r"<bad>.*step_in_epoch"),
    resume_case("rs_epoch_negative", "train/epoch = -5 (CRC right): exit 2 naming the file and tensor",
                set_tensor("train/epoch", -5), (), 2, r"<bad>.*train/epoch"),
    resume_case("rs_epoch_huge", "train/epoch = 10^12 (CRC right): exit 2 naming the file and tensor",
                set_tensor("train/epoch", 10**12), (), 2, r"<bad>.*train/epoch"),
    resume_case("rs_global_step_negative", "train/global_step = -100 (CRC right): exit 2 naming the file and tensor",
                set_tensor("train/global_step", -100), (), 2, r"<bad>.*global_step"),
]


# a finished 2-epoch run folder, damaged, resumed to 3 epochs (checkpoint.resume = auto)

def put_text(name, text):
    return lambda ctx: write_text(text)(os.path.join(ctx.run_dir, name))


def cut_metrics_line(ctx):
    p = os.path.join(ctx.run_dir, "teacher0_metrics.jsonl")
    data = open(p).read()
    open(p, "w").write(data[:-40])  # the last line cut mid-record, no newline (a full disk or a crash)


def metrics_lines_complete(ctx, r):
    """Every line the resumed run added is complete JSON (the damaged old line aside)."""
    lines = open(os.path.join(ctx.run_dir, "teacher0_metrics.jsonl")).read().splitlines()
    added = [l for l in lines if '"resumed"' in l or '"epoch":3' in l]
    ok = all(l.startswith("{") and _json_ok(l) for l in added) and len(added) == 2
    ctx.expect(ok, f"the resumed run's metrics lines are complete JSON lines: {added}")


def _json_ok(line):
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def newest_kept_and_loads(name):
    def check(ctx, r):
        p = os.path.join(ctx.run_dir, name)
        if ctx.expect(os.path.exists(p), f"{name} still there"):
            loads(ctx, p)
    return check


def other_files(ctx):
    for n in ("teacher1_e0001_s00000005.h5", "notes.txt"):
        shutil.copy(G.ckpt if n.endswith(".h5") else G.data, os.path.join(ctx.run_dir, n))
    ctx.freeze(os.path.join(ctx.run_dir, "teacher1_e0001_s00000005.h5"), os.path.join(ctx.run_dir, "notes.txt"))


E1, E2 = "teacher0_e0001_s00000005.h5", "teacher0_e0002_s00000010.h5"
RUN_DIR_CASES = [
    run_dir_case("rd_newest_corrupt_falls_back", "the newest checkpoint has a flipped bit: skipped with the reason, "
                 "resumed from the one before, finishes", in_run(E2, flip_tensor_byte("model/conv1/weight")), (), 0,
                 r"feed_mpi: skipped damaged checkpoint '<run>/" + E2 + r"': checkpoint '<run>/" + E2 + r"' is corrupt",
                 keep=resumed_and_finished(E1)),
    run_dir_case("rd_newest_truncated_falls_back", "the newest checkpoint truncated (disk full while copying): skipped, "
                 "resumed from the one before", in_run(E2, truncate_to(0.5)), (), 0,
                 r"skipped damaged checkpoint '<run>/" + E2 + r"': .*cannot be opened by HDF5",
                 keep=resumed_and_finished(E1)),
    run_dir_case("rd_newest_corrupt_refused",
                 "on_corrupt = refuse and a damaged newest checkpoint: exit 2, folder untouched",
                 in_run(E2, flip_tensor_byte("model/conv1/weight")), ["checkpoint.on_corrupt=refuse"], 2,
                 r"the newest checkpoint of teacher0 in <run> is damaged \(see above\)"),
    run_dir_case("rd_all_damaged", "every checkpoint damaged: exit 2, no silent start from epoch 1, folder untouched",
                 lambda ctx: [truncate_to(0.3)(os.path.join(ctx.run_dir, n)) for n in (E1, E2)], (), 2,
                 r"every checkpoint of teacher0 in <run> is damaged \(see above\): nothing to resume from"),
    run_dir_case("rd_resume_none_over_old_run",
                 "checkpoint.resume = none in a folder with an earlier run: exit 2, untouched",
                 lambda ctx: None, ["checkpoint.resume=none"], 2,
                 r"checkpoint\.resume = none starts a new run, but <run> already holds 2 checkpoint\(s\) of an earlier run"),
    run_dir_case("rd_other_seed", "same folder, another run.seed: both seeds named, folder untouched",
                 lambda ctx: None, ["run.seed=5"], 2,
                 r"checkpoint <run>/" + E2 + r" was trained with seed 3, this rank uses 5"),
    run_dir_case("rd_other_arch", "same folder, model.arch = resnet32: both architectures, folder untouched",
                 lambda ctx: None, ["model.arch=resnet32"], 2,
                 r"checkpoint '<run>/" + E2 + r"' has arch resnet20-b but the config asks for resnet32-b"),
    run_dir_case("rd_folder_named_like_newest", "a folder named like a newer checkpoint: skipped (not a regular file), "
                 "resumed from the real newest, the folder left alone",
                 lambda ctx: os.makedirs(os.path.join(ctx.run_dir, "teacher0_e0009_s00000045.h5")), (), 0,
                 r"skipped damaged checkpoint '<run>/teacher0_e0009_s00000045\.h5': .*is not a regular file",
                 keep=lambda ctx, r: (ctx.expect(os.path.isdir(os.path.join(ctx.run_dir, "teacher0_e0009_s00000045.h5")),
                                                 "the folder is still there"), loads(ctx, os.path.join(ctx.run_dir,
                                                                                                       "teacher_0.h5")))),
    run_dir_case("rd_text_named_like_newest", "a text file named like the newest checkpoint: skipped as not HDF5, resumed "
                 "from the real newest, the text kept", put_text("teacher0_e0009_s00000045.h5", "not a checkpoint\n"), (), 0,
                 r"skipped damaged checkpoint '<run>/teacher0_e0009_s00000045\.h5': checkpoint .* is not an HDF5 file",
                 keep=lambda ctx, r: loads(ctx, os.path.join(ctx.run_dir, "teacher_0.h5"))),
    run_dir_case("rd_stale_tmp_removed", "a .h5.tmp left by a killed writer: removed, the run resumes and finishes",
                 put_text("teacher0_e0003_s00000015.h5.tmp", "half a checkpoint"), (), 0, r"resumed from <run>/" + E2,
                 keep=lambda ctx, r: expect_epochs(ctx, os.path.join(ctx.run_dir, "teacher0_metrics.jsonl"), [1, 2, 3])),
    run_dir_case("rd_best_damaged", "a damaged _best.h5 does not stop a resume (it is never read for it)",
                 in_run("teacher0_best.h5", flip_tensor_byte("model/conv1/weight")), (), 0, r"resumed from <run>/" + E2,
                 keep=newest_kept_and_loads("teacher_0.h5")),
    run_dir_case("rd_other_prefix_untouched",
                 "another rank's checkpoint and a notes file in the folder: left byte-identical",
                 other_files, (), 0, r"resumed from <run>/" + E2, keep=newest_kept_and_loads("teacher_0.h5")),
    run_dir_case("rd_metrics_last_line_cut", "the metrics file's last line cut mid-record: the resumed run's lines are "
                 "complete JSON lines", cut_metrics_line, (), 0, r"resumed from <run>/" + E2, keep=metrics_lines_complete),
    run_dir_case("rd_resume_other_batch", "resumed with another train.batch: exit 2 naming train.batch (docs/cluster.md: "
                 "'feed_mpi says so when something does not match')", lambda ctx: None, ["train.batch=4"], 2,
                 r"train\.batch"),
    run_dir_case("rd_resume_other_subset", "resumed with another data.subset_per_class: exit 2 naming the key",
                 lambda ctx: None, ["data.subset_per_class=10"], 2, r"subset_per_class"),
]


# teachers of a distillation (pfeed): in the student's process and on their own MPI ranks

def pfeed(ctx, teacher, ranks=0, check=False, extra=()):
    cmd = ([] if not ranks else G.mpi + ["-np", str(ranks)]) + [G.feed] + (["--check"] if check else [])
    return cmd + [ctx.ini(), "run.mode=pfeed", f"distill.teachers={teacher}"] + \
        ([] if ranks else ["distill.source=local"]) + list(extra)


def teacher_case(name, story, damage, ranks=0, check=False, code=2, message=None, known_bad="", extra=()):
    def setup(ctx):
        bad = ctx.copy(G.ckpt)
        damage(bad)
        ctx.freeze(bad)
        ctx.cmd = pfeed(ctx, bad, ranks, check, extra)

    def keep(ctx, r):
        expect_no_checkpoints(ctx)
        if check:
            ctx.expect("ready to run" not in r.out, "--check does not say 'ready to run'")
        if ranks:
            ctx.expect(r.err.count("error:") == 1, f"one message for the job, not one per rank ({r.err.count('error:')})")
    return Case(name, "checkpoint", story, setup, code, message, keep, known_bad, timeout=180)


TEACHER_CASES = [
    teacher_case("tc_corrupt_local",
                 "pfeed with a corrupt teacher in the student's process: the teacher file, before training",
                 flip_tensor_byte("model/conv1/weight"), 0, False, 2,
                 r"checkpoint '<bad>' is corrupt: tensor 'model/conv1/weight'"),
    teacher_case("tc_corrupt_mpi", "mpirun -np 2 pfeed with a corrupt teacher rank: exit 2, one message from rank 1",
                 flip_tensor_byte("model/conv1/weight"), 2, False, 2, r"rank 1: error: checkpoint '<bad>' is corrupt"),
    teacher_case("tc_corrupt_check", "--check of a pfeed config with a corrupt teacher: exit 2, not 'ready to run'",
                 flip_tensor_byte("model/conv1/weight"), 0, True, 2, r"checkpoint '<bad>' is corrupt"),
    teacher_case("tc_other_image_size", "a teacher of 32x32 images for 28x28 data: sizes and the teacher file",
                 h5(lambda f: [f.attrs.__setitem__(k, np.int64(32)) for k in ("input_height", "input_width")]), 0, False, 2,
                 r"<bad> was trained on 32x32 images"),
    teacher_case("tc_nan_weight_mpi",
                 "mpirun -np 2 pfeed with a teacher holding a NaN weight (CRC right): tensor named once",
                 set_tensor("model/layer3/0/conv2/weight", np.nan, 11), 2, False, 2,
                 r"checkpoint '<bad>': tensor 'model/layer3/0/conv2/weight' holds nan at element 11"),
    teacher_case("tc_truncated_mpi", "mpirun -np 2 pfeed with a truncated teacher: exit 2, the file named once",
                 truncate_to(0.5), 2, False, 2, r"checkpoint '<bad>' \(\d+ bytes\) cannot be opened by HDF5"),
    teacher_case("tc_bad_shape_mpi", "mpirun -np 2 pfeed with a teacher of a nonsense arch: exit 2 naming it once",
                 set_attr("arch", "resnet9999-b"), 2, False, 2, r"<bad>.*resnet9999"),
]


# ---- signals ----------------------------------------------------------------------------------

def all_first_checkpoints(run_dir, prefixes):
    return lambda: all(glob.glob(os.path.join(run_dir, f"{p}_e0001_*.h5")) for p in prefixes)


def lock_taken(run_dir):
    def pred():
        try:
            with open(os.path.join(run_dir, ".feed_mpi.lock")) as f:
                return "pid" in f.read()
        except OSError:
            return False
    return pred


def signal_case(name, story, sig, code, message=None, ranks=0, when="checkpoint", twice=False, prefix="teacher",
                mode=(), known_bad="", note_stale_lock=False):
    """Start a 4-epoch run, send sig once its first checkpoints exist (or as soon as it holds
    the run folder), then run the same command again: it must resume and finish, ending
    bit-identical to an uninterrupted run, every epoch once in the metrics."""
    prefixes = [f"{prefix}{r}" for r in range(max(ranks, 1))] if prefix == "teacher" else [prefix]

    def setup(ctx):
        cmd = (G.mpi + ["-np", str(ranks)] if ranks else []) + [G.feed, ctx.ini()] + SIGNAL_RUN + list(fill(ctx, mode))

        def action(ctx):
            p = ctx.start(cmd)
            ctx.wait_for(all_first_checkpoints(ctx.run_dir, prefixes) if when == "checkpoint" else lock_taken(ctx.run_dir),
                         "the run to reach the moment to signal", timeout=ctx.case.timeout / 2)
            p.send_signal(sig)
            if twice:
                time.sleep(0.05)
                p.send_signal(sig)
            first = ctx.finish(p)
            for pre in prefixes:  # what the stop left: its newest checkpoint loads
                found = checkpoints(ctx.run_dir, pre)
                if ctx.expect(found, f"a {pre} checkpoint exists after the signal"):
                    loads(ctx, found[-1])
            ctx.second = ctx.run(cmd)
            ctx.expect(ctx.second.code == 0,
                       f"the same command again exits 0 (got {ctx.second.code}: {tail(ctx.second.err, 3)})")
            ctx.expect("resumed from" in ctx.second.out, "the second run resumes")
            if note_stale_lock:
                ctx.expect("names an earlier run that did not end normally" in ctx.second.out,
                           "the second run notes the stale lock it takes over")
            return first
        ctx.action = action

    def keep(ctx, r):
        for pre in prefixes:
            expect_epochs(ctx, os.path.join(ctx.run_dir, f"{pre}_metrics.jsonl"), [1, 2, 3, 4])
        if prefix == "teacher":
            expect_same_as_reference(ctx, os.path.join(ctx.run_dir, "teacher_0.h5"))
            for k in range(1, len(prefixes)):
                loads(ctx, os.path.join(ctx.run_dir, f"teacher_{k}.h5"))
        else:
            loads(ctx, os.path.join(ctx.run_dir, "student.h5"))
        expect_lock_released(ctx)
        if sig in (signal.SIGTERM, signal.SIGUSR1):
            n = r.out.count("stop signal received")
            ctx.expect(n == 1, f"one stop message on stdout (found {n})")
    return Case(name, "signal", story, setup, code, message, keep, known_bad, timeout=240)


def stop_and_continue(ctx):
    cmd = [G.feed, ctx.ini()] + SIGNAL_RUN

    def action(ctx):
        p = ctx.start(cmd)
        ctx.wait_for(all_first_checkpoints(ctx.run_dir, ["teacher0"]), "the first checkpoint")
        p.send_signal(signal.SIGSTOP)
        time.sleep(1)
        p.send_signal(signal.SIGCONT)
        return ctx.finish(p)
    ctx.action = action


def closed_stdout(ctx):
    """`feed_mpi x.ini | head -1`: the reader goes away after the first line."""
    cmd = [G.feed, ctx.ini()] + SIGNAL_RUN

    def action(ctx):
        p = ctx.start(cmd)
        p.stdout.readline()
        p.stdout.close()
        err = p.stderr.read()
        p.wait(timeout=ctx.case.timeout)
        first = Result(p.returncode, "", err, time.time() - p.t0, cmd=tuple(p.args))
        ctx.results.append(first)
        ctx.second = ctx.run(cmd)
        ctx.expect(ctx.second.code == 0, f"the same command again exits 0 (got {ctx.second.code})")
        return first
    ctx.action = action


def finished_like_reference(ctx, r):
    expect_epochs(ctx, os.path.join(ctx.run_dir, "teacher0_metrics.jsonl"), [1, 2, 3, 4])
    expect_same_as_reference(ctx, os.path.join(ctx.run_dir, "teacher_0.h5"))
    expect_lock_released(ctx)


STOPPED = r"stop signal received: checkpoint written at epoch \d+ \+ \d+ steps \(step \d+\); run the same command to resume"
SIGNAL_CASES = [
    signal_case("sig_term",
                "SIGTERM (scancel, kill) mid-run: checkpoint and exit 0; the same command resumes bit-identically",
                signal.SIGTERM, 0, STOPPED),
    signal_case("sig_usr1", "SIGUSR1 (SLURM's warning before the time limit) mid-run: checkpoint, exit 0, exact resume",
                signal.SIGUSR1, 0, STOPPED),
    signal_case("sig_term_twice", "SIGTERM sent twice in a row: still one checkpoint, one message, exit 0, exact resume",
                signal.SIGTERM, 0, STOPPED, twice=True),
    signal_case("sig_term_at_startup", "SIGTERM while the run is still starting up: acted on at the first step, exit 0, "
                "exact resume", signal.SIGTERM, 0, r"stop signal received: checkpoint written at epoch 0 \+ \d+ steps",
                when="startup"),
    signal_case("sig_int", "Ctrl-C (SIGINT) on a run without mpirun: it ends at once; the newest checkpoint loads and the "
                "same command resumes bit-identically", signal.SIGINT, -signal.SIGINT),
    signal_case("sig_hup", "the terminal closes (SIGHUP): the run ends; nothing lost, exact resume", signal.SIGHUP,
                -signal.SIGHUP),
    signal_case("sig_kill", "SIGKILL (OOM killer): the next run notes the stale lock, resumes bit-identically",
                signal.SIGKILL, -signal.SIGKILL, note_stale_lock=True),
    signal_case("sig_usr1_mpirun", "SIGUSR1 to mpirun of a 2-rank scratch job: every rank checkpoints, exit 0, exact resume",
                signal.SIGUSR1, 0, None, ranks=2),
    signal_case("sig_term_mpirun", "SIGTERM to mpirun of a 2-rank job: the ranks checkpoint (mpirun itself exits 1), "
                "the same command resumes bit-identically", signal.SIGTERM, 1, None, ranks=2),
    signal_case("sig_usr1_pfeed", "SIGUSR1 to mpirun of a pfeed job (student + teacher rank): checkpoint, exit 0, resume "
                "finishes with every epoch once", signal.SIGUSR1, 0, None, ranks=2, prefix="student",
                mode=["run.mode=pfeed", "distill.teachers={ckpt}"]),
    Case("sig_stop_cont", "signal", "Ctrl-Z then fg (SIGSTOP, SIGCONT): the run carries on and ends as if never stopped",
         stop_and_continue, 0, None, finished_like_reference, timeout=240),
    Case("sig_pipe", "signal", "`feed_mpi x.ini | head -1`: SIGPIPE ends it at the next line; the same command then trains "
         "every epoch once", closed_stdout, -signal.SIGPIPE, None,
         lambda ctx, r: (expect_epochs(ctx, os.path.join(ctx.run_dir, "teacher0_metrics.jsonl"), [1, 2, 3, 4]),
                         expect_same_as_reference(ctx, os.path.join(ctx.run_dir, "teacher_0.h5"))), timeout=240),
]


# ---- file system ------------------------------------------------------------------------------

def fs_case(name, story, setup, code, message=None, keep=None, known_bad="", needs=(), timeout=180):
    return Case(name, "filesystem", story, setup, code, message, keep, known_bad, timeout, needs)


def run_dir_is_file(ctx):
    write_text("results of last week\n")(ctx.run_dir)
    ctx.freeze(ctx.run_dir)
    ctx.cmd = [G.feed, ctx.ini()]


def parent_is_file(ctx):
    write_text("x")(ctx.path("afile"))
    ctx.freeze(ctx.path("afile"))
    ctx.cmd = [G.feed, ctx.ini(), f"run.dir={ctx.path('afile', 'sub')}"]


def run_dir_loop(ctx):
    os.symlink("run", ctx.run_dir)
    ctx.cmd = [G.feed, ctx.ini()]


def run_dir_symlink(ctx):
    os.makedirs(ctx.path("real"))
    os.symlink("real", ctx.run_dir)
    ctx.cmd = [G.feed, ctx.ini()]


def readonly_copy_of_run2(ctx):
    mnt = ctx.mount_tmpfs(ctx.path("mnt"), "20m")
    run = os.path.join(mnt, "run")
    shutil.copytree(G.run2, run)
    ctx.remount(mnt, "ro")
    ctx.freeze(run)
    ctx.tokens["run"] = run
    ctx.cmd = [G.feed, ctx.ini(run_dir=run), "train.epochs=3"]


def readonly_empty(ctx):
    mnt = ctx.mount_tmpfs(ctx.path("mnt"), "1m")
    ctx.remount(mnt, "ro")
    ctx.tokens["run"] = os.path.join(mnt, "run")
    ctx.cmd = [G.feed, ctx.ini(run_dir=ctx.tokens["run"])]


def readonly_data(ctx):
    mnt = ctx.mount_tmpfs(ctx.path("mnt"), "5m")
    shutil.copy(G.data, os.path.join(mnt, "data.h5"))
    ctx.remount(mnt, "ro")
    ctx.cmd = [G.feed, ctx.ini(), f"data.path={os.path.join(mnt, 'data.h5')}"]


def not_writable(ctx):
    shutil.copytree(G.run2, ctx.run_dir)
    os.chmod(os.path.join(ctx.run_dir, ".feed_mpi.lock"), 0o444)
    os.chmod(ctx.run_dir, 0o555)
    ctx.freeze(ctx.run_dir)
    cfg = ctx.ini()
    ctx.action = lambda ctx: ctx.run([G.feed, cfg, "train.epochs=3"], as_nobody=True)


def unreadable_data(ctx):
    bad = ctx.copy(G.data)
    os.chmod(bad, 0)
    cfg = ctx.ini()
    ctx.action = lambda ctx: ctx.run([G.feed, cfg, f"data.path={bad}"], as_nobody=True)


def unreadable_ckpt(ctx):
    bad = ctx.copy(G.ckpt)
    os.chmod(bad, 0)
    ctx.action = lambda ctx: ctx.run([G.feed, "eval", "--data", G.data, bad], as_nobody=True)


def disk_full(ctx, size="3m"):
    mnt = ctx.mount_tmpfs(ctx.path("mnt"), size)
    ctx.tokens["run"] = os.path.join(mnt, "run")
    return [G.feed, ctx.ini(run_dir=ctx.tokens["run"]), "train.epochs=2"]


def disk_full_second_checkpoint(ctx):
    ctx.cmd = disk_full(ctx)


def disk_full_then_resume(ctx):
    cmd = disk_full(ctx)

    def action(ctx):
        first = ctx.run(cmd)
        ctx.expect(first.code == 1 and "No space left on device" in first.err, f"the run fails on the full disk first "
                   f"(exit {first.code})")
        ctx.remount(ctx.path("mnt"), "size=20m")
        return ctx.run(cmd)
    ctx.action = action


def nearly_full(ctx):
    cmd = disk_full(ctx)
    filler = os.path.join(ctx.path("mnt"), "other_job_output.bin")
    with open(filler, "wb") as f:  # leave about 200 KB: less than one checkpoint
        f.write(os.urandom(3 * 1024 * 1024 - 200 * 1024))
    ctx.freeze(filler)
    ctx.cmd = cmd


def limited(kib, argv):
    """argv under `ulimit -f KIB` with SIGXFSZ ignored, so writes past the limit fail with EFBIG.
    PMIx (MPI start-up) keeps its store in a memory-mapped file the limit would cut: its
    hash store instead."""
    return ["env", "PMIX_MCA_gds=hash", "bash", "-c", 'trap "" XFSZ; ulimit -f "$0"; exec "$@"', str(kib)] + argv


def file_size_limit(kib, *extra, resume=False):
    """The run under `ulimit -f KIB` with SIGXFSZ ignored: writes past the limit fail with EFBIG
    (a quota-like limit that needs no mount)."""
    def setup(ctx):
        if resume:
            shutil.copytree(G.run2, ctx.run_dir)
            ctx.freeze(os.path.join(ctx.run_dir, E1), os.path.join(ctx.run_dir, E2))
        ctx.cmd = limited(kib, [G.feed, ctx.ini()] + list(extra))
    return setup


def holder_run(ctx, *extra):
    """A 4-epoch run holding ctx.run_dir (its Popen)."""
    cmd = [G.feed, ctx.ini()] + SIGNAL_RUN + list(extra)
    p = ctx.start(cmd)
    ctx.wait_for(lock_taken(ctx.run_dir), "the first run to take the run folder")
    return p


def first_run_unharmed(ctx, first):
    ctx.expect(first.code == 0, f"the first run finishes normally (exit {first.code}: {tail(first.err, 2)})")
    expect_epochs(ctx, os.path.join(ctx.run_dir, "teacher0_metrics.jsonl"), [1, 2, 3, 4])
    expect_same_as_reference(ctx, os.path.join(ctx.run_dir, "teacher_0.h5"))


def concurrent(second_args, check_ready=False):
    def setup(ctx):
        def action(ctx):
            p = holder_run(ctx)
            r = ctx.run([a.replace("{cfg}", ctx.tokens["cfg"]) for a in second_args(ctx)])
            if check_ready:
                ctx.expect("ready to run" not in r.out, "--check does not say 'ready to run'")
            first_run_unharmed(ctx, ctx.finish(p))
            return r
        ctx.action = action
    return setup


def eval_while_training(ctx):
    def action(ctx):
        p = holder_run(ctx, "checkpoint.keep_last=4")  # the file read stays while eval opens it
        ctx.wait_for(all_first_checkpoints(ctx.run_dir, ["teacher0"]), "the first checkpoint")
        r = ctx.run([G.feed, "eval", "--data", G.data, checkpoints(ctx.run_dir)[0]])
        first_run_unharmed(ctx, ctx.finish(p))
        return r
    ctx.action = action


def stale_lock(ctx):
    shutil.copytree(G.run2, ctx.run_dir)
    write_text("feed_mpi on host node17 pid 999999 started 2026-01-01T00:00:00Z\n")(os.path.join(ctx.run_dir,
                                                                                                 ".feed_mpi.lock"))
    ctx.cmd = [G.feed, ctx.ini(), "train.epochs=3"]


def lock_is_folder(ctx):
    shutil.copytree(G.run2, ctx.run_dir)
    os.remove(os.path.join(ctx.run_dir, ".feed_mpi.lock"))
    os.makedirs(os.path.join(ctx.run_dir, ".feed_mpi.lock"))
    ctx.freeze(ctx.run_dir)
    ctx.cmd = [G.feed, ctx.ini(), "train.epochs=3"]


def folder_in_the_way(name):
    def setup(ctx):
        os.makedirs(os.path.join(ctx.run_dir, name))
        ctx.cmd = [G.feed, ctx.ini()]
    return setup


def data_fifo(ctx):
    bad = ctx.path("bad.h5")
    os.mkfifo(bad)
    ctx.tokens["bad"] = bad
    ctx.cmd = [G.feed, ctx.ini(), f"data.path={bad}"]


def convert_on_full_disk(size_or_limit):
    def setup(ctx):
        if size_or_limit == "tmpfs":
            out = os.path.join(ctx.mount_tmpfs(ctx.path("mnt"), "100k"), "out.h5")
            ctx.cmd = [G.convert, "fashion-mnist", G.idx, out]
        else:
            out = ctx.path("out.h5")
            ctx.cmd = limited(100, [G.convert, "fashion-mnist", G.idx, out])
        ctx.tokens["out"] = out
    return setup


WRITE_FAILED = (r"cannot write checkpoint '<run>/{name}': write\('<run>/{name}\.tmp'\): {why}; "
                r"removed '<run>/{name}\.tmp', '<run>/{name}' is unchanged\n.*\n  hint: is the disk full")
FILESYSTEM_CASES = [
    fs_case("fs_run_dir_is_file", "run.dir names an existing file: not a folder, the file untouched", run_dir_is_file, 2,
            r"the run folder '<run>' is not a folder"),
    fs_case("fs_run_dir_parent_is_file", "run.dir below a file: cannot create it, the OS reason", parent_is_file, 2,
            r"cannot create the run folder '<dir>/afile/sub': Not a directory"),
    fs_case("fs_run_dir_symlink_loop", "run.dir a symlink to itself: not a folder", run_dir_loop, 2,
            r"the run folder '<run>' is not a folder"),
    fs_case("fs_run_dir_dev_null", "run.dir = /dev/null: not a folder (and /dev/null stays a device)",
            lambda ctx: setattr(ctx, "cmd", [G.feed, ctx.ini(), "run.dir=/dev/null"]), 2,
            r"the run folder '/dev/null' is not a folder",
            keep=lambda ctx, r: ctx.expect(not os.path.isfile("/dev/null"), "/dev/null is still a device")),
    fs_case("fs_run_dir_symlink_ok", "run.dir a symlink to a real folder: trains into the real folder", run_dir_symlink, 0,
            keep=lambda ctx, r: ctx.expect(checkpoints(ctx.path("real")), "checkpoints in the folder the link points to")),
    fs_case("fs_readonly_resume",
            "resuming in a run folder on a read-only mount: exit 2, the folder and its files untouched",
            readonly_copy_of_run2, 2, r"cannot create the lock file '<run>/\.feed_mpi\.lock': Read-only file system",
            needs=("mount",)),
    fs_case("fs_readonly_new_run_dir", "a new run.dir on a read-only mount: cannot create it, the OS reason",
            readonly_empty, 2,
            r"cannot create the run folder '<run>': Read-only file system", needs=("mount",)),
    fs_case("fs_readonly_data_ok", "the data set on a read-only mount is fine: trains", readonly_data, 0, needs=("mount",),
            keep=lambda ctx, r: ctx.expect(checkpoints(ctx.run_dir), "the run wrote its checkpoint")),
    fs_case("fs_run_dir_not_writable", "a run folder the user may not write (another user's): exit 2, the lock file and "
            "the reason, files untouched", not_writable, 2,
            r"cannot create the lock file '<run>/\.feed_mpi\.lock': Permission denied",
            needs=("nobody",)),
    fs_case("fs_data_unreadable", "a data set without read permission: the key, the path, permission denied",
            unreadable_data, 2,
            r"data\.path: cannot read '<bad>': Permission denied", needs=("nobody",)),
    fs_case("fs_checkpoint_unreadable", "eval of a checkpoint without read permission: the file and permission denied",
            unreadable_ckpt, 2, r"checkpoint '<bad>' .*Permission denied", needs=("nobody",)),
    fs_case("fs_disk_full",
            "the disk fills while the second checkpoint is written: exit 1 naming it and the reason, no .tmp, "
            "the first checkpoint still loads, metrics lines complete", disk_full_second_checkpoint, 1,
            WRITE_FAILED.format(name="teacher0_e0002_s00000010\\.h5", why="No space left on device"),
            keep=lambda ctx, r: (loads(ctx, os.path.join(ctx.tokens["run"], E1)),
                                 metrics_epochs(ctx, os.path.join(ctx.tokens["run"], "teacher0_metrics.jsonl"))),
            needs=("mount",)),
    fs_case("fs_disk_full_then_resume", "after a disk-full failure and freeing space, the same command resumes from the "
            "last good checkpoint and finishes", disk_full_then_resume, 0, r"resumed from <run>/" + E1,
            keep=lambda ctx, r: expect_epochs(ctx, os.path.join(ctx.tokens["run"], "teacher0_metrics.jsonl"), [1, 2]),
            needs=("mount",)),
    fs_case("fs_disk_nearly_full", "less free space than one checkpoint at the start: exit 1 naming the checkpoint, no "
            ".tmp, the other job's file untouched", nearly_full, 1,
            WRITE_FAILED.format(name="teacher0_e0001_s00000005\\.h5", why="No space left on device"), needs=("mount",),
            keep=lambda ctx, r: expect_no_checkpoints(ctx, ctx.tokens["run"])),
    fs_case("fs_file_size_limit", "a file-size limit (ulimit -f 1024, quota-like) below one checkpoint: exit 1 naming "
            "it, File too large, no .tmp", file_size_limit(1024), 1,
            WRITE_FAILED.format(name="teacher0_e0001_s00000005\\.h5", why="File too large"),
            keep=lambda ctx, r: expect_no_checkpoints(ctx)),
    fs_case("fs_file_size_limit_resume", "resuming under a file-size limit: exit 1 naming the new checkpoint, the "
            "earlier ones byte-identical and loadable", file_size_limit(1024, "train.epochs=3", resume=True), 1,
            WRITE_FAILED.format(name="teacher0_e0003_s00000015\\.h5", why="File too large"),
            keep=lambda ctx, r: loads(ctx, os.path.join(ctx.run_dir, E2))),
    fs_case("fs_concurrent_run", "the same job started twice on one run.dir: the second exits 2 naming host and pid of "
            "the first, which finishes untouched", concurrent(lambda ctx: [G.feed, "{cfg}"] + SIGNAL_RUN), 2,
            r"the run folder '<run>' is in use by another run \(feed_mpi on host \S+ pid \d+ started \S+\)\n"
            r"  hint: wait for it to end, or give this run another run\.dir"),
    fs_case("fs_concurrent_check", "--check while a run holds the folder: exit 2, in use, not 'ready to run'",
            concurrent(lambda ctx: [G.feed, "--check", "{cfg}"] + SIGNAL_RUN, check_ready=True), 2,
            r"run\.dir '<run>' is in use by another run \(feed_mpi on host \S+ pid \d+"),
    fs_case("fs_eval_while_training", "eval of a checkpoint of a run still training: works (checkpoints are complete "
            "files)", eval_while_training, 0, r"teacher0_e0001_s00000025\.h5 +resnet20-b"),
    fs_case("fs_stale_lock", "a lock file left by a crashed run on another node: a note naming it, then the run resumes",
            stale_lock, 0, r"note: <run>/\.feed_mpi\.lock names an earlier run that did not end normally \(feed_mpi on host "
            r"node17 pid 999999 started 2026-01-01T00:00:00Z\): taken over",
            keep=lambda ctx, r: (expect_epochs(ctx, os.path.join(ctx.run_dir, "teacher0_metrics.jsonl"), [1, 2, 3]),
                                 expect_lock_released(ctx))),
    fs_case("fs_lock_is_folder", "a folder named .feed_mpi.lock in the run folder: exit 2 naming it, files untouched",
            lock_is_folder, 2, r"cannot create the lock file '<run>/\.feed_mpi\.lock': Is a directory"),
    fs_case("fs_final_is_folder", "a folder where teacher_0.h5 goes: exit 1 naming it, the periodic checkpoint loads",
            folder_in_the_way("teacher_0.h5"), 1,
            r"cannot write checkpoint '<run>/teacher_0\.h5': rename\('<run>/teacher_0\.h5\.tmp' -> '<run>/teacher_0\.h5'\): "
            r"Is a directory; removed '<run>/teacher_0\.h5\.tmp', '<run>/teacher_0\.h5' is unchanged",
            keep=lambda ctx, r: loads(ctx, os.path.join(ctx.run_dir, E1))),
    fs_case("fs_metrics_is_folder", "a folder where the metrics file goes: exit 2 naming it, nothing half-written left",
            folder_in_the_way("teacher0_metrics.jsonl"), 2, r"<run>/teacher0_metrics\.jsonl is a folder"),
    fs_case("fs_data_fifo", "data.path a named pipe: not a regular file", data_fifo, 2,
            r"data\.path: '<bad>' is not a regular file"),
    fs_case("fs_convert_disk_full", "feed_convert onto a full disk: exit 1 naming the output and the reason, no OUT.h5 "
            "and no .tmp left", convert_on_full_disk("tmpfs"), 1, r"<out>.*(No space left on device|disk full)",
            keep=no_output, needs=("mount", "convert")),
    fs_case("fs_convert_file_size_limit",
            "feed_convert under ulimit -f 100: exit 1 naming the output, no OUT.h5 and no .tmp",
            convert_on_full_disk("ulimit"), 1, r"<out>.*File too large", keep=no_output, needs=("convert",)),
]


# ---- command line -----------------------------------------------------------------------------

def data_32(ctx):
    bad = ctx.copy(G.data)
    h5(padded_to_32)(bad)
    ctx.freeze(bad)


def config_through_pipe(ctx):
    cfg = ctx.ini()
    ctx.cmd = ["bash", "-c", 'exec "$0" <(cat "$1")', G.feed, cfg]


USAGE = r"\n  usage: feed_mpi eval --data D\.h5"
CLI_CASES = [
    cli_case("cli_no_arguments", "feed_mpi without arguments: usage and 'no config file given'", ["FEED"], 2,
             r"usage: feed_mpi CONFIG\.ini.*(\n.*)*\nfeed_mpi: error: no config file given\n  hint: feed_mpi --help"),
    cli_case("cli_option_typo", "--chek: unknown option and the one meant", ["FEED", "--chek", "{cfg}"], 2,
             r"feed_mpi: error: unknown option '--chek'\n  hint: did you mean '--check'\?"),
    cli_case("cli_unknown_option", "--frobnicate: unknown option, where the options are listed", ["FEED", "--frobnicate"], 2,
             r"unknown option '--frobnicate'\n  hint: feed_mpi --help lists the options"),
    cli_case("cli_check_without_file", "--check alone: it needs a config file", ["FEED", "--check"], 2,
             r"--check needs a config file\n  hint: feed_mpi --check CONFIG\.ini"),
    cli_case("cli_print_config_without_file", "--print-config alone: it needs a config file", ["FEED", "--print-config"], 2,
             r"--print-config needs a config file"),
    cli_case("cli_check_missing_file", "--check of a config that is not there: the path and the OS reason",
             ["FEED", "--check", "{dir}/nope.ini"], 2,
             r"<dir>/nope\.ini: cannot read the config file: No such file or directory"),
    cli_case("cli_config_is_folder", "a folder given as the config: cannot read it", ["FEED", "{dir}"], 2,
             r"<dir>: cannot read the config file\n  hint: is it a folder"),
    cli_case("cli_override_first", "an override before the config file: taken as the file name, says it cannot be read",
             ["FEED", "train.epochs=1", "{cfg}"], 2,
             r"train\.epochs=1: cannot read the config file: No such file or directory",
             keep=lambda ctx, r: expect_no_run_dir(ctx)),
    cli_case("cli_two_configs", "two config files (expecting them merged): the second is no override",
             ["FEED", "{cfg}", "{cfg}"], 2, r"command line: '<cfg>': not a section\.key=value override",
             keep=lambda ctx, r: expect_no_run_dir(ctx)),
    cli_case("cli_check_bad_override", "--check with an out-of-range override: the override named", ["FEED", "--check",
                                                                                                     "{cfg}",
                                                                                                     "train.batch=0"],
             2, r"command line: 'train\.batch=0': train\.batch = 0 is out of range"),
    cli_case("cli_help", "--help: exit 0, the modes and every key", ["FEED", "--help"], 0,
             r"MODES \(run\.mode\)(\n.*)*\nKEYS "),
    cli_case("cli_version", "--version: exit 0 with the libraries", ["FEED", "--version"], 0,
             r"feed_mpi \d+\.\d+\.\d+ .*(\n.*)*\n  HDF5 "),
    cli_case("cli_check_writes_nothing", "--check of a good config: ready to run, and no run folder created",
             ["FEED", "--check", "{cfg}"], 0, r"<cfg>: ready to run", keep=lambda ctx, r: expect_no_run_dir(ctx)),
    cli_case("cli_print_config", "--print-config with an override: the value marked as from the command line",
             ["FEED", "--print-config", "{cfg}", "train.epochs=7"], 0, r"\nepochs = 7  ; command line\n",
             keep=lambda ctx, r: expect_no_run_dir(ctx)),
    cli_case("cli_config_through_pipe", "the config given as <(cat x.ini) (a pipe): trains", [], 0,
             prepare=config_through_pipe, keep=lambda ctx, r: ctx.expect(checkpoints(ctx.run_dir),
                                                                         "the run wrote its checkpoint")),
    cli_case("cli_eval_no_data", "eval without --data: says so, with the usage", ["FEED", "eval", "{ckpt}"], 2,
             r"feed_mpi: error: eval needs --data" + USAGE),
    cli_case("cli_eval_data_no_value", "eval --data at the end of the line: --data needs a file", ["FEED", "eval",
                                                                                                   "--data"], 2,
             r"error: --data needs a file" + USAGE),
    cli_case("cli_eval_no_checkpoint", "eval --data D without a checkpoint: needs at least one", ["FEED", "eval",
                                                                                                  "--data", "{data}"], 2,
             r"error: eval needs at least one checkpoint" + USAGE),
    cli_case("cli_eval_batch_zero", "eval --batch 0: needs a positive number", ["FEED", "eval", "--data", "{data}",
                                                                                "--batch", "0", "{ckpt}"],
             2, r"error: --batch needs a positive number"),
    cli_case("cli_eval_batch_word", "eval --batch ten: needs a positive number", ["FEED", "eval", "--data", "{data}",
                                                                                  "--batch", "ten",
             "{ckpt}"], 2, r"error: --batch needs a positive number"),
    cli_case("cli_eval_batch_huge", "eval --batch 10^9: exit 1, the allocation that failed and 'reduce the batch size'",
             ["FEED", "eval", "--data", "{data}", "--batch", "1000000000", "{ckpt}"], 1,
             r"error: out of memory allocating \d+ .*bytes for .*\n.*\n  hint: reduce the batch size"),
    cli_case("cli_eval_also_no_value", "eval ... --also at the end: needs a checkpoint", ["FEED", "eval", "--data",
                                                                                          "{data}", "{ckpt}",
             "--also"], 2, r"error: --also needs a checkpoint"),
    cli_case("cli_eval_unknown_option", "eval --jsn (typo): unknown eval option, the usage", ["FEED", "eval", "--jsn",
                                                                                              "--data", "{data}",
             "{ckpt}"], 2, r"error: unknown eval option '--jsn'" + USAGE),
    cli_case("cli_eval_help", "eval --help: exit 0 with the eval usage on stdout", ["FEED", "eval", "--help"], 0,
             r"usage: feed_mpi eval --data"),
    cli_case("cli_eval_data_missing", "eval --data with a path that is not there: the path, convert first",
             ["FEED", "eval", "--data", "{dir}/nope.h5", "{ckpt}"], 2,
             r"cannot read data set '<dir>/nope\.h5': No such file or directory\n.*\n  hint: convert the data set with "
             r"feed_convert first"),
    cli_case("cli_eval_checkpoint_as_data", "eval --data CHECKPOINT (arguments swapped): what the file is",
             ["FEED", "eval", "--data", "{ckpt}", "{data}"], 2,
             r"'<ckpt>': format is 'feed_mpi', expected 'feed_mpi_dataset'"),
    cli_case("cli_eval_other_image_size", "eval of a 28x28 model on a 32x32 data set: both sizes and both files",
             ["FEED", "eval", "--data", "{dir}/bad.h5", "{ckpt}"], 2,
             r"model <ckpt> was trained on 28x28 images, <bad> has 32x32",
             prepare=data_32),
    cli_case("cli_mpirun_wrong_np", "mpirun -np 2 for a pfeed job with 2 teachers: how many ranks, once, nothing written",
             [], 2, r"run\.mode = pfeed needs 3 MPI ranks .*this job has 2\n  hint: mpirun -np 3 feed_mpi <cfg>",
             prepare=lambda ctx: setattr(ctx, "cmd", G.mpi + ["-np", "2", G.feed, ctx.ini(), "run.mode=pfeed",
                                                              f"distill.teachers={G.ckpt},{G.run2}/{E2}"]),
             keep=lambda ctx, r: (expect_no_run_dir(ctx), ctx.expect(r.err.count("error:") == 1,
                                                                     "one message for the job"))),
    cli_case("cli_sfeed_one_rank", "an sfeed job of 2 generations started without mpirun: how many ranks",
             ["FEED", "{cfg}", "run.mode=sfeed", "sfeed.generations=2", "sfeed.teacher={ckpt}"], 2,
             r"run\.mode = sfeed needs 2 MPI ranks \(one per generation 1\.\.2; generation 0 is <ckpt>\); this job has 1",
             keep=lambda ctx, r: expect_no_run_dir(ctx)),
    cli_case("cli_convert_no_arguments", "feed_convert without arguments: the usage", ["CONVERT"], 2,
             r"usage: feed_convert (.*\n)*feed_convert: error: expected a format, a folder and an output file"),
    cli_case("cli_convert_unknown_format", "feed_convert cifar11: the formats there are", ["CONVERT", "cifar11",
                                                                                           "{dir}", "{dir}/o.h5"], 2,
             r"unknown format 'cifar11'\n.*\n  hint: formats: cifar10, cifar100, mnist, fashion-mnist"),
    cli_case("cli_convert_missing_folder", "feed_convert of a folder that is not there: the folder, the OS reason",
             ["CONVERT", "fashion-mnist", "{dir}/nope", "{dir}/o.h5"], 2,
             r"missing folder '<dir>/nope': No such file or directory"),
]

CASES = (CONFIG_CASES + DATASET_CASES + CONVERT_CASES + CHECKPOINT_CASES + RESUME_CASES + RUN_DIR_CASES + TEACHER_CASES
         + SIGNAL_CASES + FILESYSTEM_CASES + CLI_CASES)


# ---- preparation and main ---------------------------------------------------------------------

def make_small_data(src, dst):
    """The fixture's first 600 training and 200 test images, its attributes as they are."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        for split, n in (("train", 600), ("test", 200)):
            for what in ("images", "labels"):
                g.create_dataset(f"{split}/{what}", data=f[f"{split}/{what}"][:n], chunks=True, compression="gzip")


def write_idx(data, folder):
    """The same images as IDX files, gzip'ed as Fashion-MNIST is distributed."""
    os.makedirs(folder)
    with h5py.File(data, "r") as f:
        for split, stem in (("train", "train"), ("test", "t10k")):
            x = f[f"{split}/images"][()][..., 0]
            y = f[f"{split}/labels"][()].astype(np.uint8)
            with gzip.open(os.path.join(folder, f"{stem}-images-idx3-ubyte.gz"), "wb") as g:
                g.write(struct.pack(">IIII", 0x803, len(x), x.shape[1], x.shape[2]) + x.tobytes())
            with gzip.open(os.path.join(folder, f"{stem}-labels-idx1-ubyte.gz"), "wb") as g:
                g.write(struct.pack(">II", 0x801, len(y)) + y.tobytes())


def base_runs():
    """The real checkpoints the cases start from, made in parallel: a 1-epoch run (G.ckpt), a
    finished 2-epoch run folder (G.run2) and the uninterrupted reference of SIGNAL_RUN."""
    base = os.path.join(G.work, "base")
    cfg = os.path.join(base, "base.ini")
    with open(cfg, "w") as f:
        f.write(TINY.replace("{run}", os.path.join(base, "run")).replace("{data}", G.data))
    jobs = {"run": [], "run2": ["train.epochs=2"], "sigref": SIGNAL_RUN}
    procs = {k: subprocess.Popen([G.feed, cfg, f"run.dir={os.path.join(base, k)}"] + v, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=G.env) for k, v in jobs.items()}
    for k, p in procs.items():
        out, _ = p.communicate(timeout=600)
        if p.returncode:
            sys.exit(f"FAIL: the base run '{k}' exited {p.returncode}:\n{out}")
    G.ckpt = os.path.join(base, "run", CKPT_NAME)
    G.run2 = os.path.join(base, "run2")
    G.ref = harness.tensors(os.path.join(base, "sigref", "teacher_0.h5"))


def probe_privileges():
    probe = os.path.join(G.work, "probe_mnt")
    os.makedirs(probe)
    if os.geteuid() == 0:
        G.can_mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                                     capture_output=True).returncode == 0
        if G.can_mount:
            subprocess.run(["umount", probe], capture_output=True)
        r = subprocess.run([G.feed, "--version"], capture_output=True, user=NOBODY, group=NOBODY, extra_groups=[],
                           env=G.env, cwd="/")
        G.nobody_ok = r.returncode == 0
    else:
        G.nobody_ok = True  # permissions apply to us already
    os.rmdir(probe)


def unmount_below(folder):
    """Mounts a killed earlier run of this script left in its work folder."""
    try:
        with open("/proc/mounts") as f:
            points = [line.split()[1] for line in f]
    except OSError:
        return
    for m in sorted(points, key=len, reverse=True):
        if m.startswith(os.path.abspath(folder) + "/"):
            subprocess.run(["umount", "-l", m], capture_output=True)


def child_env():
    env = dict(os.environ)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    env["OMP_NUM_THREADS"] = "1"
    # sanitizer builds: a failed huge allocation returns NULL (feed_mpi reports it) instead of
    # ASan aborting; leak detection off as in tests/CMakeLists.txt (exit() from a fatal error)
    asan = [o for o in env.get("ASAN_OPTIONS", "").split(":") if o]
    if not any(o.startswith("allocator_may_return_null") for o in asan):
        asan.append("allocator_may_return_null=1")
    if not any(o.startswith("detect_leaks") for o in asan):
        asan.append("detect_leaks=0")
    env["ASAN_OPTIONS"] = ":".join(asan)
    return env


def main():
    args = harness.parse_args([
        ("--only", {"default": "", "help": "run the cases whose name matches this regex"}),
        ("--category", {"default": "", "choices": ("",) + CATEGORIES}),
        ("--jobs", {"type": int, "default": 2, "help": "cases run side by side (default 2)"}),
        ("--list", {"action": "store_true", "help": "print the table and exit"}),
    ])
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    cases = [c for c in CASES if re.search(args.only, c.name) and (not args.category or c.category == args.category)]
    if args.list:
        for c in cases:
            bad = f"  [known_bad: {c.known_bad}]" if c.known_bad else ""
            print(f"{c.category:11s} {c.name:34s} exit {c.code:3d}  {c.story}{bad}")
        return
    unmount_below(args.work)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    os.chmod(args.work, 0o755)
    G.feed, G.mpiexec, G.fixture = os.path.abspath(args.feed_mpi), args.mpiexec, os.path.abspath(args.data)
    G.work = os.path.abspath(args.work)
    G.mpi = [args.mpiexec, "--oversubscribe", "--bind-to", "none"]
    convert = os.path.join(os.path.dirname(G.feed), "feed_convert")
    G.convert = convert if os.access(convert, os.X_OK) else ""
    G.env = child_env()
    t0 = time.time()
    G.data = os.path.join(G.work, "base", "data.h5")
    os.makedirs(os.path.dirname(G.data))
    make_small_data(G.fixture, G.data)
    write_idx(G.data, os.path.join(G.work, "base", "idx"))
    G.idx = os.path.join(G.work, "base", "idx")
    base_runs()
    probe_privileges()
    print(f"base data set, checkpoints and reference run ready in {time.time() - t0:.1f} s; "
          f"tmpfs mounts {'yes' if G.can_mount else 'no'}, unprivileged runs {'yes' if G.nobody_ok else 'no'}", flush=True)

    # the long cases (signals, concurrent runs, mounts) first so they overlap the short ones
    order = sorted(cases, key=lambda c: (c.category not in ("signal", "filesystem"), CASES.index(c)))
    printing = threading.Lock()

    def one(case):
        o = run_case(case)
        with printing:
            case_, status, fails, r, seconds = o
            extra = f"  ({fails[0].splitlines()[0]})" if status == "SKIP" else ""
            print(f"{status:5s} {case.category:10s} {case.name} ({seconds:.1f} s){extra}", flush=True)
        return o

    t1 = time.time()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(one, order))
    ok = report(outcomes, time.time() - t1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
