"""torch_models.py - PyTorch reference definitions of every network feed_mpi trains.

These models are the ground truth the C engine (src/nn/) is compared against: same layer
order, same state_dict keys (docs/checkpoint.md: checkpoint key = state_dict key with '.' -> '/'),
same initialisation rule. Run with /usr/bin/python3 (Debian's python3-torch 1.13).

Every model takes in_channels and num_classes, and has
    model(x)                   -> logits                      (B, num_classes)
    model.forward_feats(x)     -> (logits, feats)             feats: dict name -> tensor
feats always holds 'final' (the "final feature map" of docs/methods.md: output of the last stage after its
ReLU, before global average pooling; WRN: after the final BN+ReLU) and one entry per stage
('layer1', 'layer2', ...; the raw output of that stage's last block).

Initialisation (all models): conv weights kaiming_normal_(mode='fan_out', nonlinearity='relu'),
BN weight 1 / bias 0, Linear keeps PyTorch's default (kaiming_uniform(a=sqrt(5)) + uniform bias).
No conv has a bias except the NTL's.

Models and their state_dict keys
--------------------------------
CifarResNet(depth=6n+2, shortcut='A'|'B')   ResNet-20/32/44/56/110 (He et al. 2016, CIFAR):
    conv1.weight (16,C,3,3), bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
    layer{1,2,3}.{i}.conv1.weight, .bn1.*, .conv2.weight, .bn2.*      i = 0..n-1
    option B, first block of layer2/layer3 only:
        layer{2,3}.0.shortcut.0.weight (1x1 conv, stride 2), layer{2,3}.0.shortcut.1.* (BN)
    option A has no shortcut parameters: y[:, :, ::2, ::2] zero-padded with
        (C_out-C_in)//2 channels in front and the rest behind.
    fc.weight (num_classes,64), fc.bias
    Block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); stride 2 on conv1 of the first
    block of layer2 and layer3. Widths 16/32/64.

WideResNet(depth, widen, dropout)   pre-activation WRN-d-k (Zagoruyko & Komodakis 2016).
    We use layer1..3 (not block1..3) so all CIFAR models share the stage names.
    conv1.weight (16,C,3,3)
    layer{1,2,3}.{i}.bn1.*, .conv1.weight, .bn2.*, .conv2.weight      i = 0..n-1, n=(d-4)/6
    layer{s}.{i}.shortcut.weight   1x1 conv (no BN), only where C_in != C_out or stride 2
    bn_final.*    BN of the last stage output (followed by ReLU)
    fc.weight (num_classes,64k), fc.bias
    Block (like the reference code): o = relu(bn1(x)); y = conv1(o) [stride];
      y = conv2(dropout(relu(bn2(y)))); out = y + (x if no shortcut conv else shortcut(o)).
    Widths 16k/32k/64k, strides 1/2/2. feats['final'] = relu(bn_final(layer3 out)).

CifarResNeXt(depth=9m+2, cardinality c, base_width d, widen=4)   ResNeXt-29 (c x d)
    conv1.weight (64,C,3,3), bn1.*
    layer{1,2,3}.{i}.conv1.weight (D,Cin,1,1), .bn1.*       D = c * d * 2^(stage-1)
                    .conv2.weight (D,D/c,3,3) groups=c, stride 2 in the first block of
                                  layer2/3, .bn2.*
                    .conv3.weight (Cout,D,1,1), .bn3.*       Cout = 64*widen*2^(stage-1)
                    .shortcut.0.weight (1x1 conv, stride), .shortcut.1.* (BN)  where shape changes
    fc.weight (num_classes, 256*widen), fc.bias
    Block: relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)).
    ResNeXt-29 16x64d = depth 29, c 16, d 64, widen 4 (final map 1024x8x8). Smaller test
    variants lower depth (11 = one block per stage) and widen.

ImageNetResNet(depth=18|34)   torchvision resnet18/resnet34 (BasicBlock), same keys:
    conv1.weight (64,C,7,7) stride 2 pad 3, bn1.*, relu, maxpool 3x3 stride 2 pad 1
    layer{1..4}.{i}.conv1.weight, .bn1.*, .conv2.weight, .bn2.*
    layer{2,3,4}.0.downsample.0.weight (1x1 conv stride 2), .downsample.1.* (BN)
    fc.weight (num_classes,512), fc.bias.   Adaptive average pooling to 1x1.

NTL(c_s, c_t, bn=False)   FEED's non-linear transformation layer (docs/methods.md):
    conv1.{weight,bias} (c_t,c_s,3,3), conv2.{weight,bias} (c_t,c_t,3,3), conv3.{...}
    each conv stride 1 pad 1, followed by LeakyReLU(0.1); with bn=True a BN (bn1..bn3) sits
    between each conv and its LeakyReLU. Kaiming-normal (fan_out) weights; biases keep
    PyTorch's default conv bias init.

feed_loss(student_out, teacher_map): mean |u - w| with u, w the per-sample L2-normalised
    flattened maps (v / max(||v||, 1e-12)), i.e. F.normalize(v.flatten(1)) + L1Loss.

Translator(c_s, c_f)   FT's translator (student side): conv0 (c_s->c_s), conv1 (c_s->c_f),
    conv2 (c_f->c_f), 3x3 pad 1 with bias, each followed by LeakyReLU(0.1).
Paraphraser(c_t, c_f)  FT's paraphraser (teacher side): encoder conv0 (c_t->c_t), conv1
    (c_t->c_f), conv2 (c_f->c_f); decoder ConvTranspose2d deconv0 (c_f->c_f), deconv1 (c_f->c_t),
    deconv2 (c_t->c_t); 3x3 stride 1 pad 1 with bias, each followed by LeakyReLU(0.1).
    encode(x) gives the factor, forward(x) the reconstruction. Both keep PyTorch's default
    initialisation, as the official FT code (Jangho-Kim/Factor-Transfer-pytorch).
Regressor(c_s, c_t)    the L1 baseline's 1x1 conv (bias) from c_s to c_t channels, used when
    the teacher's final map is wider or narrower than the student's.
attention(x): F.normalize(x.pow(2).mean(1).flatten(1)) (B, H*W), attention transfer's map.
kd_soft_targets(teacher_logits, T): mean over teachers of softmax(t / T).
kd_loss(s, p, T): T^2 * kl_div(log_softmax(s / T), p, 'sum') / B (RepDistiller's DistillKL).

build_model(name, in_channels, num_classes) understands: resnet20|32|44|56|110 [-a|-b],
    wrn-D-K, resnext29-CxDd (also resnextN-CxDd-wW for depth N, widen W), resnet18|34.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def init_weights(model):
    """Kaiming-normal (fan_out, relu) convs, BN 1/0; Linear stays at PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def conv3x3(cin, cout, stride=1, groups=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class StagedNet(nn.Module):
    """Base: subclasses define stem(x), stage modules layer1.., and head(final) -> logits."""

    stage_names = ()

    def stem(self, x):
        raise NotImplementedError

    def final_map(self, last_stage_out):
        return last_stage_out

    def forward_feats(self, x):
        feats = {}
        y = self.stem(x)
        for name in self.stage_names:
            y = getattr(self, name)(y)
            feats[name] = y
        final = self.final_map(y)
        feats["final"] = final
        logits = self.fc(torch.flatten(F.adaptive_avg_pool2d(final, 1), 1))
        return logits, feats

    def forward(self, x):
        return self.forward_feats(x)[0]


# ----------------------------------------------------------------------------- CIFAR ResNet


class ShortcutA(nn.Module):
    """Option A: subsample x[:, :, ::2, ::2] (if stride 2) and zero-pad channels, no params."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride, self.pad_front, self.pad_back = stride, (cout - cin) // 2, cout - cin - (cout - cin) // 2

    def forward(self, x):
        if self.stride == 2:
            x = x[:, :, ::2, ::2]
        return F.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back))


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); `shortcut_kind` names the
    parameter module: 'shortcut' (CIFAR option B), 'downsample' (torchvision) or 'A'."""

    def __init__(self, cin, cout, stride, shortcut_kind):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.has_proj = stride != 1 or cin != cout
        self.shortcut_name = None
        if self.has_proj:
            if shortcut_kind == "A":
                self.shortcut_a = ShortcutA(cin, cout, stride)
            else:
                self.shortcut_name = shortcut_kind
                setattr(self, shortcut_kind, nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout)))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if not self.has_proj:
            sc = x
        elif self.shortcut_name is None:
            sc = self.shortcut_a(x)
        else:
            sc = getattr(self, self.shortcut_name)(x)
        return F.relu(y + sc)


