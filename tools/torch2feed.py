#!/usr/bin/python3
"""torch2feed.py - convert a PyTorch state_dict of a model of tools/torch_models.py into a
feed_mpi checkpoint (docs/interop.md).

    /usr/bin/python3 tools/torch2feed.py --arch ARCH [--classes K] [--in-channels C]
                                         [--size HW] [--dataset NAME] [--force] IN.pt OUT.h5

IN.pt: what torch.save wrote: a state_dict, or a dict holding it under 'state_dict' or
'model'; a 'module.' prefix (DataParallel) is stripped. Only tensors and plain containers are
unpickled (torch.load weights_only), so a file cannot run code.
Checks: every key and shape against torch_models.build_model(ARCH, C, K) (classes and input
channels are read from fc.weight and conv1.weight unless given), all values finite.
Exit code 0 on success, 2 on any refused input (one message, with a hint); OUT.h5 is written
atomically and never left half-written.
"""
import argparse
import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import numpy as np
    import torch
    from feed_checkpoint import ARCH_HELP, canonical_arch, parse_size, write_checkpoint
    from torch_models import build_model
except ImportError as e:
    sys.exit(f"torch2feed.py: {e}; install python3-torch python3-h5py (./tools/setup.sh does)")

MAX_LISTED = 8  # keys listed per kind of mismatch; the counts are always complete


class InputError(Exception):
    """A refused input: str() is the message (with its hint); exit code 2."""


def load_state_dict(path):
    """{key: tensor} from a torch.save file: a state_dict, or one under 'state_dict'/'model',
    with a DataParallel 'module.' prefix removed."""
    with open(path, "rb") as f:
        head = f.read(2)
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":
        raise InputError(f"{path}: not a file written by torch.save (neither its zip format nor a pickle)\n"
                         "  hint: save the weights with torch.save(model.state_dict(), 'weights.pt')")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds; all mean "cannot read"
        why = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
        raise InputError(f"{path}: torch.load cannot read it as tensors ({why})\n  hint: torch2feed reads "
                         "state_dicts only (no pickled modules): torch.save(model.state_dict(), 'weights.pt')")
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not obj:
        raise InputError(f"{path}: holds {'an empty dict' if isinstance(obj, dict) else type(obj).__name__}, "
                         "not a state_dict\n  hint: save one with torch.save(model.state_dict(), 'weights.pt')")
    not_tensors = [k for k, v in obj.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise InputError(f"{path}: {len(not_tensors)} value(s) are not tensors (e.g. {not_tensors[0]!r}), so it "
                         "is not a state_dict\n  hint: save one with torch.save(model.state_dict(), 'weights.pt')")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def infer_geometry(state, classes, in_channels):
    """(num_classes, in_channels): given values, or read from fc.weight / conv1.weight."""
    if classes is None:
        classes = state["fc.weight"].shape[0] if "fc.weight" in state and state["fc.weight"].dim() == 2 else 10
    if in_channels is None:
        in_channels = state["conv1.weight"].shape[1] if "conv1.weight" in state and state["conv1.weight"].dim() == 4 \
            else 3
    return int(classes), int(in_channels)


def _capped(items):
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f", ... ({len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")


def compare_keys(state, arch, classes, in_channels):
    """Raises one InputError listing missing and unexpected keys and shape mismatches against
    build_model(arch, in_channels, classes); num_batches_tracked may be absent (older PyTorch)."""
    try:
        expected = {k: tuple(v.shape) for k, v in build_model(arch, in_channels, classes).state_dict().items()}
    except (AssertionError, ValueError, KeyError, IndexError) as e:
        raise InputError(f"--arch {arch}: not a model torch_models.py builds ({e})\n  hint: {ARCH_HELP}")
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: file {tuple(state[k].shape)}, {arch} expects {expected[k]}"
              for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if not (missing or unexpected or shapes):
        return expected
    lines = [f"the state_dict does not fit {arch} with {classes} classes and {in_channels} input channel(s):"]
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            lines.append(f"  {len(items)} {label}: {_capped(items)}")
    hint = "is it a state_dict of another architecture? --arch names the model"
    if shapes and not (missing or unexpected):
        hint = "--classes and --in-channels must match the weights (they are read from fc.weight and " \
               "conv1.weight when not given)"
    lines.append(f"  hint: {hint}; {ARCH_HELP}")
    raise InputError("\n".join(lines))


def to_arrays(state, expected):
    """{key: numpy array} in the model's key order: float32 parameters (refusing NaN/Inf) and
    int64 scalar num_batches_tracked (0 where the file has none)."""
    out = {}
    for key in expected:
        if key.endswith("num_batches_tracked"):
            out[key] = np.int64(int(state[key])) if key in state else np.int64(0)
            continue
        values = state[key].detach().to(torch.float32).numpy()
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise InputError(f"{key}: {bad} value(s) are NaN or infinite (in float32)\n"
                             "  hint: a diverged training run? convert an earlier state_dict")
        out[key] = values
    return out


def convert(src, dst, arch, classes=None, in_channels=None, size=None, dataset="", force=False):
    """The whole conversion; returns the canonical arch written. InputError on refused input."""
    try:
        arch = canonical_arch(arch)
    except ValueError as e:
        raise InputError(f"--arch: {e}")
    if os.path.exists(dst) and not force:
        raise InputError(f"{dst} exists\n  hint: give --force to replace it")
    state = load_state_dict(src)
    classes, in_channels = infer_geometry(state, classes, in_channels)
    arrays = to_arrays(state, compare_keys(state, arch, classes, in_channels))
    attrs = {"arch": arch, "dataset": dataset, "num_classes": classes, "in_channels": in_channels,
             "created_by": "torch2feed.py", "source_file": os.path.basename(src)}
    if size:
        attrs["input_height"], attrs["input_width"] = size
    write_checkpoint(dst, arrays, attrs, force=force)
    return arch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    ap.add_argument("src", metavar="IN.pt", help="torch.save file holding the state_dict")
    ap.add_argument("dst", metavar="OUT.h5", help="feed_mpi checkpoint to write")
    ap.add_argument("--arch", required=True, help="model of torch_models.py: resnet20, resnet56-a, wrn-16-2, "
                                                  "resnext29-16x64d, resnet18, ...")
    ap.add_argument("--classes", type=int, help="number of classes (default: from fc.weight)")
    ap.add_argument("--in-channels", type=int, help="input channels (default: from conv1.weight)")
    ap.add_argument("--size", type=parse_size, metavar="HW",
                    help="training image size, HW or HxW: written as input_height/input_width "
                         "(without it feed_mpi takes the data set's size)")
    ap.add_argument("--dataset", default="", help="data set name for the dataset attribute (informative)")
    ap.add_argument("--force", action="store_true", help="replace an existing OUT.h5")
    a = ap.parse_args()
    try:
        arch = convert(a.src, a.dst, a.arch, a.classes, a.in_channels, a.size, a.dataset, a.force)
    except (InputError, OSError) as e:
        print(f"torch2feed.py: {e}", file=sys.stderr)
        return 2
    print(f"{a.dst}: {arch} checkpoint from {a.src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
