#!/usr/bin/python3
"""feed2torch.py - a feed_mpi checkpoint as a PyTorch model of tools/torch_models.py, saved as
a state_dict, and optionally as an ONNX file for deployment (docs/interop.md).

    /usr/bin/python3 tools/feed2torch.py CKPT.h5 OUT.pt [--onnx OUT.onnx] [--size HW]
                                         [--data D.h5] [--opset 11] [--force]

OUT.pt holds the state_dict; load it with
    model = torch_models.build_model(arch, in_channels, num_classes)   # arch etc.: printed here
    model.load_state_dict(torch.load("OUT.pt")); model.eval()
or, from the checkpoint directly, in Python:
    from feed2torch import load_checkpoint; model = load_checkpoint("CKPT.h5")

--onnx: the eval-mode model with input "input" (N x C x H x W float32 images normalised as
(x/255 - mean)/std, N dynamic) and output "logits" (N x classes). H x W is the checkpoint's
input_height/input_width, else --size, else the image size of the data set (--data, or the
[data] path of the run's config when that file exists). The file is checked with
onnx.checker, and, when OpenCV is installed, run by OpenCV's DNN module on a random batch and
compared with PyTorch. The data set's mean/std go into the ONNX metadata when known.
Exit code 0 on success, 2 on a refused input (damaged or incomplete checkpoint, ...), 1 if
OpenCV disagrees with PyTorch.
"""
import argparse
import configparser
import copy
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import h5py
    import numpy as np
    import torch
    from feed_checkpoint import CheckpointError, parse_size, read_checkpoint
    from torch_models import ShortcutA, build_model
except ImportError as e:
    sys.exit(f"feed2torch.py: {e}; install python3-torch python3-h5py (./tools/setup.sh does)")

OPENCV_TOLERANCE = 1e-4  # max |OpenCV - PyTorch| / max(1, max |logit|) before the export counts as wrong


class OpenCVError(Exception):
    """OpenCV cannot run the ONNX file or disagrees with PyTorch (exit code 1)."""


def load_checkpoint(path):
    """The checkpoint's model as a torch_models module in eval mode, every crc32 verified.
    Its root attributes are in model.feed_attrs. Raises CheckpointError."""
    attrs, state = read_checkpoint(path)
    arch = str(attrs["arch"])
    try:
        model = build_model(arch, int(attrs["in_channels"]), int(attrs["num_classes"]),
                            float(attrs.get("model_dropout", 0.0)))
    except (AssertionError, ValueError, KeyError, IndexError) as e:
        raise CheckpointError(f"{path}: arch '{arch}' is not a model of torch_models.py ({e})")
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: /model does not fit {arch}: {e}")
    model.eval()
    model.feed_attrs = attrs
    return model


def save_atomic(path, write, force):
    """write(tmp_path) then rename to path; refuses an existing path without force."""
    if os.path.exists(path) and not force:
        raise CheckpointError(f"{path} exists\n  hint: give --force to replace it")
    tmp = path + ".tmp"
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def data_set_of(attrs, data):
    """The data set file: --data, else the [data] path of the run's config if it exists."""
    if data:
        return data
    cfg = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    try:
        cfg.read_string(attrs.get("config_ini", ""))
        path = cfg.get("data", "path", fallback="")
    except configparser.Error:
        return None
    return path if path and os.path.isfile(path) else None


def input_geometry(attrs, size, data_file):
    """(height, width, {mean, std} or {}) of the model's input."""
    norm, hw = {}, None
    if data_file:
        with h5py.File(data_file, "r") as f:
            norm = {k: [float(x) for x in np.atleast_1d(f.attrs[k])] for k in ("mean", "std") if k in f.attrs}
            hw = tuple(int(n) for n in f["test/images"].shape[1:3])
    if "input_height" in attrs and "input_width" in attrs:
        hw = (int(attrs["input_height"]), int(attrs["input_width"]))
    elif size:
        hw = size
    if hw is None:
        raise CheckpointError("--onnx needs the image size: the checkpoint has no input_height/input_width\n"
                              "  hint: give --size HW (e.g. 28) or --data D.h5")
    return hw[0], hw[1], norm


def inline_identity_initializers(m):
    """Replaces Identity nodes on constant tensors by copies of the tensor: PyTorch's exporter
    shares equal folded weights (e.g. the zero biases of an untrained model) through Identity
    nodes, which OpenCV 4.6's importer cannot read."""
    import onnx
    inits = {t.name: t for t in m.graph.initializer}
    keep = []
    for node in m.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            m.graph.initializer.append(copy)
        else:
            keep.append(node)
    del m.graph.node[:]
    m.graph.node.extend(keep)


