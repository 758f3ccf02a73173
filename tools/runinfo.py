"""runinfo.py - what tools/plot.py and tools/report.py read from feed_mpi run folders.

A run folder (run.dir) holds one `<prefix>_metrics.jsonl` per trained network (teacher<r>
for the ranks of a scratch job, student for distill and pfeed, gen<g> for the generations of
sfeed) and its checkpoints `<prefix>_e<epoch>_s<step>.h5` / `<prefix>_best.h5`, whose root
attributes `config_ini` and `config_overrides` give the run's configuration. One Series is one
metrics file with what is known about the network that wrote it: its method label, seed and
the configuration that makes it comparable with other runs (group_key).
"""
import glob
import json
import math
import os
import re

# Keys that do not change what a run computes: where it writes, how many threads, how it
# resumes, and where its teachers run (mpi and local give the same bits, feed_mpi --help).
IGNORED_KEYS = {"run.seed", "run.dir", "run.name", "run.threads"}
IGNORED_SECTIONS = {"checkpoint"}
TERM_NAMES = {"feed": "FEED", "kd": "KD", "at": "AT", "l1": "L1", "ft": "FT"}


class BadInput(Exception):
    """Input the tools cannot use; main() prints it as one line and exits with 2."""


def natural_key(text):
    """Sort key that orders teacher2 before teacher10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _number(value):
    """A metrics value as float; JSON null (feed_mpi writes it for NaN/Inf) becomes nan."""
    return math.nan if value is None else value


def read_jsonl(path):
    """JSON objects of a JSON-lines file, one per non-blank line. A last line without its
    newline that does not parse (a write cut short) is skipped; any other bad line is an
    error naming file and line."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot read: {e}")
    objects = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):  # no newline after it: cut short by a crash
                continue
            raise BadInput(f"{path}:{i}: not a JSON line ({e.msg})")
        if not isinstance(obj, dict):
            raise BadInput(f"{path}:{i}: a JSON object was expected")
        objects.append(obj)
    return objects


def read_metrics(path):
    """The epoch rows of a metrics file, sorted by epoch, the last line of an epoch winning
    (events such as "resumed" are left out). Raises BadInput if it has none."""
    rows = {}
    for obj in read_jsonl(path):
        if "event" in obj or not isinstance(obj.get("epoch"), int):
            continue
        rows[obj["epoch"]] = {k: _number(v) if not isinstance(v, str) else v for k, v in obj.items()}
    if not rows:
        raise BadInput(f"{path}: no epoch lines (a metrics file has one JSON object per epoch)")
    return [rows[e] for e in sorted(rows)]