class CifarResNet(StagedNet):
    """ResNet-(6n+2) for 32x32 inputs; see the module docstring for keys."""

    stage_names = ("layer1", "layer2", "layer3")

    def __init__(self, depth=56, shortcut="B", in_channels=3, num_classes=10):
        super().__init__()
        assert (depth - 2) % 6 == 0, "CIFAR ResNet depth must be 6n+2"
        assert shortcut in ("A", "B")
        n = (depth - 2) // 6
        kind = "A" if shortcut == "A" else "shortcut"
        self.conv1, self.bn1 = conv3x3(in_channels, 16), nn.BatchNorm2d(16)
        cin = 16
        for s, (cout, stride) in enumerate([(16, 1), (32, 2), (64, 2)]):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1, kind))
                cin = cout
            setattr(self, self.stage_names[s], nn.Sequential(*blocks))
        self.fc = nn.Linear(64, num_classes)
        init_weights(self)

    def stem(self, x):
        return F.relu(self.bn1(self.conv1(x)))


# ----------------------------------------------------------------------------- Wide ResNet


class WideBlock(nn.Module):
    """Pre-activation block: o = relu(bn1(x)); y = conv2(dropout(relu(bn2(conv1(o)))));
    out = y + (x or shortcut(o))."""

    def __init__(self, cin, cout, stride, dropout):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv3x3(cout, cout)
        self.dropout = dropout
        self.shortcut = conv1x1(cin, cout, stride) if (stride != 1 or cin != cout) else None

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = F.relu(self.bn2(self.conv1(o)))
        if self.dropout > 0:
            y = F.dropout(y, p=self.dropout, training=self.training)
        y = self.conv2(y)
        return y + (x if self.shortcut is None else self.shortcut(o))


