#!/usr/bin/env python3
"""feed_convert imagefolder on real images, against the references a user would trust.

1. Round trip: the real Fashion-MNIST (all 70,000 images) written as PNG class folders,
   converted back, has exactly the pixels, labels and mean/std of `feed_convert
   fashion-mnist` (the order is ImageFolder's: class by class, by file name; /paths says
   where each image came from); and feed_mpi trains on it.
2. Decoding and resizing against PIL, which torchvision's ImageFolder uses: RGB and grey
   JPEGs, palette and RGBA PNGs of mixed sizes, --size 20 (Resize + CenterCrop, shrinking
   and enlarging, odd crops), --rgb and --grey: every pixel equal.
3. --val-fraction: a seeded hold-out per class, reproducible, another seed another split.
4. Bad folders: each refused with one message naming the file and a hint, exit 2, no output
   file and no OUT.h5.tmp; --skip-bad skips and lists what it skipped.
"""
import os, shutil, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import harness
from harness import check, finish, run, write_ini
import h5py
import numpy as np
try:
    from PIL import Image
except ImportError as e:
    sys.exit(f"FAIL: {e}: install python3-pil (./tools/setup.sh test does)")

args, W, MPI = harness.start([("--feed-convert", {"required": True})])


def convert(src, out, *opts):
    return run([args.feed_convert, "imagefolder", src, out, *opts])


