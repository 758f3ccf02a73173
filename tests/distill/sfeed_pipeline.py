#!/usr/bin/env python3
"""Sequential FEED end to end on a tiny Fashion-MNIST subset.

 0. --check describes an sfeed job (generations, terms, schedule) and prints the launch line;
    a wrong rank count is refused with one message;
 1. strict (lag 0), generation 0 a checkpoint, K = 2: generation 2 equals bit for bit the
    student of a pfeed run with one in-process teacher set to generation 1's final
    checkpoint and generation 2's seed - the generations are the ordinary training path;
 2. pipelined (lag 1), generation 0 trained in the job, K = 2, as BAN (terms = kd, T = 1,
    alpha = 1): every generation learns from the scheduled version of the one before
    (teacher_epoch in the metrics), and a second run ends bit-identical;
 3. the same job SIGKILLed (every rank) at random moments and started again until it
    finishes ends bit-identical to the uninterrupted one;
 4. a generation's rank killed mid-run ends the job non-zero; the job's first lines map that
    rank to its generation; a restart resumes every generation and finishes.
"""
import functools, json, os, random, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import harness
from harness import check, finish, kill_job, run, same, tensors

args, W, MPI = harness.start([("--kills", {"type": int, "default": 4})])
write_ini = functools.partial(harness.write_ini, W)

common = (f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 16\n"
          "[train]\nbatch = 40\nlr = 0.05\nepochs = 3\neval_every = 100\n[model]\narch = resnet20\n")

# generation 0 for the strict job: a 1-epoch scratch network
t_ini = write_ini("t.ini", f"[run]\nmode = scratch\ndir = {W}/t\nseed = 3\nthreads = 1\n" + common)
r = run(MPI + ["-np", "1", args.feed_mpi, t_ini, "train.epochs=1"])
check(r.returncode == 0, "generation 0 (scratch) trains")
gen0 = f"{W}/t/teacher_0.h5"

# 0. --check and the rank count
strict_ini = write_ini("strict.ini", f"[run]\nmode = sfeed\ndir = {W}/strict\nseed = 20\nthreads = 1\n" + common +
                       f"[sfeed]\nteacher = {gen0}\ngenerations = 2\n")
r = run([args.feed_mpi, "--check", strict_ini])
check(r.returncode == 0 and "schedule strict" in r.stdout and f"mpirun -np 2 feed_mpi {strict_ini}" in r.stdout
      and "term     feed generation 1 from generation 0: NTL 64 -> 64" in r.stdout,
      "--check describes the generations, terms and schedule and prints the launch line")
r = run(MPI + ["-np", "3", args.feed_mpi, strict_ini], timeout=60)
check(r.returncode == 2 and r.stdout.count("needs 2 MPI ranks") == 1, "wrong rank count: one message, exit 2")

# 1. strict: generation 2 is a pfeed student of generation 1
r = run(MPI + ["-np", "2", args.feed_mpi, strict_ini])
check(r.returncode == 0, "strict sfeed, K = 2, exits 0")
if r.returncode:
    print(r.stdout[-3000:])
check("rank 1 trains generation 2 (seed 22) from generation 1 (rank 0)" in r.stdout,
      "the job's first lines map ranks to generations")
lines = [json.loads(l) for l in open(f"{W}/strict/gen2_metrics.jsonl") if '"epoch"' in l]
check([l.get("teacher_epoch") for l in lines] == [3, 3, 3] and all(l.get("teacher_gen") == 1 for l in lines),
      "strict: every epoch of generation 2 learns from generation 1 after its epoch 3")
r = run([args.feed_mpi, strict_ini, "run.mode=pfeed", "run.seed=22", f"run.dir={W}/pfeed",
         "distill.source=local", f"distill.teachers={W}/strict/gen1.h5"])
check(r.returncode == 0 and same(tensors(f"{W}/strict/gen2.h5"), tensors(f"{W}/pfeed/student.h5")),
      "strict: generation 2 is bit-identical to the pfeed student of generation 1 (seed 22)")

