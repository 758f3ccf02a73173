#!/usr/bin/python3
"""plot.py - learning curves of feed_mpi runs, or the reconstruction probe's curves and CKA.

    tools/plot.py RUN_DIR... -o FIG.png [--mean] [--panels test_error,feed_loss] [--logy]
    tools/plot.py --recon analyze_metrics.jsonl... -o recon.png
    tools/plot.py --cka analyze_metrics.jsonl -o cka.svg

Learning curves: one panel per quantity that the runs' metrics files have, against the epoch:
test and train error (%), test and train loss, each distillation term's loss (feed_loss_<n>
and the like, one marker shape per teacher n) and the seconds the student waited for each
teacher (wait_s_<n>; left out when all are zero, as with teachers in the student's process).
Colour = method (runs with the same config but the seed, labelled from the checkpoints'
config, e.g. "pFEED, 4 teachers"); line style = seed. --mean draws one line per method, the
mean over its runs, with a band from the lowest to the highest run.
--recon: the reconstruction loss of each network after each probe epoch (`feed_mpi analyze`'s
probe_epoch lines); --cka: the CKA of every pair of networks as a heat map, values in the cells.
The format follows the output's extension: .png, .svg or .pdf.
Exit code: 0, or 2 for unusable input (a folder without metrics files, a file without the
lines asked for, an unknown panel or extension).
"""
import argparse
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runinfo import BadInput, group_runs, load_runs, read_jsonl  # noqa: E402

try:
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text: searchable, editable
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit(f"plot.py: {e}\n  hint: run it with /usr/bin/python3 (Debian's python3-matplotlib)")

STYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
TERM_TITLES = {"feed": "FEED", "kd": "KD", "at": "AT", "l1": "L1", "ft": "FT"}
BASE_PANELS = [("test_error", "test error (%)"), ("train_error", "train error (%)"),
               ("test_loss", "test loss (cross-entropy)"), ("train_loss", "train loss (objective)")]


def colour(i):
    """The i-th method colour (matplotlib's tab10)."""
    return plt.get_cmap("tab10")(i % 10)