class WideResNet(StagedNet):
    """WRN-depth-widen, pre-activation, optional dropout; keys in the module docstring."""

    stage_names = ("layer1", "layer2", "layer3")

    def __init__(self, depth=28, widen=10, dropout=0.0, in_channels=3, num_classes=10):
        super().__init__()
        assert (depth - 4) % 6 == 0, "WRN depth must be 6n+4"
        n = (depth - 4) // 6
        self.conv1 = conv3x3(in_channels, 16)
        cin = 16
        for s, (cout, stride) in enumerate([(16 * widen, 1), (32 * widen, 2), (64 * widen, 2)]):
            blocks = []
            for i in range(n):
                blocks.append(WideBlock(cin, cout, stride if i == 0 else 1, dropout))
                cin = cout
            setattr(self, self.stage_names[s], nn.Sequential(*blocks))
        self.bn_final = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def stem(self, x):
        return self.conv1(x)

    def final_map(self, last_stage_out):
        return F.relu(self.bn_final(last_stage_out))


# ----------------------------------------------------------------------------- ResNeXt


class NeXtBlock(nn.Module):
    """Bottleneck: 1x1 (Cin->D), grouped 3x3 (D->D, groups c, stride), 1x1 (D->Cout), + shortcut."""

    def __init__(self, cin, cout, stride, width, cardinality):
        super().__init__()
        self.conv1, self.bn1 = conv1x1(cin, width), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, width, stride, groups=cardinality), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = conv1x1(width, cout), nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class CifarResNeXt(StagedNet):
    """ResNeXt-(9m+2) (c x d) for 32x32 inputs, widths 64*widen*{1,2,4}."""

    stage_names = ("layer1", "layer2", "layer3")

    def __init__(self, depth=29, cardinality=16, base_width=64, widen=4, in_channels=3, num_classes=10):
        super().__init__()
        assert (depth - 2) % 9 == 0, "ResNeXt depth must be 9m+2"
        m = (depth - 2) // 9
        self.conv1, self.bn1 = conv3x3(in_channels, 64), nn.BatchNorm2d(64)
        cin = 64
        for s in range(3):
            cout, width, stride = 64 * widen * 2**s, cardinality * base_width * 2**s, 1 if s == 0 else 2
            blocks = []
            for i in range(m):
                blocks.append(NeXtBlock(cin, cout, stride if i == 0 else 1, width, cardinality))
                cin = cout
            setattr(self, self.stage_names[s], nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def stem(self, x):
        return F.relu(self.bn1(self.conv1(x)))


# ----------------------------------------------------------------------------- ImageNet ResNet


class ImageNetResNet(StagedNet):
    """torchvision resnet18 / resnet34 (BasicBlock) with configurable in_channels."""

    stage_names = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, depth=18, in_channels=3, num_classes=1000):
        super().__init__()
        blocks_per_stage = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[depth]
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for s, nblocks in enumerate(blocks_per_stage):
            cout, stride = 64 * 2**s, 1 if s == 0 else 2
            blocks = []
            for i in range(nblocks):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1, "downsample"))
                cin = cout
            setattr(self, self.stage_names[s], nn.Sequential(*blocks))
        self.fc = nn.Linear(512, num_classes)
        init_weights(self)

    def stem(self, x):
        return F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)


