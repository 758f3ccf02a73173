#!/usr/bin/env python3
"""train.on_nonfinite = skip_step on real Fashion-MNIST: a dropped step leaves no trace.

The trainer's test hooks put a NaN into the logits' gradient of chosen global steps
(FEED_TEST_NONFINITE_STEPS: the step's forward is real, so BN statistics - the student's and
the NTLs' - and the terms' losses have moved before the check sees the NaN), or leave chosen
steps out entirely (FEED_TEST_DROP_STEPS: the reference). A skipped step must equal a step that
never ran:
 1. scratch: NaN at steps 3 and 7 with skip_step gives bit for bit the checkpoint of the run
    that left them out, the same epoch figures, skipped_steps = 2, one line per skipped step;
 2. pfeed (in-process teacher, NTL with BN): the same over two epochs, the FEED loss included;
 3. exact resume: one epoch with a skip, then resumed to two with another, equals the
    uninterrupted run, skip counters included;
 4. max_skipped_steps non-finite steps in a row end the run (exit 1) naming the count, with
    nothing saved from that state;
 5. the default (stop) ends the run at the first NaN.
"""
import glob, json, os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
import harness
from harness import check, finish, run, same, tensors, write_ini

args, W, MPI = harness.start()
ini = write_ini(W, "skip.ini", f"[run]\nmode = scratch\nseed = 4\nthreads = 1\n"
                f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 16\n"
                "[train]\nbatch = 8\nlr = 0.05\nepochs = 1\neval_every = 1\non_nonfinite = skip_step\n"
                "[model]\narch = resnet20\n")  # 160 images: 20 steps per epoch


def job(name, hooks=None, extra=()):
    env = dict(os.environ)
    env.pop("FEED_TEST_NONFINITE_STEPS", None), env.pop("FEED_TEST_DROP_STEPS", None)
    env.update(hooks or {})
    cmd = [args.feed_mpi, ini, f"run.dir={W}/{name}"] + list(extra)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=600)


def metrics(name, prefix):
    rows = [json.loads(l) for l in open(f"{W}/{name}/{prefix}_metrics.jsonl") if l.strip()]
    rows = [r for r in rows if "epoch" in r and "event" not in r]
    for r in rows:
        for k in ("seconds", "img_per_s", "time", "host"):
            r.pop(k, None)
    return rows


def model_tensors(path, drop_counters=True):
    t = tensors(path)
    return {k: v for k, v in t.items() if not (drop_counters and k.startswith("train/skipped"))}


def newest(name, prefix):
    return sorted(glob.glob(f"{W}/{name}/{prefix}_e*.h5"))[-1]


# 1. scratch
a = job("scratch_nan", {"FEED_TEST_NONFINITE_STEPS": "3,7"})
b = job("scratch_drop", {"FEED_TEST_DROP_STEPS": "3,7"})
check(a.returncode == 0 and b.returncode == 0, f"both scratch runs finish (exit {a.returncode}, {b.returncode})")
lines = [l for l in a.stdout.splitlines() if "skipped:" in l]
print("\n".join(lines))
check(len(lines) == 2 and "step 4 of epoch 1 (step 4 of the run) skipped: the gradient of the logits holds nan" in lines[0]
      and "(1 in a row, the run stops at 10)" in lines[0], "one line per skipped step, naming step and cause")
ma, mb = metrics("scratch_nan", "teacher0"), metrics("scratch_drop", "teacher0")
check(ma and ma[0].get("skipped_steps") == 2 and mb[0].get("skipped_steps") == 0, "skipped_steps = 2 in the metrics")
for r in ma + mb:
    r.pop("skipped_steps", None)
check(ma == mb, "the epoch figures equal those of the run without the two steps")
check(same(model_tensors(f"{W}/scratch_nan/teacher_0.h5"), model_tensors(f"{W}/scratch_drop/teacher_0.h5")),
      "the final checkpoint is bit-identical to the run without the two steps (weights, BN statistics, momentum)")
t = tensors(f"{W}/scratch_nan/teacher_0.h5")
check(int(t["train/skipped_steps"]) == 2, "the checkpoint counts the skipped steps")

# 2. pfeed with an in-process teacher: NTL BN statistics and the FEED loss restored too
teacher = f"{W}/scratch_drop/teacher_0.h5"
pf = ["run.mode=pfeed", "distill.source=local", f"distill.teachers={teacher}", "feed.ntl_bn=true", "train.epochs=2",
      "run.seed=5"]
a = job("pfeed_nan", {"FEED_TEST_NONFINITE_STEPS": "3,25"}, pf)
b = job("pfeed_drop", {"FEED_TEST_DROP_STEPS": "3,25"}, pf)
check(a.returncode == 0 and b.returncode == 0, f"both pfeed runs finish (exit {a.returncode}, {b.returncode})")
ma, mb = metrics("pfeed_nan", "student"), metrics("pfeed_drop", "student")
check(len(ma) == 2 and [r.get("skipped_steps") for r in ma] == [1, 1], "one skipped step in each epoch")
for r in ma + mb:
    r.pop("skipped_steps", None)
check(ma == mb and all("feed_loss_1" in r for r in ma), "epoch figures, FEED loss included, equal the reference")
fa, fb = model_tensors(f"{W}/pfeed_nan/student.h5"), model_tensors(f"{W}/pfeed_drop/student.h5")
check(any(k.startswith("ntl/0/") and "running_var" in k for k in fa), "the NTL has BN statistics in the checkpoint")
check(same(fa, fb), "student, NTL and momentum bit-identical to the run without the two steps")

# 3. exact resume across skips
c = job("pfeed_resume", {"FEED_TEST_NONFINITE_STEPS": "3"}, pf[:-2] + ["train.epochs=1", "run.seed=5"])
c2 = job("pfeed_resume", {"FEED_TEST_NONFINITE_STEPS": "25"}, pf)
check(c.returncode == 0 and c2.returncode == 0 and "resumed from" in c2.stdout, "1 epoch, then resumed to 2")
check(same(model_tensors(f"{W}/pfeed_resume/student.h5", False), model_tensors(f"{W}/pfeed_nan/student.h5", False)),
      "the resumed run ends bit-identical to the uninterrupted one, skip counters included")

# 4. too many in a row
r = job("in_a_row", {"FEED_TEST_NONFINITE_STEPS": "3,4,5"}, ["train.max_skipped_steps=3"])
print(r.stdout[-600:])
check(r.returncode == 1 and "training diverged at step 6 of epoch 1" in r.stdout
      and "(3 non-finite steps in a row, train.max_skipped_steps = 3)" in r.stdout
      and r.stdout.count("skipped:") == 2, "the 3rd non-finite step in a row ends the run, naming the count")
check(not glob.glob(f"{W}/in_a_row/*.h5*"), "nothing was saved from that state")

# 5. the default stops at once
r = job("stop", {"FEED_TEST_NONFINITE_STEPS": "3"}, ["train.on_nonfinite=stop"])
check(r.returncode == 1 and "training diverged at step 4 of epoch 1" in r.stdout and "skipped:" not in r.stdout,
      "train.on_nonfinite = stop ends the run at the first non-finite step")
finish()
