#!/usr/bin/env python3
"""Feature caches on real Fashion-MNIST (run.mode = cache, distill.source = cache).

 1. a cache job over MPI (2 ranks, 2 teachers, V = 2 views): one complete file per teacher;
    --check states its size before anything is written; a second run keeps them;
 2. a pFEED student of V epochs from the fp32 caches, on one rank, equals bit for bit the one
    with live (in-process) teachers; from bf16 caches it equals the one whose teacher ranks
    send bf16 over MPI; beyond V epochs it replays the stored views;
 3. a cache that does not fit is refused before the first step (and by --check), naming the
    mismatch: another teacher, another data set, another augmentation, seed, dtype, missing
    outputs (kd needs logits), samples not cached, no cache at all;
 4. a cache job stopped by SIGTERM, or killed, resumes and ends with the same file contents as
    an uninterrupted one; a student refuses the unfinished file meanwhile;
 5. a full disk (RLIMIT_FSIZE) ends the cache job with exit 1 naming the file, leaves only the
    .partial, and the next run completes it;
 6. tools/cache_view.py reads a sample's map, crop and flip with h5py; the bf16 cache decodes to
    the fp32 one within bf16 rounding.
"""
import glob, json, os, resource, shutil, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import harness
from harness import check, finish, run, same, tensors, write_ini
import h5py
import numpy as np

args, W, MPI = harness.start([("--tools", {"required": True})])
ini = write_ini(W, "cache.ini", f"[run]\nmode = scratch\ndir = {W}/teachers\nseed = 4\nthreads = 1\n"
                f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 20\n"
                "[train]\nbatch = 8\nlr = 0.05\nepochs = 1\neval_every = 100\n[model]\narch = resnet20\n"
                f"[cache]\ndir = {W}/cache\nviews = 2\n")

r = run(MPI + ["-np", "2", args.feed_mpi, ini])
check(r.returncode == 0, "two teachers trained (1 epoch)")
T = [f"{W}/teachers/teacher_{k}.h5" for k in (0, 1)]
teachers = "distill.teachers=" + ",".join(T)
student = ["run.mode=pfeed", teachers, "train.epochs=2"]


def without(argv, *keys):
    """argv without the overrides of these keys (a key may be overridden once)."""
    return [a for a in argv if a.split("=")[0] not in keys]


def feed(extra, np_=1, timeout=600, check_only=False, **kw):
    cmd = (MPI + ["-np", str(np_)] if np_ > 1 else []) + [args.feed_mpi] + (["--check"] if check_only else []) + \
          [ini] + list(extra)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, **kw)


def model(path):
    return tensors(path)


def datasets(path):
    """Every dataset of a cache file."""
    return tensors(path)


# 1. writing
r = feed(["run.mode=cache", teachers], check_only=True)
print(r.stdout[-800:])
check(r.returncode == 0 and "cache    1:" in r.stdout and "(new)" in r.stdout and "2 views x 200 samples" in r.stdout
      and "cache    total" in r.stdout and not os.path.exists(f"{W}/cache/teacher_0.h5"),
      "--check states each cache's size before anything is written")
r = feed(["run.mode=cache", teachers], np_=2)
print(r.stdout[-900:])
check(r.returncode == 0 and all(os.path.exists(f"{W}/cache/teacher_{k}.h5") for k in (0, 1))
      and not glob.glob(f"{W}/cache/*.partial") and "teacher forward alone" in r.stdout,
      "a 2-rank cache job writes one complete file per teacher and reports its speed")
r = feed(["run.mode=cache", teachers])
check(r.returncode == 0 and r.stdout.count("is complete and matches: kept") == 2, "a second run keeps complete caches")
r = feed(["run.mode=cache", teachers, "cache.compress=true", f"cache.dir={W}/cache_z"])
with h5py.File(f"{W}/cache_z/teacher_0.h5") as f:
    filters = f["final"].compression == "gzip" and f["final"].shuffle
