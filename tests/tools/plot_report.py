#!/usr/bin/env python3
"""tools/plot.py and tools/report.py on short real runs.

1. A 2-rank scratch job (seeds 100 and 101 by rank) and a pFEED run of one student from its
   teacher 0, 2 epochs each on 50 training images per class of Fashion-MNIST.
2. plot.py draws both runs' learning curves (PNG and SVG), and the reconstruction curves and
   CKA matrix of a small synthetic analyze_metrics.jsonl (feed_mpi analyze's format): each
   output must be a valid, non-blank PNG or an SVG document, labelled from the runs' config.
3. report.py's table, Markdown and CSV, against the per-seed values, mean, sample std and
   wall time computed here from the metrics files.
4. A folder without metrics files: exit 2 and one clear message from both tools.
"""
import csv
import io
import json
import os
import statistics
import struct
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from harness import check, finish, run, start, write_ini  # noqa: E402

try:
    from PIL import Image
except ImportError as e:
    sys.exit(f"FAIL: {e}: install python3-pil (python3-matplotlib brings it; ./tools/setup.sh does)")

args, work, mpirun = start([("--tools", {"required": True})])
plot, report = os.path.join(args.tools, "plot.py"), os.path.join(args.tools, "report.py")
common = (f"[data]\npath = {args.data}\npad = 2\nsubset_per_class = 50\n[model]\narch = resnet20\n"
          "[train]\nepochs = 2\nbatch = 50\nlr = 0.05\n")


def train(cmd, what):
    """Run a training command; stop the test if it fails (nothing after it can work)."""
    r = run(cmd)
    check(r.returncode == 0, f"{what} exits 0")
    if r.returncode:
        print(r.stdout[-3000:])
        finish()


# --- 1. two short real runs ---
scratch, pfeed = os.path.join(work, "scratch"), os.path.join(work, "pfeed")
ini = write_ini(work, "scratch.ini", f"[run]\nmode = scratch\ndir = {scratch}\nseed = 100\nthreads = 1\n" + common)
train(mpirun + ["-np", "2", args.feed_mpi, ini], "2-rank scratch job")
ini = write_ini(work, "pfeed.ini", f"[run]\nmode = pfeed\ndir = {pfeed}\nseed = 100\nthreads = 1\n" + common +
                f"[distill]\nteachers = {scratch}/teacher_0.h5\nsource = local\n")
train([args.feed_mpi, ini], "pFEED run from teacher 0")


def tool(*cmd):
    return run(["/usr/bin/python3"] + list(cmd), timeout=300)


def png_problems(path):
    """What is wrong with a PNG figure ([] if nothing): signature, IHDR size, decoding,
    colours (a blank or one-colour image is wrong)."""
    if not os.path.isfile(path):
        return ["missing"]
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return ["no PNG signature and IHDR chunk"]
    width, height = struct.unpack(">II", data[16:24])
    problems = [] if 300 <= width <= 4000 and 200 <= height <= 4000 else [f"odd size {width}x{height}"]
    try:
        with Image.open(path) as im:
            im.load()
            colours = im.convert("RGB").getcolors(maxcolors=1 << 20) or []
            if im.size != (width, height):
                problems.append("PIL size differs from IHDR")
    except Exception as e:  # any decoding failure is the finding
        return problems + [f"does not decode: {e}"]
    if len(colours) < 8:
        problems.append(f"only {len(colours)} colours: blank?")
    return problems