# 2. pipelined BAN, generation 0 trained in the job
def pipe_ini(name, out):
    return write_ini(name, f"[run]\nmode = sfeed\ndir = {W}/{out}\nseed = 30\nthreads = 1\n" + common +
                     "[sfeed]\ngenerations = 2\nlag_epochs = 1\nterms = kd\n[kd]\nT = 1\nalpha = 1\n")

def generations(out):
    return {g: tensors(f"{W}/{out}/gen{g}.h5") for g in range(3)}

t0 = time.time()
r = run(MPI + ["-np", "3", args.feed_mpi, pipe_ini("pipe.ini", "pipe")])
seconds = time.time() - t0
check(r.returncode == 0, f"pipelined BAN (lag 1, generation 0 in the job, 3 ranks) exits 0 ({seconds:.0f} s)")
if r.returncode:
    print(r.stdout[-3000:])
ref = generations("pipe")
lines = [json.loads(l) for l in open(f"{W}/pipe/gen2_metrics.jsonl") if '"epoch"' in l]
check([l.get("teacher_epoch") for l in lines] == [1, 2, 3], "pipelined: generation 2's epochs learn from "
      "generation 1 after its epochs 1, 2, 3 (min(lag + e, E))")
check(all("kd_loss" in l for l in lines), "BAN: the metrics show the KD loss")
r = run(MPI + ["-np", "3", args.feed_mpi, pipe_ini("pipe2.ini", "pipe2")])
check(r.returncode == 0 and all(same(ref[g], generations("pipe2")[g]) for g in range(3)),
      "pipelined: a second run is bit-identical (every generation)")

# 3. SIGKILL every rank at random moments, restart until finished
ini = pipe_ini("kill.ini", "kill")
random.seed(7)
kills = 0
for attempt in range(args.kills + 3):
    p = subprocess.Popen(MPI + ["-np", "3", args.feed_mpi, ini], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    if kills < args.kills:
        try:
            out, _ = p.communicate(timeout=random.uniform(0.2, 0.7) * seconds)
        except subprocess.TimeoutExpired:
            kill_job(p)
            kills += 1
            continue
    else:
        out, _ = p.communicate(timeout=600)
    if p.returncode == 0:
        break
check(kills >= 1 and all(os.path.exists(f"{W}/kill/gen{g}.h5") for g in range(3)),
      f"after {kills} SIGKILLs the job finished")
if all(os.path.exists(f"{W}/kill/gen{g}.h5") for g in range(3)):
    check(all(same(ref[g], generations("kill")[g]) for g in range(3)),
          "killed and resumed: every generation bit-identical to the uninterrupted run")

# 4. one rank dies
ini = pipe_ini("die.ini", "die")
p = subprocess.Popen(MPI + ["-np", "3", args.feed_mpi, ini], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     text=True, start_new_session=True)

def rank_pid(rank):
    for pid in os.listdir("/proc"):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env and ini.encode() in cmd:
            return int(pid)
    return None

victim, deadline = None, time.time() + 300
while time.time() < deadline and p.poll() is None:
    if os.path.isdir(f"{W}/die") and any(f.startswith("gen1_e") for f in os.listdir(f"{W}/die")):
        victim = rank_pid(1)
        break
    time.sleep(0.05)
if victim:
    os.kill(victim, signal.SIGKILL)
try:
    out, _ = p.communicate(timeout=120)
except subprocess.TimeoutExpired:
    out = kill_job(p)
check(victim is not None and p.returncode != 0, f"rank 1 killed: the job ends non-zero (rc {p.returncode})")
check("rank 1" in out and "sfeed: rank 1 trains generation 1" in out,
      "the output names rank 1, and the job's first lines say it trains generation 1")
r = run(MPI + ["-np", "3", args.feed_mpi, ini])
check(r.returncode == 0 and "resumed from" in r.stdout and all(os.path.exists(f"{W}/die/gen{g}.h5") for g in range(3)),
      "a restart resumes the generations and finishes")
finish()