# ----------------------------------------------------------------------------- FEED parts


class NTL(nn.Module):
    """Three 3x3 convs (bias) C_s->C_t->C_t->C_t, each followed by LeakyReLU(0.1)
    (optional BN before the activation). (B,C_s,H,W) -> (B,C_t,H,W)."""

    def __init__(self, c_s, c_t, bn=False):
        super().__init__()
        self.use_bn = bn
        for i, cin in enumerate([c_s, c_t, c_t], start=1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, c_t, 3, padding=1, bias=True))
            if bn:
                setattr(self, f"bn{i}", nn.BatchNorm2d(c_t))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        for i in (1, 2, 3):
            x = getattr(self, f"conv{i}")(x)
            if self.use_bn:
                x = getattr(self, f"bn{i}")(x)
            x = F.leaky_relu(x, 0.1)
        return x


def feed_loss(student_out, teacher_map):
    """FEED normalised L1: mean over B*D of |normalize(vec(s)) - normalize(vec(t))|.
    student_out, teacher_map: (B, C_t, H, W) (the teacher side is detached)."""
    u = F.normalize(student_out.flatten(1), p=2, dim=1, eps=1e-12)
    w = F.normalize(teacher_map.detach().flatten(1), p=2, dim=1, eps=1e-12)
    return F.l1_loss(u, w)


def _leaky_stack(module, kind, cins, couts, first=0):
    """Attributes <kind><first>.. of 3x3 stride-1 pad-1 (transposed) convolutions with bias."""
    conv = nn.ConvTranspose2d if kind == "deconv" else nn.Conv2d
    for i, (cin, cout) in enumerate(zip(cins, couts), start=first):
        setattr(module, f"{kind}{i}", conv(cin, cout, 3, stride=1, padding=1, bias=True))


def _run_stack(module, kind, x, n=3, first=0):
    for i in range(first, first + n):
        x = F.leaky_relu(getattr(module, f"{kind}{i}")(x), 0.1)
    return x


class Translator(nn.Module):
    """FT translator: (B,c_s,H,W) -> (B,c_f,H,W)."""

    def __init__(self, c_s, c_f):
        super().__init__()
        _leaky_stack(self, "conv", [c_s, c_s, c_f], [c_s, c_f, c_f])

    def forward(self, x):
        return _run_stack(self, "conv", x)