def without_pad_shortcuts(model):
    """A copy of model whose option-A shortcuts (subsample + zero channels, torch_models.ShortcutA)
    are the equal 1x1 convolution with 0/1 weights: the exporter writes ShortcutA's Pad with
    computed pads, which OpenCV 4.6 cannot read; the convolution gives the same values."""
    model = copy.deepcopy(model)
    for block in model.modules():
        sc = getattr(block, "shortcut_a", None)
        if isinstance(sc, ShortcutA):
            cout = block.conv1.out_channels
            cin = cout - sc.pad_front - sc.pad_back
            conv = torch.nn.Conv2d(cin, cout, 1, stride=sc.stride, bias=False)
            with torch.no_grad():
                conv.weight.zero_()
                conv.weight[sc.pad_front:sc.pad_front + cin, :, 0, 0] = torch.eye(cin)
            block.shortcut_a = conv
    return model.eval()


def export_onnx(model, path, height, width, norm, opset):
    """Writes the eval-mode model as ONNX with a dynamic batch, metadata, checked by onnx.checker."""
    import onnx
    attrs = model.feed_attrs
    x = torch.zeros(1, int(attrs["in_channels"]), height, width)
    with warnings.catch_warnings():  # the exporter's notes on shape inference are not ours to act on
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(without_pad_shortcuts(model), x, path, opset_version=opset, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
    m = onnx.load(path)
    inline_identity_initializers(m)
    meta = {"arch": attrs["arch"], "num_classes": attrs["num_classes"], "in_channels": attrs["in_channels"],
            "input_height": height, "input_width": width, "dataset": attrs.get("dataset", ""),
            "normalisation": "(x/255 - mean)/std per channel"}
    meta.update({k: json.dumps(v) for k, v in norm.items()})
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=str(v))
    onnx.checker.check_model(m)
    onnx.save(m, path)


def opencv_max_diff(model, path, height, width, batch=8, seed=0):
    """(max |OpenCV - PyTorch| of the logits, max |logit|) on a random batch, or None without cv2."""
    try:
        import cv2
    except ImportError:
        return None
    x = torch.randn(batch, int(model.feed_attrs["in_channels"]), height, width, generator=torch.Generator().manual_seed(seed))
    try:
        net = cv2.dnn.readNetFromONNX(path)
        net.setInput(x.numpy())
        ours = net.forward()
    except cv2.error as e:
        raise OpenCVError(f"OpenCV's DNN module cannot run the ONNX file: {str(e).strip().splitlines()[-1]}")
    with torch.no_grad():
        ref = model(x).numpy()
    return float(np.abs(ours - ref).max()), float(np.abs(ref).max())


def write_onnx(model, path, height, width, norm, opset):
    """export_onnx, then OpenCV's check on the written file; prints what was checked."""
    export_onnx(model, path, height, width, norm, opset)
    print(f"ONNX opset {opset}, input N x {model.feed_attrs['in_channels']} x {height} x {width}"
          + (f", mean {norm['mean']} std {norm['std']}" if norm else ", normalisation not recorded")
          + ", onnx.checker ok")
    diff = opencv_max_diff(model, path, height, width)
    if diff is None:
        print("OpenCV (cv2) not installed: DNN check skipped")
        return
    print(f"OpenCV DNN vs PyTorch on a random batch: max abs diff {diff[0]:.3g} (logits up to {diff[1]:.3g})")
    if diff[0] > OPENCV_TOLERANCE * max(1.0, diff[1]):
        raise OpenCVError(f"OpenCV's logits differ from PyTorch's by more than {OPENCV_TOLERANCE} x "
                          "max(1, max |logit|); no ONNX file written")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    ap.add_argument("checkpoint", metavar="CKPT.h5")
    ap.add_argument("out", metavar="OUT.pt", help="state_dict file to write (torch.save)")
    ap.add_argument("--onnx", metavar="OUT.onnx", help="also export the eval-mode model as ONNX")
    ap.add_argument("--size", type=parse_size, metavar="HW", help="image size HW or HxW when the checkpoint has none")
    ap.add_argument("--data", metavar="D.h5", help="data set file: mean/std for the ONNX metadata, and the "
                                                   "image size when neither the checkpoint nor --size gives it")
    ap.add_argument("--opset", type=int, default=11, help="ONNX opset (default 11; OpenCV 4.6 reads 11 and 13)")
    ap.add_argument("--force", action="store_true", help="replace existing output files")
    a = ap.parse_args()
    try:
        model = load_checkpoint(a.checkpoint)
        attrs = model.feed_attrs
        if a.onnx:  # everything the export needs is settled before anything is written
            h, w, norm = input_geometry(attrs, a.size, data_set_of(attrs, a.data))
        save_atomic(a.out, lambda p: torch.save(model.state_dict(), p), a.force)
        print(f"{a.out}: state_dict of build_model({attrs['arch']!r}, in_channels={attrs['in_channels']}, "
              f"num_classes={attrs['num_classes']})")
        if a.onnx:
            save_atomic(a.onnx, lambda p: write_onnx(model, p, h, w, norm, a.opset), a.force)
            print(f"{a.onnx}: the ONNX model")
    except OpenCVError as e:
        print(f"feed2torch.py: {e}", file=sys.stderr)
        return 1
    except (CheckpointError, OSError) as e:
        print(f"feed2torch.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