def finite(xs, ys):
    """The (x, y) pairs with a finite y, as two lists (epochs without evaluation are NaN)."""
    pairs = [(x, y) for x, y in zip(xs, ys) if isinstance(y, (int, float)) and math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def discover_panels(series):
    """[(panel name, y label, [metrics keys])] in display order, for the keys the runs have:
    the base panels, then one per distillation term, then the per-teacher wait."""
    keys = set().union(*(row.keys() for s in series for row in s.rows))
    panels = [(k, label, [k]) for k, label in BASE_PANELS if k in keys]
    terms = {}
    for k in keys:
        m = re.fullmatch(r"([a-z0-9]+)_loss(?:_(\d+))?", k)
        if m and m.group(1) not in ("train", "test"):
            terms.setdefault(m.group(1), []).append(k)
    for term in sorted(terms, key=lambda t: list(TERM_TITLES).index(t) if t in TERM_TITLES else 99):
        per = " per teacher" if any(re.search(r"_\d+$", k) for k in terms[term]) else ""
        panels.append((f"{term}_loss", f"{TERM_TITLES.get(term, term)} loss{per}", sorted(terms[term], key=_key_n)))
    waits = sorted((k for k in keys if re.fullmatch(r"wait_s_\d+", k)), key=_key_n)
    if waits:
        panels.append(("wait", "wait for teacher (s per epoch)", waits))
    return panels


def _key_n(key):
    """Teacher number of a per-teacher key (feed_loss_3 -> 3), 0 for one without."""
    m = re.search(r"_(\d+)$", key)
    return int(m.group(1)) if m else 0


def select_panels(panels, series, wanted):
    """The panels asked for by --panels (all by default), without the wait panel when every
    wait is zero. Raises BadInput for a name the runs have no data for."""
    by_name = {p[0]: p for p in panels}
    if wanted:
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise BadInput(f"--panels: no data for {', '.join(missing)} in these runs "
                           f"(they have: {', '.join(by_name)})")
        return [by_name[w] for w in wanted]
    out = []
    for p in panels:
        if p[0] == "wait" and all(v == 0 for s in series for k in p[2] for v in finite(*s.values(k))[1]):
            print("plot.py: wait_s_<n> are all 0 (teachers in the student's process): no wait panel",
                  file=sys.stderr)
            continue
        out.append(p)
    return out


def scaled(key, ys):
    """Errors are stored as fractions; they are shown in percent."""
    return [100.0 * y for y in ys] if key.endswith("_error") else ys


def draw_runs(ax, panel, groups, mean):
    """One panel: a line per run (colour = group, style = seed) and key, or with mean=True the
    group's mean over its runs with a min-max band."""
    _, _, keys = panel
    for gi, (_, members) in enumerate(groups):
        for key in keys:
            marker = MARKERS[(_key_n(key) - 1) % len(MARKERS)] if len(keys) > 1 else None
            curves = [finite(*s.values(key)) for s in members]
            curves = [(xs, scaled(key, ys)) for xs, ys in curves if xs]
            if not curves:
                continue
            if mean:
                draw_mean(ax, curves, colour(gi), marker)
                continue
            for mi, (xs, ys) in enumerate(curves):
                ax.plot(xs, ys, color=colour(gi), linestyle=STYLES[mi % len(STYLES)], linewidth=1.4,
                        marker=marker or ("o" if len(xs) == 1 else None),  # one epoch: a dot, not nothing
                        markersize=3.5, markevery=max(1, len(xs) // 15))


def draw_mean(ax, curves, col, marker):
    """Mean over the runs at the epochs all of them have, with a band from min to max."""
    common = sorted(set.intersection(*(set(xs) for xs, _ in curves)))
    if not common:
        return
    table = [[dict(zip(xs, ys))[e] for e in common] for xs, ys in curves]
    means = [sum(col_) / len(col_) for col_ in zip(*table)]
    ax.plot(common, means, color=col, linewidth=1.6, marker=marker, markersize=3.5,
            markevery=max(1, len(common) // 15))
    if len(curves) > 1:
        ax.fill_between(common, [min(c) for c in zip(*table)], [max(c) for c in zip(*table)],
                        color=col, alpha=0.2, linewidth=0)


def legend_handles(groups, mean):
    """Legend entries of the runs (or of the methods with --mean) and the number of columns:
    one column per method, its seeds below each other (filled with blanks to line up)."""
    columns = []
    for gi, (label, members) in enumerate(groups):
        if mean:
            seeds = ", ".join(str(s.seed) for s in members if s.seed is not None)
            text = f"{label}, mean of {len(members)} run{'s' if len(members) > 1 else ''}"
            text += f"\n(seeds {seeds}; band: min to max)" if len(members) > 1 and seeds else ""
            columns.append([Line2D([], [], color=colour(gi), linewidth=1.6, label=text)])
            continue
        columns.append([Line2D([], [], color=colour(gi), linestyle=STYLES[mi % len(STYLES)],
                               label=f"{label}, seed {s.seed}" if s.seed is not None else f"{label}, {s.prefix}")
                        for mi, s in enumerate(members)])
    if mean or len(columns) > 4 or max(len(c) for c in columns) > 6:  # flat, row by row
        flat = [h for c in columns for h in c]
        ncol = min(3, len(flat))
        return flat, ncol
    rows = max(len(c) for c in columns)
    blank = Line2D([], [], linestyle="none", label=" ")
    return [h for c in columns for h in c + [blank] * (rows - len(c))], len(columns)


def teacher_legend(ax, keys):
    """Marker legend of a per-teacher panel (teacher n = the n of the metrics key)."""
    handles = [Line2D([], [], color="0.35", linestyle="none", marker=MARKERS[(_key_n(k) - 1) % len(MARKERS)],
                      markersize=5, label=f"teacher {_key_n(k)}") for k in keys]
    ax.legend(handles=handles, loc="best", ncol=2 if len(handles) > 2 else 1, fontsize=8,
              framealpha=0.8, handletextpad=0.2, columnspacing=0.8)


def sparse_log_label(value, _pos):
    """Label of a minor tick of a log axis: only 2, 3 and 5 times a power of ten (all of them
    crowd the top of a decade)."""
    if value <= 0:
        return ""
    lead = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if any(abs(lead - d) < 1e-6 for d in (2, 3, 5)) else ""


def plot_curves(folders, out, mean, wanted, logy, title, dpi):
    """The learning-curve figure of the run folders."""
    series = load_runs(folders)
    groups = group_runs(series)
    panels = select_panels(discover_panels(series), series, wanted)
    ncols = 1 if len(panels) == 1 else 2 if len(panels) in (2, 4) else 3
    nrows = math.ceil(len(panels) / ncols)
    handles, leg_cols = legend_handles(groups, mean)
    leg_rows = math.ceil(len(handles) / leg_cols) * (2 if mean else 1)
    fig_w = 4.6 * ncols + (1.5 if ncols == 1 else 0)
    leg_h = 0.24 * leg_rows + 0.3
    fig = plt.figure(figsize=(fig_w, 3.3 * nrows + leg_h + (0.4 if title else 0)), dpi=dpi)
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[3.3] * nrows + [leg_h])
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        draw_runs(ax, panel, groups, mean)
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel[1])
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if len(panel[2]) > 1:
            teacher_legend(ax, panel[2])
        if logy and (panel[0].endswith("_error") or panel[0].endswith("_loss")):
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            low, high = ax.get_ylim()
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(sparse_log_label) if high > 10 * low
                                         else matplotlib.ticker.FormatStrFormatter("%g"))
            ax.tick_params(axis="y", which="both", labelsize=9)
    lax = fig.add_subplot(grid[nrows, :])
    lax.axis("off")
    lax.legend(handles=handles, loc="center", ncol=leg_cols, frameon=False, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.set_layout_engine("constrained")
    save(fig, out)


def load_recon(paths):
    """{network: [(epoch, recon_loss)]} and {network: arch} from the probe_epoch lines."""
    curves, arch = {}, {}
    for path in paths:
        rows = [o for o in read_jsonl(path) if o.get("event") == "probe_epoch"]
        if not rows:
            raise BadInput(f"{path}: no probe_epoch lines (written by feed_mpi analyze)")
        for i, o in enumerate(rows):
            if not isinstance(o.get("epoch"), int) or not isinstance(o.get("recon_loss"), (int, float)):
                raise BadInput(f"{path}: probe_epoch line {i + 1} without an integer epoch and a recon_loss")
            name = str(o.get("network", "?"))
            curves.setdefault(name, {})[o["epoch"]] = o["recon_loss"]
            arch[name] = o.get("arch", "")
    return {n: sorted(c.items()) for n, c in curves.items()}, arch


def plot_recon(paths, out, logy, title, dpi):
    """The reconstruction curves of every network of the files, one figure. Networks whose
    names differ only in an _s<seed> tail share a colour."""
    curves, arch = load_recon(paths)
    bases = []
    for n in curves:
        base = re.sub(r"_s\d+$", "", n)
        if base not in bases:
            bases.append(base)
    seen = {}
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=dpi)
    for name, pts in curves.items():
        base = re.sub(r"_s\d+$", "", name)
        k = seen[base] = seen.get(base, -1) + 1
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour(bases.index(base)),
                linestyle=STYLES[k % len(STYLES)], marker="o", markersize=3.5,
                label=f"{name} ({arch[name]})" if arch[name] else name)
    ax.set_xlabel("probe epoch")
    ax.set_ylabel("reconstruction loss (mean L1 per map element)")
    ax.grid(True, alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if logy:
        ax.set_yscale("log")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, frameon=False)
    ax.set_title(title or "Reconstruction probe: loss after each probe epoch")
    fig.set_layout_engine("constrained")
    save(fig, out)


def load_cka(path):
    """(networks in order of appearance, {(a, b): cka}) from the pair lines."""
    pairs, names = {}, []
    for o in read_jsonl(path):
        if o.get("event") == "probe_epoch" and o.get("network") not in names:
            names.append(o.get("network"))
        if o.get("event") != "pair":
            continue
        if not isinstance(o.get("cka"), (int, float)) or "a" not in o or "b" not in o:
            raise BadInput(f"{path}: a pair line without a, b and a numeric cka")
        for n in (o["a"], o["b"]):
            if n not in names:
                names.append(n)
        pairs[(o["a"], o["b"])] = pairs[(o["b"], o["a"])] = float(o["cka"])
    if not pairs:
        raise BadInput(f"{path}: no pair lines (written by feed_mpi analyze)")
    return [str(n) for n in names], pairs


def plot_cka(path, out, title, dpi):
    """The CKA matrix as a heat map with the values in the cells (diagonal = 1)."""
    names, pairs = load_cka(path)
    n = len(names)
    grid = [[1.0 if i == j else pairs.get((a, b), math.nan) for j, b in enumerate(names)] for i, a in enumerate(names)]
    size = max(4.5, 0.9 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), dpi=dpi)
    # the colour scale spans the off-diagonal values (trained networks are often all above
    # 0.9, where a 0..1 scale shows one colour); the numbers in the cells are exact
    off = [grid[i][j] for i in range(n) for j in range(n) if i != j and not math.isnan(grid[i][j])]
    lo = math.floor(20 * min(off)) / 20 if off else 0.0
    lo = min(lo, 0.95)
    im = ax.imshow(grid, cmap="viridis", vmin=lo, vmax=1.0)
    for i in range(n):
        for j in range(n):
            v = grid[i][j]
            text = "-" if math.isnan(v) else f"{v:.3f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9 if n <= 8 else 7,
                    color="black" if not math.isnan(v) and v > lo + 0.6 * (1 - lo) else "white")
    ax.set_xticks(range(n), names, rotation=35, ha="right")
    ax.set_yticks(range(n), names)
    fig.colorbar(im, ax=ax, label="CKA", shrink=0.8)
    ax.set_title(title or "Similarity of the networks' feature maps (CKA)")
    fig.set_layout_engine("constrained")
    save(fig, out)


