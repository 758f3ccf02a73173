#!/usr/bin/python3
"""report.py - the comparison table of feed_mpi run folders, as Markdown or CSV.

    tools/report.py RUN_DIR... [--csv] [--metric test_error] [--epoch final|best]

Every metrics file of every folder (teacher<r>, student, gen<g>) is one member. Members whose
configuration is the same except the seed (and run.dir, threads, checkpointing, and whether
the teachers ran on MPI ranks or in the process) form one group, labelled by method and
teacher count from the checkpoints' config (e.g. "pFEED, 4 teachers"). Per group: the value
per seed, the mean and the sample standard deviation (ddof = 1; "-" for one member), and the
mean wall time per member, the sum of its epochs' `seconds`. Groups keep the order in which
they first appear in the arguments; members keep the argument order.
Errors (metrics ending in _error, stored as fractions) are shown in percent.
Exit code: 0, or 2 for unusable input (a folder without metrics files, an unknown metric).
"""
import argparse
import csv
import io
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runinfo import BadInput, group_runs, load_runs  # noqa: E402


def pick_row(series, epoch):
    """The metrics row of the final epoch, or of the best one (lowest test_error, the
    earliest of ties: the epoch <prefix>_best.h5 holds)."""
    if epoch == "final":
        return series.rows[-1]
    scored = [r for r in series.rows
              if isinstance(r.get("test_error"), (int, float)) and not math.isnan(r["test_error"])]
    if not scored:
        raise BadInput(f"{series.path}: no epoch with a test_error to pick the best from")
    return min(scored, key=lambda r: (r["test_error"], r["epoch"]))


def member_value(series, metric, epoch):
    """(epoch, value) of metric for one member; value in % for an error."""
    row = pick_row(series, epoch)
    if metric not in row:
        known = sorted(k for k, v in row.items() if isinstance(v, (int, float)))
        raise BadInput(f"{series.path}: no metric '{metric}' (it has: {', '.join(known)})")
    value = float(row[metric])
    return row["epoch"], 100.0 * value if metric.endswith("_error") else value


def summarize(groups, metric, epoch):
    """[{label, members: [(series, epoch, value)], mean, std, wall}] of the groups."""
    out = []
    for label, members in groups:
        rows = [(s,) + member_value(s, metric, epoch) for s in members]
        values = [r[2] for r in rows]
        out.append({"label": label, "members": rows, "mean": statistics.mean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else None,
                    "wall": statistics.mean(s.wall_seconds() for s in members)})
    return out


def fmt(value, metric):
    """Two decimals for errors in %, four significant digits otherwise."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    return f"{value:.2f}" if metric.endswith("_error") else f"{value:.4g}"


def seed_name(series):
    return f"s{series.seed}" if series.seed is not None else series.prefix


def markdown(summary, metric, epoch):
    """The table as Markdown, with a line that says what the numbers are."""
    what = f"{metric.replace('_', ' ')}{' %' if metric.endswith('_error') else ''}"
    lines = [f"{what} at the {'final' if epoch == 'final' else 'best (lowest test error)'} epoch of each run; "
             "mean ± sample std (ddof = 1) over the group's runs; wall time = the epochs' `seconds` summed, "
             "mean per run.", "",
             f"| method | runs | {what} per run | mean ± std | wall time per run |", "|---|---|---|---|---|"]
    for g in summary:
        per = " / ".join(f"{fmt(v, metric)} ({seed_name(s)})" for s, _, v in g["members"])
        spread = fmt(g["mean"], metric) + (f" ± {fmt(g['std'], metric)}" if g["std"] is not None else "")
        lines.append(f"| {g['label']} | {len(g['members'])} | {per} | {spread} | {g['wall'] / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def csv_text(summary, metric):
    """One CSV row per run, with its group's mean and sample std repeated on it (errors in %,
    the column then named <metric>_percent)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    column = metric + ("_percent" if metric.endswith("_error") else "")
    w.writerow(["method", "run_dir", "metrics_file", "seed", "epoch", column, "wall_s",
                "group_runs", "group_mean", "group_std"])
    for g in summary:
        for s, ep, v in g["members"]:
            w.writerow([g["label"], s.folder, os.path.basename(s.path), "" if s.seed is None else s.seed, ep,
                        f"{v:.6g}", f"{s.wall_seconds():.1f}", len(g["members"]), f"{g['mean']:.6g}",
                        "" if g["std"] is None else f"{g['std']:.6g}"])
    return buf.getvalue()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Example: tools/report.py runs/compare/{scratch,pfeed4}_s10{0,1}")
    ap.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders (run.dir of each run)")
    ap.add_argument("--csv", action="store_true", help="CSV, one row per run, instead of Markdown")
    ap.add_argument("--metric", default="test_error",
                    help="metrics key to report (default test_error; *_error are shown in %%)")
    ap.add_argument("--epoch", choices=["final", "best"], default="final",
                    help="the final epoch (default) or the one with the lowest test error")
    args = ap.parse_args(argv)
    try:
        summary = summarize(group_runs(load_runs(args.run_dirs)), args.metric, args.epoch)
    except BadInput as e:
        print(f"report.py: error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(csv_text(summary, args.metric) if args.csv else markdown(summary, args.metric, args.epoch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