class Paraphraser(nn.Module):
    """FT paraphraser: encode (B,c_t,H,W) -> (B,c_f,H,W); forward reconstructs (B,c_t,H,W)."""

    def __init__(self, c_t, c_f):
        super().__init__()
        _leaky_stack(self, "conv", [c_t, c_t, c_f], [c_t, c_f, c_f])
        _leaky_stack(self, "deconv", [c_f, c_f, c_t], [c_f, c_t, c_t])

    def encode(self, x):
        return _run_stack(self, "conv", x)

    def forward(self, x):
        return _run_stack(self, "deconv", self.encode(x))


class Regressor(nn.Module):
    """L1 baseline's 1x1 conv c_s -> c_t (bias), no activation."""

    def __init__(self, c_s, c_t):
        super().__init__()
        self.conv = nn.Conv2d(c_s, c_t, 1, bias=True)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.conv(x)


def attention(x):
    """Attention transfer's map of a stage output x (B,C,H,W): (B, H*W), unit norm per sample."""
    return F.normalize(x.pow(2).mean(1).flatten(1), p=2, dim=1, eps=1e-12)


def kd_soft_targets(teacher_logits, T):
    """Mean over teachers of softmax(t / T); teacher_logits: list of (B,K)."""
    return torch.stack([F.softmax(t.detach() / T, dim=1) for t in teacher_logits]).mean(0)


def kd_loss(s, p, T):
    """T^2 * KL(p || softmax(s/T)) summed over classes, averaged over the batch."""
    return F.kl_div(F.log_softmax(s / T, dim=1), p, reduction="sum") * T * T / s.shape[0]


# ----------------------------------------------------------------------------- factory


def build_model(name, in_channels=3, num_classes=10, dropout=0.0):
    """'resnet56' / 'resnet56-b' (option B, default) / 'resnet20-a', 'wrn-28-10',
    'resnext29-16x64d', 'resnext11-2x4d-w1', 'resnet18', 'resnet34'."""
    parts = name.lower().split("-")
    head = parts[0]
    if head == "wrn":
        return WideResNet(int(parts[1]), int(parts[2]), dropout, in_channels, num_classes)
    if head.startswith("resnext"):
        c, d = parts[1].rstrip("d").split("x")
        widen = int(parts[2][1:]) if len(parts) > 2 else 4
        return CifarResNeXt(int(head[7:]), int(c), int(d), widen, in_channels, num_classes)
    if head in ("resnet18", "resnet34"):
        return ImageNetResNet(int(head[6:]), in_channels, num_classes)
    if head.startswith("resnet"):
        shortcut = parts[1].upper() if len(parts) > 1 else "B"
        return CifarResNet(int(head[6:]), shortcut, in_channels, num_classes)
    raise ValueError(f"unknown model name {name!r}")


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def _self_check():
    """Parameter counts of known definitions and feature-map shapes."""
    n56 = count_params(CifarResNet(56, "B", 3, 100))
    assert n56 == 861620, f"ResNet-56 (100 classes, option B) has {n56} params, expected 861,620"
    n18 = count_params(ImageNetResNet(18, 3, 1000))
    assert n18 == 11689512, f"ResNet-18 has {n18} params, torchvision has 11,689,512"
    n34 = count_params(ImageNetResNet(34, 3, 1000))
    assert n34 == 21797672, f"ResNet-34 has {n34} params, torchvision has 21,797,672"
    x = torch.randn(2, 3, 32, 32)
    for name, shape in [("resnet20-a", (64, 8, 8)), ("wrn-10-2", (128, 8, 8)),
                        ("resnext11-2x4d-w1", (256, 8, 8)), ("resnet18", (512, 1, 1))]:
        logits, feats = build_model(name).forward_feats(x)
        assert tuple(feats["final"].shape[1:]) == shape, (name, feats["final"].shape)
        assert logits.shape == (2, 10)
    return {"resnet56_100_B": n56, "resnet18": n18, "resnet34": n34}


if __name__ == "__main__":
    print(_self_check())
    for name in ["resnet20-a", "resnet20-b", "resnet56-b", "wrn-10-2", "wrn-28-10",
                 "resnext29-16x64d", "resnext11-2x4d-w1", "resnet18", "resnet34"]:
        print(f"{name:20s} params(10 classes) = {count_params(build_model(name)):,}")