def strs(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


# ---- 1. Fashion-MNIST round trip ----
ref = h5py.File(args.data, "r")
names = strs(ref.attrs["class_names"])
folders = [f"{k}_{n.replace('/', '-')}" for k, n in enumerate(names)]  # sorted = label order
fm = os.path.join(W, "fashion")
for split in ("train", "test"):
    x, y = ref[split + "/images"][:], ref[split + "/labels"][:]
    for f in folders:
        os.makedirs(os.path.join(fm, split, f))
    for i in range(len(y)):
        Image.fromarray(x[i, :, :, 0]).save(os.path.join(fm, split, folders[y[i]], f"{i:05d}.png"))
out = os.path.join(W, "fashion_folder.h5")
r = convert(fm, out)
check(r.returncode == 0, f"imagefolder of the Fashion-MNIST PNGs exits 0 ({r.stdout[-500:]})")
with h5py.File(out, "r") as g:
    for split in ("train", "test"):
        x, y = ref[split + "/images"][:], ref[split + "/labels"][:]
        paths = strs(g[split + "/paths"][:])
        index = np.array([int(os.path.basename(p)[:5]) for p in paths])
        order = np.concatenate([np.flatnonzero(y == k) for k in range(10)])  # ImageFolder's order
        check(np.array_equal(index, order), f"{split}: images in ImageFolder order (class, then file name)")
        check(np.array_equal(g[split + "/labels"][:], y[index]), f"{split}: labels equal feed_convert fashion-mnist's")
        check(np.array_equal(g[split + "/images"][:], x[index]), f"{split}: all {len(y)} images equal, pixel for pixel")
    check(np.array_equal(g.attrs["mean"], ref.attrs["mean"]) and np.array_equal(g.attrs["std"], ref.attrs["std"]),
          f"mean/std equal: {g.attrs['mean']} {g.attrs['std']}")
    check(strs(g.attrs["class_names"]) == folders, "class names are the folder names")
    check(g.attrs["name"] == "fashion", "name defaults to the folder's base name")
ini = write_ini(W, "train.ini", f"[run]\nmode = scratch\ndir = {W}/run\nseed = 1\nthreads = 1\n"
                f"[data]\npath = {out}\nsubset_per_class = 20\n[model]\narch = resnet20\n[train]\nepochs = 1\nbatch = 50\n")
r = run(MPI + ["-np", "1", args.feed_mpi, ini])
check(r.returncode == 0 and "epoch  1/1" in r.stdout, f"feed_mpi trains on the converted set ({r.stdout[-400:]})")
shutil.rmtree(fm)  # 70,000 files


# ---- 2. decoding and resizing against PIL ----
def resize_center_crop(img, S):
    """torchvision's Resize(S) + CenterCrop(S) on a PIL image."""
    w, h = img.size
    if w <= h:
        size = (S, int(S * h / w))
    else:
        size = (int(S * w / h), S)
    img = img.resize(size, Image.BILINEAR)
    w, h = img.size
    top, left = int(round((h - S) / 2.0)), int(round((w - S) / 2.0))
    return img.crop((left, top, left + S, top + S))


rng = np.random.default_rng(5)
mixed = os.path.join(W, "mixed")
files = []
x = ref["train/images"][:40, :, :, 0]
for i in range(40):
    split = "train" if i < 30 else "test"
    cls = f"c{i % 3}"
    os.makedirs(os.path.join(mixed, split, cls), exist_ok=True)
    base = Image.fromarray(x[i]).resize([(28, 28), (40, 30), (25, 50), (64, 21), (13, 17)][i % 5], Image.NEAREST)
    rgb = Image.merge("RGB", (base, base.transpose(Image.FLIP_LEFT_RIGHT), base.point(lambda v: 255 - v)))
    kind = i % 4
    name = os.path.join(mixed, split, cls, f"{i:03d}" + (".jpg" if kind < 2 else ".png"))
    if kind == 0:
        rgb.save(name, quality=90)
    elif kind == 1:
        base.save(name, quality=75)  # grey JPEG
    elif kind == 2:
        rgb.convert("P", palette=Image.ADAPTIVE, colors=50).save(name)
    else:
        rgba = rgb.copy()
        rgba.putalpha(Image.fromarray(rng.integers(0, 256, base.size[::-1], dtype=np.uint8)))
        rgba.save(name)
    files.append((split, name))
for mode, opt in (("RGB", "--rgb"), ("L", "--grey")):
    out = os.path.join(W, f"mixed_{mode}.h5")
    r = convert(mixed, out, "--size", "20", opt)
    check(r.returncode == 0, f"mixed folder with --size 20 {opt} exits 0 ({r.stdout[-300:]})")
    if r.returncode:
        continue
    with h5py.File(out, "r") as g:
        worst = 0
        for split in ("train", "test"):
            for p, got in zip(strs(g[split + "/paths"][:]), g[split + "/images"][:]):
                want = np.asarray(resize_center_crop(Image.open(os.path.join(mixed, p)).convert(mode), 20))
                worst = max(worst, int(np.abs(got.reshape(want.shape).astype(int) - want).max()))
        check(worst == 0, f"{opt}: every pixel equals PIL's decode + convert('{mode}') + Resize + CenterCrop "
              f"(largest difference {worst})")
r = convert(mixed, os.path.join(W, "mixed_nosize.h5"))
check(r.returncode == 2 and "images of different sizes" in r.stdout and "--size" in r.stdout,
      f"mixed sizes without --size: exit 2, both files named, hint --size ({r.stdout.strip()[-300:]})")

# ---- 3. --val-fraction ----
flat = os.path.join(W, "flat")
y = ref["train/labels"][:300]
for i in range(300):
    d = os.path.join(flat, folders[y[i]])
    os.makedirs(d, exist_ok=True)
    Image.fromarray(ref["train/images"][i, :, :, 0]).save(os.path.join(d, f"{i:05d}.png"))
r = convert(flat, os.path.join(W, "flat.h5"))
check(r.returncode == 2 and "--val-fraction" in r.stdout, "one split without --val-fraction: exit 2 with the hint")


def split_of(path):
    with h5py.File(path, "r") as g:
        return [tuple(strs(g[s + "/paths"][:])) for s in ("train", "test")]


runs = {}
for tag, seed in (("a", "7"), ("b", "7"), ("c", "8")):
    r = convert(flat, os.path.join(W, f"flat_{tag}.h5"), "--val-fraction", "0.2", "--seed", seed)
    check(r.returncode == 0, f"--val-fraction 0.2 --seed {seed} exits 0")
    runs[tag] = split_of(os.path.join(W, f"flat_{tag}.h5"))
train, test = runs["a"]
counts = np.bincount(y, minlength=10)
test_counts = np.bincount([folders.index(p.split("/")[0]) for p in test], minlength=10)
check(np.array_equal(test_counts, np.floor(0.2 * counts + 0.5).astype(int)),
      f"each class holds out round(0.2 n) images: {test_counts.tolist()} of {counts.tolist()}")
check(sorted(train + test) == sorted(f"{folders[y[i]]}/{i:05d}.png" for i in range(300)) and not set(train) & set(test),
      "train and test are a partition of the folder")
check(runs["a"] == runs["b"], "the same seed gives the same split")
check(runs["a"] != runs["c"], "another seed gives another split")


# ---- 4. bad folders ----
def bad_case(name, build, opts, code, *needles):
    src = os.path.join(W, "bad", name)
    os.makedirs(src)
    build(src)
    out = os.path.join(W, "bad", name + ".h5")
    r = convert(src, out, *opts)
    text = r.stdout
    ok = r.returncode == code and all(n in text for n in needles)
    if code != 0:
        ok = ok and not os.path.exists(out) and text.count("error:") == 1
    ok = ok and not os.path.exists(out + ".tmp")
    check(ok, f"{name}: exit {r.returncode} (want {code}), message has {needles}, no partial output:\n{text[-600:]}")
    return out


def png(path, i=0, size=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = Image.fromarray(ref["test/images"][i, :, :, 0])
    (img.resize(size) if size else img).save(path)


def two_classes(src):
    for s in ("train", "test"):
        for c in ("a", "b"):
            for i in range(3):
                png(os.path.join(src, s, c, f"{i}.png"), i)


def with_empty_class(src):
    two_classes(src)
    os.makedirs(os.path.join(src, "train", "c_empty"))


def with_truncated_jpeg(src):
    two_classes(src)
    p = os.path.join(src, "train", "a", "9.jpg")
    Image.fromarray(ref["test/images"][0, :, :, 0]).resize((64, 64)).save(p, quality=90)
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) * 3 // 4])


def with_text_file(src):
    two_classes(src)
    open(os.path.join(src, "train", "b", "notes.txt"), "w").write("not an image\n")


def with_fake_png(src):
    two_classes(src)
    open(os.path.join(src, "test", "a", "fake.png"), "w").write("<html>not a png</html>\n")


def with_mixed_sizes(src):
    two_classes(src)
    png(os.path.join(src, "train", "b", "big.png"), 4, (32, 32))


def with_extra_test_class(src):
    two_classes(src)
    png(os.path.join(src, "test", "zebra", "0.png"))


def with_test_and_val(src):
    two_classes(src)
    png(os.path.join(src, "val", "a", "0.png"))


bad_case("empty_folder", lambda s: None, (), 2, "has no class folders", "hint:")
bad_case("empty_class", with_empty_class, (), 2, "train/c_empty' has no images", "hint:")
# (64 x 64 with --size 28: the header is whole, the decode of the pixels fails)
bad_case("truncated_jpeg", with_truncated_jpeg, ("--size", "28"), 2, "train/a/9.jpg", "damaged JPEG", "--skip-bad")
out = bad_case("truncated_jpeg_skipped", with_truncated_jpeg, ("--skip-bad", "--size", "28"), 0, "skipped 1 files",
               "train/a/9.jpg")
if os.path.exists(out):
    with h5py.File(out, "r") as g:
        check(g["train/images"].shape[0] == 6 and len(g["train/paths"]) == 6 and len(g["train/labels"]) == 6,
              "--skip-bad: the truncated JPEG is left out of images, labels and paths")
        check(any("train/a/9.jpg" in s for s in strs(g.attrs["skipped_files"])), "skipped_files names it")
bad_case("text_file", with_text_file, (), 2, "are not images", "train/b/notes.txt", "--skip-bad")
bad_case("fake_png", with_fake_png, (), 2, "test/a/fake.png", "not a JPEG or PNG file")
bad_case("mixed_sizes", with_mixed_sizes, (), 2, "images of different sizes", "big.png", "--size")
bad_case("extra_test_class", with_extra_test_class, (), 2, "test/zebra", "training split")
bad_case("test_and_val", with_test_and_val, (), 2, "both test/ and val/", "--test-split")
bad_case("val_and_fraction", two_classes, ("--val-fraction", "0.1"), 2, "has a test split already")
bad_case("bad_size", two_classes, ("--size", "0"), 2, "--size '0' is not valid")
keep = os.path.join(W, "bad", "exists.h5")
open(keep, "w").write("keep me")
r = convert(os.path.join(W, "bad", "mixed_sizes"), keep, "--size", "28")
check(r.returncode == 2 and "already exists" in r.stdout and open(keep).read() == "keep me",
      "an existing output without --force: exit 2, file untouched")
finish()
