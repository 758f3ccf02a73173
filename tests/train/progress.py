#!/usr/bin/env python3
"""Progress inside an epoch, as a person at a terminal and a batch log each see it.

1. Output to a pipe (a log, as under SLURM): a plain line every run.progress_s seconds, no
   carriage return or escape sequence anywhere; with progress_s = 0 none.
2. Under a pseudo-terminal (script(1)): one status line redrawn in place (carriage returns
   and erase-to-end-of-line), no log lines.
3. 2 ranks training side by side: only rank 0, the rank that prints the epoch lines,
   prints progress (no step reported twice).
4. pFEED (student + 1 teacher rank): each line has the teacher's wait.
"""
import os, re, shutil, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import check, finish, run, write_ini

args, W, MPI = harness.start()
LOG_LINE = re.compile(r"^  epoch 1/1  step (\d+)/(\d+)  loss [0-9.]+  \d+ img/s(.*)  epoch ETA \S+$", re.M)


def ini(name, extra=""):
    return write_ini(W, name + ".ini", f"[run]\nmode = scratch\ndir = {W}/{name}\nseed = 1\nthreads = 1\n"
                     f"progress_s = 0.2\n{extra}[data]\npath = {args.data}\nsubset_per_class = 50\n"
                     "[model]\narch = resnet20\n[train]\nepochs = 1\nbatch = 10\n")


# 1. a log
r = run([args.feed_mpi, ini("log")])
steps = [int(m.group(1)) for m in LOG_LINE.finditer(r.stdout)]
check(r.returncode == 0 and len(steps) >= 2 and steps == sorted(steps) and steps[-1] < 50,
      f"to a pipe: a progress line every 0.2 s ({len(steps)} lines, steps {steps})")
check("\r" not in r.stdout and "\x1b" not in r.stdout, "to a pipe: no carriage return or escape sequence")
r = run([args.feed_mpi, ini("quiet"), "run.progress_s=0"])
check(r.returncode == 0 and not LOG_LINE.search(r.stdout) and "epoch  1/1" in r.stdout,
      "run.progress_s = 0: the epoch line only")

# 2. a terminal
if shutil.which("script"):
    shutil.rmtree(f"{W}/log", ignore_errors=True)
    p = subprocess.run(["script", "-q", "-e", "-c", f"{args.feed_mpi} {ini('log')}", "/dev/null"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    out = p.stdout.decode(errors="replace")
    redraws = len(re.findall(r"\r  epoch 1/1 \[[#.]{20}] \d+/50 ", out))
    check(p.returncode == 0 and redraws >= 3, f"under a pseudo-terminal: the status line is redrawn ({redraws} times)")
    check("\x1b[K" in out and not LOG_LINE.search(out.replace("\r\n", "\n")),
          "under a pseudo-terminal: erased to the end of line, no log lines")
else:
    check(False, "script(1) (util-linux) is installed")

# 3. two ranks side by side
r = run(MPI + ["-np", "2", args.feed_mpi, ini("two")])
steps = [int(m.group(1)) for m in LOG_LINE.finditer(r.stdout)]
check(r.returncode == 0 and steps and len(steps) == len(set(steps)),
      f"2 ranks: progress from one rank only (steps {steps})")

# 4. pFEED with one teacher rank: its wait in every line
teacher = f"{W}/log/teacher_0.h5"
r = run(MPI + ["-np", "2", args.feed_mpi, ini("pfeed", "") , "run.mode=pfeed", f"distill.teachers={teacher}"])
extras = [m.group(3) for m in LOG_LINE.finditer(r.stdout)]
check(r.returncode == 0 and extras and all(re.fullmatch(r" wait \d+\.\d s", e) for e in extras),
      f"pFEED: every progress line has the teacher's wait ({extras[:3]})")
finish()