check(r.returncode == 0 and filters and same(datasets(f"{W}/cache_z/teacher_0.h5"), datasets(f"{W}/cache/teacher_0.h5"))
      and os.path.getsize(f"{W}/cache_z/teacher_0.h5") < os.path.getsize(f"{W}/cache/teacher_0.h5"),
      "cache.compress: shuffle + deflate, the same values in a smaller file")

# 2. students
a = feed(student + ["distill.source=cache", f"run.dir={W}/s_cache"])
b = feed(student + ["distill.source=local", f"run.dir={W}/s_live"])
check(a.returncode == 0 and b.returncode == 0, f"students from cache and live finish ({a.returncode}, {b.returncode})")
check(same(model(f"{W}/s_cache/student.h5"), model(f"{W}/s_live/student.h5")),
      "V epochs from fp32 caches: the student is bit-identical to the one with live teachers")
r = feed(["run.mode=cache", teachers, "cache.dtype=bf16", f"cache.dir={W}/cache16"])
check(r.returncode == 0, "a bf16 cache job on one rank writes both teachers")
a = feed(student + ["distill.source=cache", "cache.dtype=bf16", f"cache.dir={W}/cache16", f"run.dir={W}/s_cache16"])
b = feed(student + ["distill.source=mpi", "transport.dtype=bf16", f"run.dir={W}/s_wire16"], np_=3)
check(a.returncode == 0 and b.returncode == 0 and
      same(model(f"{W}/s_cache16/student.h5"), model(f"{W}/s_wire16/student.h5")),
      "from bf16 caches the student equals the one whose teacher ranks send bf16 over MPI")
r = feed(without(student, "train.epochs") + ["train.epochs=3", "distill.source=cache", f"run.dir={W}/s_replay"])
check(r.returncode == 0 and "epoch  3/3" in r.stdout, "3 epochs from 2 views: epoch 3 replays view 1")

# 3. mismatches, each refused before the first step
other_data = f"{W}/other_data.h5"
shutil.copy(args.data, other_data)
with h5py.File(other_data, "r+") as f:
    f["train/images"][0, 0, 0, 0] ^= 1
cases = [
    ("teachers swapped", [f"distill.teachers={T[1]},{T[0]}"], "was written for another teacher checkpoint"),
    ("another data set", [f"data.path={other_data}"], "was written from another data set"),
    ("another padding", ["data.pad=3"], "was written with data.pad = 2, this job has 3"),
    ("another seed", ["run.seed=9"], "was written with cache.seed (augmentation seed) = 4, this job has 9"),
    ("another dtype", ["cache.dtype=fp16"], "holds fp32 outputs, this job asks for cache.dtype = fp16"),
    ("outputs missing", ["run.mode=distill", "distill.terms=kd"], "this job's distill.terms also need its logits"),
    ("samples not cached", ["data.subset_per_class=30"], "is not in its feature cache"),
    ("no cache", [f"cache.dir={W}/none"], "no feature cache"),
]
for name, extra, needle in cases:
    keys = [e.split("=")[0] for e in extra]
    r = feed(without(student, *keys) + ["distill.source=cache", f"run.dir={W}/bad"] + extra)
    ok = r.returncode == 2 and needle in r.stdout and "hint:" in r.stdout and "epoch  1" not in r.stdout
    check(ok, f"refused: {name}")
    if not ok:
        print(r.stdout[-600:])
r = feed(student + ["distill.source=cache", "data.pad=3"], check_only=True)
check(r.returncode == 2 and "was written with data.pad = 2, this job has 3" in r.stdout and "ready to run" not in r.stdout,
      "--check of a student refuses a cache that does not fit")
