#!/usr/bin/python3
"""replica_bench.py - where a data-parallel student's step time goes (docs/data_parallel.md).

Runs short distillation jobs on real Fashion-MNIST with P = 1, 2 and 4 student replicas
(distill.student_ranks) and prints, per global step, the time split into
  compute     forward, losses, backward and optimizer step of one replica
  allreduce   waiting for the gradient reductions after the backward (what the overlap did
              not hide; from the student's allreduce_wait_s)
  transport   waiting for the teachers' outputs (the student's wait_s_<n>, summed)
for each teacher source: `cache` (outputs read from feature caches: the student alone) and
`mpi` (one rank per teacher computing the whole minibatch and sending each replica its rows).
With P > 1 and the cache source it also runs with FEED_REPLICAS_OVERLAP=0 (every reduction
started after the backward): the allreduce wait there is the whole reduction, so the
difference to the row above is what the overlap hides.
Every configuration runs --rounds times, alternating; the median is printed.

    tools/replica_bench.py --build build [--data F.h5] [--replicas 1,2,4] [--rounds 3]
                           [--model resnet20] [--batch 128] [--steps 20] [--teachers 2]
                           [--threads 1] [--sources cache,mpi] [--work DIR]

Teachers: --teachers N ResNet-20s trained for one epoch on the same subset first (their
accuracy does not matter for timing). More ranks than cores are oversubscribed (say so in a
report: P = 4 on a 2-core machine measures contention, not scaling).
"""
import argparse, json, os, shutil, statistics, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--build", default=os.path.join(here, "..", "build"))
ap.add_argument("--data", default=None, help="data set (default: <build>/fixtures/fashion_mnist.h5)")
ap.add_argument("--replicas", default="1,2,4")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--model", default="resnet20")
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--steps", type=int, default=20, help="steps of the measured epoch")
ap.add_argument("--teachers", type=int, default=2)
ap.add_argument("--threads", type=int, default=1, help="OMP threads per rank")
ap.add_argument("--sources", default="cache,mpi")
ap.add_argument("--work", default="/tmp/feed_replica_bench")
a = ap.parse_args()

feed = os.path.join(a.build, "feed_mpi")
data = a.data or os.path.join(a.build, "fixtures", "fashion_mnist.h5")
for f in (feed, data):
    if not os.path.exists(f):
        sys.exit(f"replica_bench.py: {f} not found (build first; the data set is made by ctest -R fashion_dataset "
                 "or feed_convert fashion-mnist)")
env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
shutil.rmtree(a.work, ignore_errors=True)
os.makedirs(a.work)
per_class = a.batch * a.steps // 10  # 10 classes: exactly `steps` steps per epoch
ini = os.path.join(a.work, "bench.ini")
with open(ini, "w") as f:
    f.write(f"[run]\nseed = 1\nthreads = {a.threads}\nprogress_s = 0\n[data]\npath = {data}\n"
            f"subset_per_class = {per_class}\n[model]\narch = {a.model}\n"
            f"[train]\nbatch = {a.batch}\nepochs = 1\nlr = 0.05\n[checkpoint]\nkeep_best = false\n"
            f"[cache]\ndir = {a.work}/cache\nviews = 1\n")


def run(ranks, *over, overlap=True):
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(ranks), feed, ini] + list(over)
    e = dict(env, FEED_REPLICAS_OVERLAP="1" if overlap else "0")
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e)
    if r.returncode != 0:
        sys.exit(f"replica_bench.py: {' '.join(cmd)} failed:\n{r.stdout[-3000:]}")
    return r.stdout


print(f"# teachers: {a.teachers} x resnet20, 1 epoch of {per_class * 10} images", flush=True)
run(a.teachers, "run.mode=scratch", f"run.dir={a.work}/teachers", "model.arch=resnet20")
teachers = ",".join(f"{a.work}/teachers/teacher_{k}.h5" for k in range(a.teachers))
sources = a.sources.split(",")
if "cache" in sources:
    run(1, "run.mode=cache", f"distill.teachers={teachers}", f"run.dir={a.work}/cache_job")

replicas = [int(p) for p in a.replicas.split(",")]
configs = [(src, P, True) for src in sources for P in replicas]
configs += [("cache", P, False) for P in replicas if P > 1 and "cache" in sources]
results = {}  # (source, P, overlap) -> [(step_ms, allreduce_ms, transport_ms)]
for rnd in range(a.rounds):
    for src, P, overlap in configs:
            d = f"{a.work}/run_{src}_{P}_{int(overlap)}"
            shutil.rmtree(d, ignore_errors=True)
            ranks = P + (a.teachers if src == "mpi" else 0)
            run(ranks, "run.mode=pfeed", f"distill.teachers={teachers}", f"distill.source={src}",
                f"distill.student_ranks={P}", f"run.dir={d}", overlap=overlap)
            m = [json.loads(l) for l in open(f"{d}/student_metrics.jsonl") if '"epoch"' in l and '"event"' not in l][-1]
            step = a.batch / m["img_per_s"]
            allreduce = m.get("allreduce_wait_s", 0.0) / a.steps
            transport = sum(v for k, v in m.items() if k.startswith("wait_s_")) / a.steps
            results.setdefault((src, P, overlap), []).append((step * 1e3, allreduce * 1e3, transport * 1e3))
            print(f"round {rnd + 1} source={src} P={P} overlap={int(overlap)} step_ms={step * 1e3:.1f}", flush=True)

cores = os.cpu_count()
print(f"\n# {a.model} student, global batch {a.batch}, {a.threads} thread(s) per rank, {cores} cores, "
      f"median of {a.rounds} rounds")
print("source  P  overlap  ranks  step_ms  compute_ms  allreduce_ms  transport_ms  img_per_s  speedup")
base = {}
for src, P, overlap in configs:
    rows = results[(src, P, overlap)]
    step, allr, trans = (statistics.median(r[i] for r in rows) for i in range(3))
    base.setdefault(src, step)
    ranks = P + (a.teachers if src == "mpi" else 0)
    print(f"{src:6s} {P:2d} {'yes' if overlap else 'no':>8s} {ranks:6d} {step:8.1f} {step - allr - trans:11.1f} "
          f"{allr:13.2f} {trans:13.2f} {a.batch / step * 1e3:10.0f} {base[src] / step:8.2f}"
          + ("  (oversubscribed)" if ranks * a.threads > cores else ""))