def svg_text(path):
    """The text of an SVG file if it parses as XML with an <svg> root, else None."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    return open(path, encoding="utf-8").read() if root.tag.endswith("svg") else None


# --- 2. plot.py ---
for ext in ("png", "svg"):
    out = os.path.join(work, f"curves.{ext}")
    r = tool(plot, scratch, pfeed, "-o", out)
    check(r.returncode == 0, f"plot.py learning curves -> .{ext} exits 0" + ("" if not r.returncode else r.stdout))
if r.returncode == 0:
    problems = png_problems(os.path.join(work, "curves.png"))
    check(not problems, f"curves.png is a valid, non-blank PNG {problems}")
    text = svg_text(os.path.join(work, "curves.svg"))
    check(text is not None, "curves.svg parses as XML with an <svg> root")
    for label in ("scratch, seed 100", "scratch, seed 101", "pFEED, 1 teacher, seed 100", "FEED loss",
                  "test error (%)", "epoch"):
        check(text is not None and label in text, f"curves.svg shows '{label}'")

analyze = os.path.join(work, "analyze_metrics.jsonl")
with open(analyze, "w") as f:
    for net, losses in (("scratch_s100", [0.03, 0.022, 0.019]), ("pfeed1_s100", [0.025, 0.015, 0.012])):
        for e, loss in enumerate(losses, 1):
            f.write(json.dumps({"event": "probe_epoch", "network": net, "checkpoint": f"{net}/student.h5",
                                "arch": "resnet20-b", "epoch": e, "epochs": 3, "recon_loss": loss,
                                "map": [64, 7, 7]}) + "\n")
    f.write(json.dumps({"event": "pair", "a": "scratch_s100", "b": "pfeed1_s100", "cka": 0.83,
                        "ridge_error": 0.21}) + "\n")
for flag in ("--recon", "--cka"):
    out = os.path.join(work, f"{flag[2:]}.png")
    r = tool(plot, flag, analyze, "-o", out)
    check(r.returncode == 0, f"plot.py {flag} exits 0" + ("" if not r.returncode else r.stdout))
    problems = png_problems(out)
    check(not problems, f"{flag[2:]}.png is a valid, non-blank PNG {problems}")
r = tool(plot, "--cka", analyze, "-o", os.path.join(work, "cka.svg"))
text = svg_text(os.path.join(work, "cka.svg")) if r.returncode == 0 else None
check(text is not None and "0.83" in text, "cka.svg writes the CKA value 0.83 in its cell")

# --- 3. report.py against the metrics ---


def final_rows(folder):
    """{metrics file: last epoch's line} of a run folder, read here without the tools."""
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith("_metrics.jsonl"):
            lines = [json.loads(l) for l in open(os.path.join(folder, name)) if l.strip()]
            lines = [l for l in lines if "event" not in l]
            out[name] = (lines[-1], sum(l["seconds"] for l in lines), lines)
    return out


s_rows, p_rows = final_rows(scratch), final_rows(pfeed)
check(sorted(s_rows) == ["teacher0_metrics.jsonl", "teacher1_metrics.jsonl"] and list(p_rows) == ["student_metrics.jsonl"],
      f"metrics files: {sorted(s_rows)} and {sorted(p_rows)}")
s_err = [100 * s_rows[k][0]["test_error"] for k in sorted(s_rows)]
p_err = 100 * p_rows["student_metrics.jsonl"][0]["test_error"]
s_mean, s_std = statistics.mean(s_err), statistics.stdev(s_err)
s_wall = statistics.mean(s_rows[k][1] for k in s_rows)

r = tool(report, scratch, pfeed)
check(r.returncode == 0, "report.py (Markdown) exits 0")
print(r.stdout)
lines = r.stdout.splitlines()
want = (f"| scratch | 2 | {s_err[0]:.2f} (s100) / {s_err[1]:.2f} (s101) | {s_mean:.2f} ± {s_std:.2f} | "
        f"{s_wall / 60:.1f} min |")
check(want in lines, f"Markdown row of scratch: {want}")
want = f"| pFEED, 1 teacher | 1 | {p_err:.2f} (s100) | {p_err:.2f} | {p_rows['student_metrics.jsonl'][1] / 60:.1f} min |"
check(want in lines, f"Markdown row of pFEED: {want}")
check("ddof = 1" in r.stdout, "Markdown says the std is the sample std (ddof = 1)")

r = tool(report, scratch, pfeed, "--csv")
check(r.returncode == 0, "report.py --csv exits 0")
table = list(csv.DictReader(io.StringIO(r.stdout)))
check(len(table) == 3, f"CSV: one row per metrics file (3), got {len(table)}")
if len(table) == 3:
    expect = [("scratch", 100, s_err[0], s_mean, s_std), ("scratch", 101, s_err[1], s_mean, s_std),
              ("pFEED, 1 teacher", 100, p_err, p_err, None)]
    for row, (method, seed, value, mean, std) in zip(table, expect):
        ok = (row["method"] == method and int(row["seed"]) == seed and row["epoch"] == "2"
              and abs(float(row["test_error_percent"]) - value) < 1e-6 * max(1, value)
              and abs(float(row["group_mean"]) - mean) < 1e-4
              and (row["group_std"] == "" if std is None else abs(float(row["group_std"]) - std) < 1e-4))
        check(ok, f"CSV row {method}, seed {seed}: {value:.4f}, mean {mean:.4f}, std {std} (got {dict(row)})")

r = tool(report, scratch, "--csv", "--epoch", "best", "--metric", "test_loss")
best = [min(rows[2], key=lambda l: (l["test_error"], l["epoch"])) for _, rows in sorted(s_rows.items())]
table = list(csv.DictReader(io.StringIO(r.stdout))) if r.returncode == 0 else []
check([(int(t["epoch"]), round(float(t["test_loss"]), 4)) for t in table] ==
      [(b["epoch"], round(b["test_loss"], 4)) for b in best],
      "--epoch best --metric test_loss: the test loss of each run's lowest-test-error epoch")

# --- 4. bad input ---
empty = os.path.join(work, "empty")
os.makedirs(empty)
for name, cmd in (("plot.py", [plot, empty, "-o", os.path.join(work, "x.png")]), ("report.py", [report, empty])):
    r = tool(*cmd)
    msg = r.stdout.strip().splitlines()
    check(r.returncode == 2 and len(msg) == 1 and "no *_metrics.jsonl" in msg[0] and empty in msg[0],
          f"{name} on a folder without metrics: exit 2 and one message (got {r.returncode}: {msg})")
r = tool(plot, scratch, "-o", os.path.join(work, "x.jpeg"))
check(r.returncode == 2 and ".png, .svg or .pdf" in r.stdout, "plot.py to an unknown extension: exit 2")
r = tool(plot, "--cka", os.path.join(scratch, "teacher0_metrics.jsonl"), "-o", os.path.join(work, "x.png"))
check(r.returncode == 2 and "no pair lines" in r.stdout, "plot.py --cka on a file without pair lines: exit 2")
finish()