def save(fig, out):
    """Write the figure (format from the extension) and say where."""
    try:
        fig.savefig(out)
    except OSError as e:
        raise BadInput(f"{out}: cannot write: {e.strerror}")
    plt.close(fig)
    print(f"plot.py: wrote {out}")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Example: tools/plot.py runs/compare/{scratch,pfeed4}_s10{0,1} "
                                        "--panels test_error,feed_loss -o curves.png")
    ap.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run folders (run.dir of each run)")
    ap.add_argument("-o", "--output", required=True, help="the figure: .png, .svg or .pdf")
    ap.add_argument("--mean", action="store_true", help="one line per method: mean over its runs, min-max band")
    ap.add_argument("--panels", help="comma-separated panels to draw, in this order: test_error, train_error, "
                                     "test_loss, train_loss, feed_loss (or kd_loss, at_loss, ...), wait "
                                     "(default: every one with data)")
    ap.add_argument("--logy", action="store_true", help="logarithmic y axis for errors and losses")
    ap.add_argument("--title", help="a title over the figure")
    ap.add_argument("--dpi", type=int, default=110, help="resolution of a PNG (default 110)")
    ap.add_argument("--recon", nargs="+", metavar="FILE.jsonl", help="plot reconstruction curves of these "
                                                                      "analyze_metrics.jsonl files instead")
    ap.add_argument("--cka", metavar="FILE.jsonl", help="plot the CKA matrix of this analyze_metrics.jsonl instead")
    args = ap.parse_args(argv)
    modes = sum([bool(args.run_dirs), bool(args.recon), bool(args.cka)])
    if modes != 1:
        ap.error("give run folders, or --recon FILE..., or --cka FILE (exactly one of them)")
    if os.path.splitext(args.output)[1].lower() not in (".png", ".svg", ".pdf"):
        ap.error(f"{args.output}: the output's extension must be .png, .svg or .pdf")
    if not 30 <= args.dpi <= 600:
        ap.error("--dpi must be between 30 and 600")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.recon:
            plot_recon(args.recon, args.output, args.logy, args.title, args.dpi)
        elif args.cka:
            plot_cka(args.cka, args.output, args.title, args.dpi)
        else:
            wanted = [w.strip() for w in args.panels.split(",") if w.strip()] if args.panels else None
            plot_curves(args.run_dirs, args.output, args.mean, wanted, args.logy, args.title, args.dpi)
    except BadInput as e:
        print(f"plot.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