def _strip_comment(value):
    """An INI value without its inline comment (';' or '#' after a blank) and quotes."""
    value = re.split(r"\s[;#]", value, maxsplit=1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


def parse_ini(text):
    """feed_mpi's INI text as {"section.key": "value"}."""
    config, section = {}, ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("[") and "]" in line:
            section = line[1:line.index("]")].strip()
            continue
        match = re.match(r"([^=:]+?)\s*[=:](.*)", line)
        if match and section:
            config[f"{section}.{match.group(1).strip()}"] = _strip_comment(match.group(2))
    return config


def parse_overrides(text):
    """The command-line overrides of a checkpoint (one section.key=value a line)."""
    config = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            config[key.strip()] = value.strip()
    return config


def newest_checkpoint(folder, prefix):
    """The checkpoint of prefix with the highest epoch and step, else <prefix>_best.h5, else
    None."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "_e*_s*.h5")):
        match = re.search(r"_e(\d+)_s(\d+)\.h5$", path)
        if match:
            found.append((int(match.group(1)), int(match.group(2)), path))
    if found:
        return max(found)[2]
    best = os.path.join(folder, prefix + "_best.h5")
    return best if os.path.exists(best) else None


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def checkpoint_info(path):
    """(config dict, root attributes) of a checkpoint; ({}, {}) if it cannot be read."""
    try:
        import h5py
        with h5py.File(path, "r") as f:
            attrs = {k: _text(v) for k, v in f.attrs.items()}
    except Exception:  # a damaged or foreign file: fall back to the folder name
        return {}, {}
    config = parse_ini(attrs.get("config_ini", "") or "")
    config.update(parse_overrides(attrs.get("config_overrides", "") or ""))
    return config, attrs


def _split_list(value):
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def effective_config(config):
    """config with pfeed written as what it is, distill with terms = feed (its short form)."""
    config = dict(config)
    if config.get("run.mode") == "pfeed":
        config["run.mode"] = "distill"
        config["distill.terms"] = "feed"
    config.setdefault("run.mode", "scratch")
    if config["run.mode"] == "distill":
        config.setdefault("distill.terms", "feed")
    if config["run.mode"] == "sfeed":
        config.setdefault("sfeed.terms", "feed")
    return config


def comparable(config):
    """The part of a config that two runs must share to be seeds of one method."""
    keep = {}
    for key, value in config.items():
        section = key.split(".", 1)[0]
        if key in IGNORED_KEYS or section in IGNORED_SECTIONS:
            continue
        if key == "distill.source" and value in ("mpi", "local"):
            continue
        keep[key] = value
    return keep


def method_name(config, prefix):
    """e.g. "pFEED, 4 teachers", "scratch", "KD + FEED, 2 teachers", "sFEED gen 2, lag 3"."""
    mode = config.get("run.mode", "scratch")
    if mode == "scratch":
        return "scratch"
    if mode == "sfeed":
        terms = _split_list(config.get("sfeed.terms"))
        name = "BAN" if terms == ["kd"] else "sFEED" if terms == ["feed"] else \
            "sequential " + " + ".join(TERM_NAMES.get(t, t) for t in terms)
        gen = re.fullmatch(r"gen(\d+)", prefix)
        name += f" gen {gen.group(1)}" if gen else f" {prefix}"
        lag = config.get("sfeed.lag_epochs", "0")
        return name + (f", lag {lag}" if lag not in ("", "0") else "")
    if mode == "distill":
        terms = _split_list(config.get("distill.terms"))
        name = "pFEED" if terms == ["feed"] else " + ".join(TERM_NAMES.get(t, t) for t in terms)
        n = len(_split_list(config.get("distill.teachers")))
        if n:
            name += f", {n} teacher{'s' if n != 1 else ''}"
        if config.get("distill.source") == "cache":
            name += " (from caches)"
        return name
    return mode


class Series:
    """One metrics file of a run folder: rows, label, seed and comparison key."""

    def __init__(self, folder, prefix):
        self.folder = folder
        self.prefix = prefix
        self.path = os.path.join(folder, f"{prefix}_metrics.jsonl")
        self.rows = read_metrics(self.path)
        self.checkpoint = newest_checkpoint(folder, prefix)
        config, attrs = checkpoint_info(self.checkpoint) if self.checkpoint else ({}, {})
        self.config = effective_config(config) if config else {}
        self.seed = self._seed(attrs)
        if self.config:
            self.method = method_name(self.config, prefix)
            generation = prefix if self.config["run.mode"] == "sfeed" else ""
            self.group_key = (generation, tuple(sorted(comparable(self.config).items())))
        else:  # no readable checkpoint: the folder's name without its _s<seed> tail
            base = os.path.basename(os.path.normpath(folder))
            self.method = re.sub(r"_s\d+$", "", base) + ("" if prefix in ("student", "teacher0") else f" {prefix}")
            self.group_key = ("name", self.method)

    def _seed(self, attrs):
        """The network's seed: a scratch rank's own (run.seed + rank, the checkpoint's seed
        attribute); for distill and sfeed the run's run.seed (generation g uses run.seed + g);
        without a checkpoint the folder's _s<seed> tail, or None."""
        if self.config.get("run.mode") == "scratch" and "seed" in attrs:
            return int(attrs["seed"])
        if "run.seed" in self.config:
            return int(self.config["run.seed"])
        if "seed" in attrs:
            return int(attrs["seed"])
        match = re.search(r"_s(\d+)$", os.path.basename(os.path.normpath(self.folder)))
        return int(match.group(1)) if match else None

    @property
    def label(self):
        """e.g. "pFEED, 4 teachers, seed 100"."""
        return self.method + (f", seed {self.seed}" if self.seed is not None else "")

    def values(self, key):
        """(epochs, values) of a metrics key over the epochs that have it."""
        pairs = [(r["epoch"], r[key]) for r in self.rows if isinstance(r.get(key), (int, float))]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def wall_seconds(self):
        """Sum of the epochs' seconds (training and evaluation; not start-up)."""
        return sum(r.get("seconds", 0.0) for r in self.rows if not math.isnan(r.get("seconds", 0.0)))


def load_folder(folder):
    """The Series of every metrics file in a run folder, in natural order of their prefixes."""
    if not os.path.isdir(folder):
        raise BadInput(f"{folder}: not a folder (give run folders, the run.dir of each run)")
    files = sorted(glob.glob(os.path.join(glob.escape(folder), "*_metrics.jsonl")), key=natural_key)
    if not files:
        raise BadInput(f"{folder}: no *_metrics.jsonl in it: is it a run folder (run.dir) of a "
                       "run that finished an epoch?")
    return [Series(folder, os.path.basename(f)[:-len("_metrics.jsonl")]) for f in files]


def load_runs(folders):
    """The Series of all run folders, in the order given."""
    return [s for folder in folders for s in load_folder(folder)]


def group_runs(series):
    """[(method label, [Series...])], groups in order of first appearance. Groups whose
    labels would be equal get the config keys in which they differ appended."""
    groups = {}
    for s in series:
        groups.setdefault(s.group_key, []).append(s)
    out = [[members[0].method, members] for members in groups.values()]
    for label in {g[0] for g in out}:
        same = [g for g in out if g[0] == label]
        if len(same) < 2:
            continue
        configs = [comparable(g[1][0].config) for g in same]
        differing = sorted({k for c in configs for k in c if any(c.get(k) != o.get(k) for o in configs)})
        for g, c in zip(same, configs):
            extra = ", ".join(f"{k}={c.get(k, '-')}" for k in differing[:3])
            g[0] = f"{label} ({extra})" if extra else f"{label} ({g[1][0].folder})"
    return [(label, members) for label, members in out]
