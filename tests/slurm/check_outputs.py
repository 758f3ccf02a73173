#!/usr/bin/python3
"""check_outputs.py - assertions on the outputs of the SLURM job scripts (test_slurm_jobs.sh).

    check_outputs.py scratch RUN_DIR --ranks N --epochs E [--stopped]
    check_outputs.py pfeed RUN_DIR --epochs E [--stopped]
    check_outputs.py sfeed RUN_DIR --first G --ranks N --epochs E [--stopped]
        scratch: every rank r: teacher_<r>.h5 (metrics teacher<r>_metrics.jsonl, checkpoints
        teacher<r>_e*_s*.h5); pfeed: the student, student.h5 (student_metrics.jsonl,
        student_e*_s*.h5); sfeed: generations G..G+N-1, gen<g>.h5 (gen<g>_metrics.jsonl,
        gen<g>_e*_s*.h5), each epoch line naming the generation before as teacher_gen. Each at epoch E with step = E * steps/epoch; the metrics list
        epochs 1..E exactly once; with --stopped: the run was stopped and resumed at least
        once, each "stopped" event directly followed by a "resumed" event at the same epoch
        and step, the checkpoint of that step exists and is complete, and training went on
        after the resume (epoch lines after it), up to epoch E.
    check_outputs.py speed RUN_DIR --ranks N
        prints the slowest teacher's training img/s of its last epoch (to size later jobs).

Prints one "ok ..." or "FAIL ..." line per check; exit code 1 if any check failed. Checkpoint
integrity (CRC of every tensor) is checked separately with tools/ckpt_info.py.
"""
import argparse
import json
import os
import sys

try:
    import h5py
except ImportError as e:
    sys.exit(f"FAIL {e}: run with /usr/bin/python3 (Debian's python3-h5py)")

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def metrics(run_dir, prefix):
    path = os.path.join(run_dir, f"{prefix}_metrics.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def attrs(path):
    with h5py.File(path, "r") as f:
        return int(f.attrs["epoch"]), int(f.attrs["step"])


def outputs(a):
    """(label, prefix of checkpoints and metrics, final file) of every trained network."""
    if a.what == "pfeed":
        return [("student", "student", "student.h5")]
    if a.what == "sfeed":
        return [(f"generation {g}", f"gen{g}", f"gen{g}.h5") for g in range(a.first, a.first + a.ranks)]
    return [(f"rank {r}", f"teacher{r}", f"teacher_{r}.h5") for r in range(a.ranks)]


def run(a):
    for r, prefix, final_name in outputs(a):
        final = os.path.join(a.run_dir, final_name)
        if not check(os.path.isfile(final), f"{r}: {final} exists"):
            continue
        lines = metrics(a.run_dir, prefix)
        epochs = [l for l in lines if "event" not in l]
        check([l["epoch"] for l in epochs] == list(range(1, a.epochs + 1)),
              f"{r}: metrics list epochs 1..{a.epochs} once each: {[l['epoch'] for l in epochs]}")
        if a.what == "sfeed" and prefix != "gen0":
            g = int(prefix[3:])
            check(all(l.get("teacher_gen") == g - 1 for l in epochs), f"{r}: learned from generation {g - 1}")
        steps_per_epoch = epochs[0]["step"] if epochs else 0
        e, s = attrs(final)
        check(e == a.epochs and s == a.epochs * steps_per_epoch,
              f"{r}: final checkpoint at epoch {e} step {s} (expected {a.epochs}, {a.epochs * steps_per_epoch})")
        if not a.stopped:
            continue
        events = [(i, l) for i, l in enumerate(lines) if "event" in l]
        stops = [(i, l) for i, l in events if l["event"] == "stopped"]
        check(len(stops) >= 1, f"{r}: {len(stops)} 'stopped' event(s) in the metrics")
        for i, stop in stops:
            nxt = lines[i + 1] if i + 1 < len(lines) else {}
            check(nxt.get("event") == "resumed" and nxt.get("epoch") == stop["epoch"]
                  and nxt.get("step") == stop["step"],
                  f"{r}: stopped at epoch {stop['epoch']} step {stop['step']}, next line resumes "
                  f"from the same step: {nxt}")
            check(0 < stop["step"] < a.epochs * steps_per_epoch,
                  f"{r}: the stop came mid-run (step {stop['step']} of {a.epochs * steps_per_epoch})")
            after = [l["epoch"] for l in lines[i + 1:] if "event" not in l]
            check(after and after[0] == stop["epoch"] + 1 and after[-1] == a.epochs,
                  f"{r}: after the resume training went on from epoch {stop['epoch'] + 1} "
                  f"to {a.epochs}: {after}")
            ck = os.path.join(a.run_dir, f"{prefix}_e{stop['epoch']:04d}_s{stop['step']:08d}.h5")
            if check(os.path.isfile(ck), f"{r}: checkpoint of the stop {os.path.basename(ck)} exists"):
                check(attrs(ck) == (stop["epoch"], stop["step"]),
                      f"{r}: it holds epoch {stop['epoch']} step {stop['step']}: {attrs(ck)}")
        resumed = [l for l in lines if l.get("event") == "resumed"]
        check(len(resumed) == len(stops), f"{r}: as many resumes as stops ({len(resumed)})")


def speed(a):
    rates = []
    for _, prefix, _ in outputs(a):
        epochs = [l for l in metrics(a.run_dir, prefix) if "event" not in l]
        rates.append(epochs[-1]["img_per_s"])
    print(f"{min(rates):.1f}")


ap = argparse.ArgumentParser()
ap.add_argument("what", choices=["scratch", "pfeed", "sfeed", "speed"])
ap.add_argument("run_dir")
ap.add_argument("--ranks", type=int, default=1)
ap.add_argument("--first", type=int, default=0, help="sfeed: the first generation the ranks train")
ap.add_argument("--epochs", type=int)
ap.add_argument("--stopped", action="store_true")
args = ap.parse_args()
if args.what == "speed":
    speed(args)
    sys.exit(0)
run(args)
sys.exit(1 if failures else 0)
