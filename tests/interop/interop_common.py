"""interop_common.py - what the interop tests share: Fashion-MNIST as normalised tensors, a
short seeded PyTorch training of a ResNet-20 (a real model, not a random one, so that equal
error counts mean something), PyTorch's error count and loss, and `feed_mpi eval --json`."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import h5py  # noqa: E402
import numpy as np  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError as e:
    sys.exit(f"FAIL: {e}: install python3-torch (./tools/setup.sh does)")


def load_split(data, split):
    """(x, y) of a split: x (N,C,H,W) float32 normalised (x/255 - mean)/std with the file's
    per-channel mean/std in float32, as feed_mpi's loader does; y int64."""
    with h5py.File(data, "r") as f:
        x = f[f"{split}/images"][()].astype(np.float32) / np.float32(255)
        y = f[f"{split}/labels"][()].astype(np.int64)
        mean = np.asarray(f.attrs["mean"], np.float32)
        std = np.asarray(f.attrs["std"], np.float32)
    x = np.ascontiguousarray(((x - mean) / std).transpose(0, 3, 1, 2))
    return torch.from_numpy(x), torch.from_numpy(y)


def train_resnet20(data, tools, n_train=2000, steps=100, batch=50, seed=0):
    """A ResNet-20 (option B, 1 channel, 10 classes) trained by SGD for `steps` steps on the
    first n_train training images; returned in eval mode."""
    sys.path.insert(0, tools)
    from torch_models import build_model
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    model = build_model("resnet20", 1, 10)
    # Trained once per build for the tests that share it: kept beside the data fixture, keyed
    # by the recipe, written by rename so that tests running side by side never read half.
    cache = os.path.join(os.path.dirname(os.path.abspath(data)),
                         f"torch_resnet20_n{n_train}_s{steps}_b{batch}_seed{seed}.pt")
    if os.path.exists(cache):
        model.load_state_dict(torch.load(cache))
        return model.eval()
    x, y = load_split(data, "train")
    x, y = x[:n_train], y[:n_train]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, n_train, (batch,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    torch.save(model.state_dict(), cache + f".{os.getpid()}.tmp")
    os.replace(cache + f".{os.getpid()}.tmp", cache)
    return model.eval()


def logits_of(model, x, batch=500):
    """Eval-mode logits of all of x, in batches."""
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def errors_and_loss(logits, y):
    """(number of wrong argmax predictions, mean cross-entropy) as feed_mpi eval reports them."""
    logits, y = torch.as_tensor(logits), torch.as_tensor(y)
    return int((logits.argmax(1) != y).sum()), float(F.cross_entropy(logits.double(), y))


def feed_eval(feed_mpi, data, ckpt):
    """The first model of `feed_mpi eval --json` (errors, loss, ... and the run's samples), or
    None, and the command's output."""
    r = subprocess.run([feed_mpi, "eval", "--json", "--data", data, ckpt], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=600)
    if r.returncode != 0:
        return None, r.stdout
    ev = json.loads(r.stdout)
    return dict(ev["models"][0], samples=ev["samples"]), r.stdout


def close(a, b, rel=1e-4):
    """|a - b| within rel of the larger magnitude (at least 1)."""
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))