r = feed(student + ["distill.source=cache"], check_only=True)
check(r.returncode == 0 and r.stdout.count("fits this job") == 2, "--check of a student says each cache fits")
r = feed(without(student, "train.epochs") + ["distill.source=cache", "run.seed=9", "cache.seed=4", "train.epochs=1",
                                            f"run.dir={W}/s_seed9"])
check(r.returncode == 0, "a student with another run.seed uses the cache with cache.seed = the cache's")

# 4. interrupted cache jobs resume
big = ["run.mode=cache", f"distill.teachers={T[0]}", "data.subset_per_class=150", "cache.views=3"]
r = feed(big + [f"cache.dir={W}/whole"])
check(r.returncode == 0, "an uninterrupted reference cache")
reference = datasets(f"{W}/whole/teacher_0.h5")


def start_and(signum, folder):
    p = subprocess.Popen([args.feed_mpi, ini] + big + [f"cache.dir={folder}"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(f"{folder}/teacher_0.h5.partial"):
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(p.pid, signum)
    out, _ = p.communicate(timeout=120)
    return p.returncode, out


rc, out = start_and(signal.SIGTERM, f"{W}/stopped")
print(out[-400:])
check(rc == 0 and "stop signal" in out and os.path.exists(f"{W}/stopped/teacher_0.h5.partial")
      and not os.path.exists(f"{W}/stopped/teacher_0.h5"), "SIGTERM: the cache job stops cleanly, only a .partial")
r = feed(without(student, "distill.teachers") + ["distill.source=cache", f"cache.dir={W}/stopped", f"distill.teachers={T[0]}",
                    f"run.dir={W}/bad2", "data.subset_per_class=150", "cache.views=3"])
check(r.returncode == 2 and "only an unfinished .partial file" in r.stdout, "a student refuses the unfinished cache")
r = feed(big + [f"cache.dir={W}/stopped"])
check(r.returncode == 0 and "resuming" in r.stdout and same(datasets(f"{W}/stopped/teacher_0.h5"), reference),
      "the stopped cache job resumes and ends with the uninterrupted file's contents")
rc, out = start_and(signal.SIGKILL, f"{W}/killed")
r = feed(big + [f"cache.dir={W}/killed"])
check(r.returncode == 0 and same(datasets(f"{W}/killed/teacher_0.h5"), reference),
      "a killed cache job, run again, ends with the uninterrupted file's contents")

# 5. full disk
def small_disk():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (30_000_000, 30_000_000))  # MPI's own files fit


r = feed(big + [f"cache.dir={W}/full"], preexec_fn=small_disk)
print(r.stdout[-500:])
check(r.returncode == 1 and "is the disk full" in r.stdout and "teacher_0.h5.partial" in r.stdout
      and not os.path.exists(f"{W}/full/teacher_0.h5"), "a full disk: exit 1 naming the file, no complete-looking file")
r = feed(big + [f"cache.dir={W}/full"])
check(r.returncode == 0 and same(datasets(f"{W}/full/teacher_0.h5"), reference),
      "after the full disk the same command completes the cache")

# 6. reading with h5py
view = [sys.executable, f"{args.tools}/cache_view.py", "--json",
        "--view", "1"]
r32 = run(view + [f"{W}/cache/teacher_0.h5"])
r16 = run(view + [f"{W}/cache16/teacher_0.h5"])
try:
    v32, v16 = json.loads(r32.stdout), json.loads(r16.stdout)
    f32, f16 = np.array(v32["outputs"]["final"]), np.array(v16["outputs"]["final"])
    ok = (v32["crop"] == v16["crop"] and v32["flip"] == v16["flip"] and f32.shape == (64, 7, 7)
          and np.all(np.abs(f16 - f32) <= np.abs(f32) * 2.0 ** -8 + 1e-30))
except (ValueError, KeyError) as e:
    print(r32.stdout[-300:], r16.stdout[-300:], e)
    ok = False
check(ok, "cache_view.py: the map, crop and flip of a sample; bf16 decodes within bf16 rounding of fp32")
finish()
