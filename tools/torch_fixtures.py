#!/usr/bin/python3
"""torch_fixtures.py - PyTorch reference fixtures for the C engine's tests.

    /usr/bin/python3 tools/torch_fixtures.py --out DIR [--only NAME[,NAME...]] [--list]

Deterministic (fixed seeds, torch.use_deterministic_algorithms, one thread); a few seconds.
All arrays are float32 in plain C order with PyTorch shapes unless noted. HDF5 keys are
state_dict keys with '.' replaced by '/'. String attributes are variable-length UTF-8.

Model fixtures  DIR/<name>.h5
-----------------------------
name             model (tools/torch_models.py)                          input (B,C,H,W)
resnet20_a       CifarResNet(20, shortcut 'A'), 10 classes                 (8,3,32,32)
resnet20_b       CifarResNet(20, shortcut 'B'), 10 classes                 (8,3,32,32)
wrn10_2          WideResNet(10, 2, dropout 0), 10 classes                  (8,3,32,32)
resnext11_2x4d   CifarResNeXt(11, cardinality 2, base_width 4, widen 1):   (8,3,32,32)
                 one bottleneck block per stage (all with projection shortcuts), stage
                 widths 64/128/256 (widen=1; the paper's widen=4 gives 256/512/1024),
                 grouped 3x3 convs with 2 groups. Well conditioned: use it for tight checks.
resnext29_2x4d   CifarResNeXt(29, 2, 4, widen 1): the full-depth variant (3 blocks per
                 stage, identity shortcuts too). PyTorch's fp32 gradients of its deep
                 convs already differ from fp64 by ~4e-2 (the error enters with the
                 gradient coming out of BN backward; the conv's own weight-gradient sum is
                 accurate) and the 3 steps diverge (loss 2.5 -> 4.9), so compare it
                 against /fp32_noise, not 1e-3.
Seeds are chosen (1..8 searched) so that the other fixtures are well conditioned: PyTorch fp32
vs fp64 within ~1e-5 for grads and after3. With other seeds 3 steps at lr 0.1 on 8 images
often amplify rounding to 1e-3..1 (even plain ResNet-20).
resnet18         ImageNetResNet(18) (torchvision resnet18), 10 classes     (4,3,64,64)
                 (only with --only resnet18: ctest uses tests/nn/nn_fixtures.py's instead)

root attributes  arch (str: resnet_cifar | wrn | resnext | resnet_imagenet), model (str, the
                 torch_models.build_model name), shortcut (str 'A'|'B'|''), depth, widen,
                 cardinality, base_width, in_channels, height, width, num_classes, batch (int64),
                 dropout, lr, momentum, weight_decay (float64), nesterov (int64 0/1), seed (int64)
/weights/<key>   initial state_dict: parameters and BN buffers (running_mean, running_var
                 float32; num_batches_tracked int64 scalar)
/input           (B,C,H,W) float32, N(0,1)
/labels          (B,) int32 in [0, num_classes)
/logits          (B,num_classes) train-mode forward at the initial weights
/loss            scalar float32: cross-entropy, mean over the batch
/feats/<name>    taps of that forward: the stage outputs layer1..layer3 (..layer4 for
                 resnet18) and final (the final feature map, docs/methods.md)
/grads/<key>     d loss / d parameter for every parameter (not for buffers), train-mode BN
/bn_after_forward/<key>   every BN buffer (running_mean, running_var, num_batches_tracked)
                 after that single train-mode forward
/after3/<key>    full state_dict after 3 SGD steps on the same batch (train mode, forward +
                 backward + step each time): lr 0.1, momentum 0.9, nesterov, weight decay 5e-4
                 applied to every parameter (PyTorch default, BN and bias included)
/after3_losses   (3,) float32 loss before each of the 3 steps (the first equals /loss)
/fp32_noise/{logits,loss,grads/<key>,after3/<key>}   float64 scalars: how far PyTorch's own
                 fp32 result is from the same computation in fp64 (max |fp32 - fp64| / max
                 |fp64|). An fp32 engine cannot be expected to match closer than this; root
                 attributes fp32_noise_grads and fp32_noise_after3 hold the worst key.

FEED loss fixture  DIR/feed_loss.h5
-----------------------------------
attrs: batch B=4, student_channels Cs=16, height H=8, width W=8, num_teachers N=2,
       teacher_channels (N,) int64 = [32, 16], beta=500.0, eps=1e-12, seed
/student_map              x^S (B,Cs,H,W), non-negative (ReLU of N(0,1))
/teacher/<n>/map          x^T_n (B,Ct_n,H,W), non-negative
/teacher/<n>/ntl/<key>    NTL_n weights: conv{1,2,3}/{weight,bias} (torch_models.NTL, no BN)
/teacher/<n>/ntl_out      NTL_n(x^S) (B,Ct_n,H,W)
/teacher/<n>/loss         scalar: L_FEED(n) (without beta)
/teacher/<n>/grad_ntl_out dL/dNTL_n(x^S) of L = beta * sum_n L_FEED(n)   (B,Ct_n,H,W)
/teacher/<n>/grads/ntl/<key>  dL/d(NTL_n parameter)
/total_loss               scalar: L = beta * sum_n L_FEED(n)
/grad_student_map         dL/dx^S through both NTLs (B,Cs,H,W)
L1 baseline (no NTL, teachers with the student's shape; sample 0 of teacher 1 is exactly
2 * x^S, so u - w = 0 there and sign(0) = 0 is exercised):
/l1/teacher/<n>/map       (B,Cs,H,W)
/l1/teacher/<n>/loss      scalar: mean |normalize(x^S) - normalize(x^T_n)|
/l1/total_loss            beta * sum_n loss
/l1/grad_student_map      dL/dx^S (B,Cs,H,W)

Distillation terms fixture  DIR/terms.h5
----------------------------------------
Every term of src/distill/ (docs/methods.md) on the same student outputs and two teachers.
attrs: batch B=4, classes K=10, num_teachers N=2, student_channels (3,) = stage widths
       [4, 8, 16], stage_hw (3,) = [8, 4, 4] (square stages; the final map is stage 3),
       teacher_channels (N,3) = [[4, 8, 16], [8, 16, 32]], factor_channels (N,) = [8, 16],
       beta 500 (feed, l1, ft), at_beta 1000, T 4, alpha 0.9, seed
/student/logits (B,K); /student/layer{1,2,3} (B,C_s,H_s,W_s) post-ReLU; /student/final = layer3
/teacher/<n>/logits (B,K), /teacher/<n>/final (B,C_t,H,W), /teacher/<n>/attention/{1,2,3}
    (B, H_s*W_s) = torch_models.attention of the teacher's stage outputs, /teacher/<n>/factor
    (B,C_f,H,W) = Paraphraser(C_t, C_f).encode(final) with the weights /teacher/<n>/paraphraser/<key>
kd:   /kd/soft_targets (B,K), /kd/loss (T^2 KL, without alpha), /kd/dlogits = d(alpha * loss)/ds
at:   /at/teacher/<n>/loss = sum over stages of mean((Q_S - Q_T)^2); /at/grad/layer{s} =
      d(sum_n at_beta/2 * loss_n)/d layer_s
feed: /feed/teacher/<n>/ntl/<key> (NTL(C_s, C_t) weights), /feed/teacher/<n>/loss,
      /feed/teacher/<n>/grads/<key>, /feed/grad_final = d(beta * sum_n loss_n)/d final
l1:   teacher 0 has the student's width (identity), teacher 1 twice it (Regressor weights
      /l1/teacher/1/regressor/<key>, grads /l1/teacher/1/grads/<key>); /l1/teacher/<n>/loss,
      /l1/grad_final
ft:   /ft/teacher/<n>/translator/<key> (Translator(C_s, C_f) weights), /ft/teacher/<n>/loss,
      /ft/teacher/<n>/grads/<key>, /ft/grad_final
paraphraser training: /paraphraser/init/<key> (Paraphraser(16, 8)), /paraphraser/inputs (3,B,16,4,4)
      (post-ReLU maps), 3 steps of L1Loss(p(x), x) with SGD lr 0.1, momentum 0.9, weight decay
      5e-4: /paraphraser/losses (3,), /paraphraser/after3/<key>

Cross-entropy fixture  DIR/ce.h5
--------------------------------
/logits (B=6,K=5) float32, /labels (B,) int32; for s in {0, 0.1}:
/smoothing_<s>/loss scalar, /smoothing_<s>/dlogits (B,K)   (F.cross_entropy, mean,
label_smoothing=s); groups smoothing_0 and smoothing_0p1 (s = 0.1)

Optimizer fixture  DIR/optim.h5
-------------------------------
/sgd/<case>/  with attrs lr, momentum, dampening, weight_decay, nesterov, steps:
    param0 (n,) initial values of a flat parameter; decay (scalar int 1/0: weight decay on it)
    param1 (m,), decay of param1 = 0 (a second parameter group with weight_decay 0)
    grads0 (steps,n), grads1 (steps,m)  the gradient fed at each step (fixed, not computed)
    after0 (steps,n), after1 (steps,m)  parameter values after each step
    buf0, buf1                          momentum buffers after the last step
  cases: plain (momentum 0, wd 0), momentum (0.9, wd 5e-4), nesterov (0.9, wd 5e-4),
         dampening (0.9, dampening 0.1, wd 1e-4)
/lr/multistep   attrs base_lr 0.1, gamma 0.2, milestones [60,120,160], epochs 200;
                values (epochs,) float64: lr of each epoch from torch.optim.lr_scheduler.MultiStepLR
/lr/cosine      attrs base_lr 0.1, eta_min 0, epochs 200 (T_max): CosineAnnealingLR, values
/lr/cosine_min  same with eta_min 1e-3, T_max 50, epochs 120 (runs past T_max)
"""
import argparse
import os
import sys

try:
    import numpy as np
    import h5py
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.stderr.write(
        f"torch_fixtures.py: error: cannot import {e.name}: {e}\n"
        "  hint: run with /usr/bin/python3 and install python3-torch python3-h5py python3-numpy "
        "(tools/setup.sh installs them)\n")
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models as tm  # noqa: E402

SGD_RECIPE = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)

# name -> (build_model name, attrs, input shape (B,C,H,W), num_classes, seed). Seeds are chosen
# so that PyTorch's own fp32 result agrees with fp64 (see /fp32_noise): 3 SGD steps at lr 0.1
# on one tiny batch amplify rounding differences chaotically for many seeds.
MODEL_FIXTURES = {
    "resnet20_a": ("resnet20-a", dict(arch="resnet_cifar", shortcut="A", depth=20), (8, 3, 32, 32), 10, 1),
    "resnet20_b": ("resnet20-b", dict(arch="resnet_cifar", shortcut="B", depth=20), (8, 3, 32, 32), 10, 2),
    "wrn10_2": ("wrn-10-2", dict(arch="wrn", depth=10, widen=2), (8, 3, 32, 32), 10, 1234),
    "resnext11_2x4d": ("resnext11-2x4d-w1", dict(arch="resnext", depth=11, cardinality=2, base_width=4, widen=1),
                       (8, 3, 32, 32), 10, 4),
    "resnext29_2x4d": ("resnext29-2x4d-w1", dict(arch="resnext", depth=29, cardinality=2, base_width=4, widen=1),
                       (8, 3, 32, 32), 10, 1234),
    "resnet18": ("resnet18", dict(arch="resnet_imagenet", depth=18), (4, 3, 64, 64), 10, 7),
}


def deterministic(seed):
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def put(group, key, tensor):
    """Write a tensor (or number) at group/<key with '.' -> '/'> in its own dtype."""
    arr = tensor.detach().cpu().numpy() if torch.is_tensor(tensor) else np.asarray(tensor)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    group.create_dataset(key.replace(".", "/"), data=arr)


def put_state(h5, prefix, state):
    for key, value in state.items():
        put(h5, f"{prefix}/{key}", value)


def reference_run(model_name, shape, num_classes, seed, dtype, perturb=0.0):
    """Initial forward/backward and 3 SGD steps in `dtype`; returns tensors as float32/int64.
    perturb != 0 multiplies every parameter by (1 + perturb * N(0,1)) first (own generator,
    so the fixture's random stream is unchanged): a probe of how well conditioned it is."""
    deterministic(seed)
    model = tm.build_model(model_name, in_channels=shape[1], num_classes=num_classes)
    x = torch.randn(*shape)
    y = torch.randint(0, num_classes, (shape[0],), dtype=torch.int64)
    model, x = model.to(dtype), x.to(dtype)
    if perturb:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + perturb * torch.randn(p.shape, generator=gen).to(dtype))
    model.train()
    init_state = {k: v.clone() for k, v in model.state_dict().items()}

    logits, feats = model.forward_feats(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    r = dict(x=x, y=y, init_state=init_state, logits=logits.detach(), loss=loss.detach(),
             feats={k: v.detach() for k, v in feats.items()},
             grads={k: p.grad.clone() for k, p in model.named_parameters()},
             bn_after={k: v.clone() for k, v in model.state_dict().items()
                       if k.endswith(("running_mean", "running_var", "num_batches_tracked"))})

    model.load_state_dict(init_state)
    opt = torch.optim.SGD(model.parameters(), **SGD_RECIPE)
    r["step_losses"] = []
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        step_loss = F.cross_entropy(model(x), y)
        step_loss.backward()
        opt.step()
        r["step_losses"].append(step_loss.item())
    r["after3"] = {k: v.clone() for k, v in model.state_dict().items()}
    return r


def rel_error(a, b):
    """max |a - b| / max |b| in double (0 for integer tensors)."""
    if not b.is_floating_point():
        return 0.0
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def write_model_fixture(out_dir, name):
    model_name, arch_attrs, shape, num_classes, seed = MODEL_FIXTURES[name]
    r = reference_run(model_name, shape, num_classes, seed, torch.float32)
    exact = reference_run(model_name, shape, num_classes, seed, torch.float64)  # fp32 noise estimate
    noise = {"logits": rel_error(r["logits"], exact["logits"]), "loss": rel_error(r["loss"], exact["loss"])}
    noise.update({f"grads/{k}": rel_error(v, exact["grads"][k]) for k, v in r["grads"].items()})
    noise.update({f"after3/{k}": rel_error(v, exact["after3"][k]) for k, v in r["after3"].items()})

    path = os.path.join(out_dir, f"{name}.h5")
    with h5py.File(path + ".tmp", "w") as h5:
        attrs = dict(arch="", model=model_name, shortcut="", depth=0, widen=0, cardinality=0, base_width=0,
                     in_channels=shape[1], height=shape[2], width=shape[3], num_classes=num_classes,
                     batch=shape[0], dropout=0.0, seed=seed, nesterov=int(SGD_RECIPE["nesterov"]),
                     lr=SGD_RECIPE["lr"], momentum=SGD_RECIPE["momentum"],
                     weight_decay=SGD_RECIPE["weight_decay"])
        attrs.update(arch_attrs)
        for group in ("grads", "after3"):
            attrs[f"fp32_noise_{group}"] = max(v for k, v in noise.items() if k.startswith(group + "/"))
        for k, v in attrs.items():
            h5.attrs[k] = v if isinstance(v, (str, float)) else np.int64(v)
        put_state(h5, "weights", r["init_state"])
        put(h5, "input", r["x"])
        put(h5, "labels", r["y"].to(torch.int32))
        put(h5, "logits", r["logits"])
        put(h5, "loss", r["loss"])
        for k, v in r["feats"].items():
            put(h5, f"feats/{k}", v)
        put_state(h5, "grads", r["grads"])
        put_state(h5, "bn_after_forward", r["bn_after"])
        put_state(h5, "after3", r["after3"])
        put(h5, "after3_losses", np.array(r["step_losses"], dtype=np.float32))
        for k, v in noise.items():
            h5.create_dataset("fp32_noise/" + k.replace(".", "/"), data=np.float64(v))
    os.replace(path + ".tmp", path)
    worst = max(attrs["fp32_noise_grads"], attrs["fp32_noise_after3"])
    if worst > 1e-4:
        print(f"torch_fixtures: note: {name}: PyTorch fp32 vs fp64 differ by up to {worst:.2g} "
              f"(grads {attrs['fp32_noise_grads']:.2g}, after3 {attrs['fp32_noise_after3']:.2g}): "
              "see /fp32_noise in the file")
    return path


def write_feed_loss_fixture(out_dir, seed=77):
    deterministic(seed)
    B, Cs, H, W, beta = 4, 16, 8, 8, 500.0
    teacher_channels = [32, 16]
    xs = F.relu(torch.randn(B, Cs, H, W)).requires_grad_(True)
    teachers = [F.relu(torch.randn(B, ct, H, W)) for ct in teacher_channels]
    ntls = [tm.NTL(Cs, ct) for ct in teacher_channels]

    ntl_outs = [ntl(xs) for ntl in ntls]
    for o in ntl_outs:
        o.retain_grad()
    losses = [tm.feed_loss(o, t) for o, t in zip(ntl_outs, teachers)]
    total = beta * sum(losses)
    total.backward()

    xs_l1 = xs.detach().clone().requires_grad_(True)
    l1_teachers = [F.relu(torch.randn(B, Cs, H, W)) for _ in range(2)]
    l1_teachers[1][0] = 2.0 * xs_l1.detach()[0]  # exact tie: u - w == 0 on sample 0
    l1_losses = [tm.feed_loss(xs_l1, t) for t in l1_teachers]
    l1_total = beta * sum(l1_losses)
    l1_total.backward()

    path = os.path.join(out_dir, "feed_loss.h5")
    with h5py.File(path + ".tmp", "w") as h5:
        for k, v in dict(batch=B, student_channels=Cs, height=H, width=W, num_teachers=len(teachers),
                         seed=seed).items():
            h5.attrs[k] = np.int64(v)
        h5.attrs["teacher_channels"] = np.array(teacher_channels, dtype=np.int64)
        h5.attrs["beta"], h5.attrs["eps"] = beta, 1e-12
        put(h5, "student_map", xs)
        for n, (t, ntl, o, loss) in enumerate(zip(teachers, ntls, ntl_outs, losses)):
            put(h5, f"teacher/{n}/map", t)
            put_state(h5, f"teacher/{n}/ntl", ntl.state_dict())
            put(h5, f"teacher/{n}/ntl_out", o)
            put(h5, f"teacher/{n}/loss", loss)
            put(h5, f"teacher/{n}/grad_ntl_out", o.grad)
            put_state(h5, f"teacher/{n}/grads/ntl", {k: p.grad for k, p in ntl.named_parameters()})
        put(h5, "total_loss", total)
        put(h5, "grad_student_map", xs.grad)
        for n, (t, loss) in enumerate(zip(l1_teachers, l1_losses)):
            put(h5, f"l1/teacher/{n}/map", t)
            put(h5, f"l1/teacher/{n}/loss", loss)
        put(h5, "l1/total_loss", l1_total)
        put(h5, "l1/grad_student_map", xs_l1.grad)
    os.replace(path + ".tmp", path)
    return path


def write_terms_fixture(out_dir, seed=31):
    deterministic(seed)
    B, K, N, T, alpha, beta, at_beta = 4, 10, 2, 4.0, 0.9, 500.0, 1000.0
    cs, hw = [4, 8, 16], [8, 4, 4]
    ct = [[4, 8, 16], [8, 16, 32]]
    cf = [round(0.5 * c[-1]) for c in ct]
    leaf = lambda t: t.detach().clone().requires_grad_(True)  # noqa: E731
    s_logits = leaf(3.0 * torch.randn(B, K))
    s_layers = [leaf(F.relu(torch.randn(B, c, h, h))) for c, h in zip(cs, hw)]
    t_logits = [3.0 * torch.randn(B, K) for _ in range(N)]
    t_layers = [[F.relu(torch.randn(B, c, h, h)) for c, h in zip(ct[n], hw)] for n in range(N)]
    t_final = [layers[-1] for layers in t_layers]
    paraphrasers = [tm.Paraphraser(ct[n][-1], cf[n]) for n in range(N)]
    with torch.no_grad():
        factors = [p.encode(f) for p, f in zip(paraphrasers, t_final)]
    grads = {}

    def backward_to(total, leaves):
        for x in leaves:
            x.grad = None
        total.backward()
        return [x.grad.clone() for x in leaves]

    # KD
    p = tm.kd_soft_targets(t_logits, T)
    kd = tm.kd_loss(s_logits, p, T)
    grads["kd"] = backward_to(alpha * kd, [s_logits])
    # AT
    at_losses = [sum((tm.attention(s) - tm.attention(t)).pow(2).mean() for s, t in zip(s_layers, t_layers[n]))
                 for n in range(N)]
    grads["at"] = backward_to(at_beta / 2 * sum(at_losses), s_layers)
    # FEED, L1, FT: a module per teacher (or none) on the final map, FEED's normalised L1
    final = s_layers[-1]
    ntls = [tm.NTL(cs[-1], ct[n][-1]) for n in range(N)]
    regressors = [None, tm.Regressor(cs[-1], ct[1][-1])]
    translators = [tm.Translator(cs[-1], cf[n]) for n in range(N)]
    map_terms = {"feed": (ntls, t_final, "ntl"), "l1": (regressors, t_final, "regressor"),
                 "ft": (translators, factors, "translator")}
    map_losses = {}
    for name, (modules, targets, _) in map_terms.items():
        losses = [tm.feed_loss(m(final) if m is not None else final, t) for m, t in zip(modules, targets)]
        for m in modules:
            if m is not None:
                m.zero_grad(set_to_none=True)
        grads[name] = backward_to(beta * sum(losses), [final])
        map_losses[name] = losses
    # paraphraser training: 3 SGD steps of L1 reconstruction
    para = tm.Paraphraser(16, 8)
    para_init = {k: v.clone() for k, v in para.state_dict().items()}
    para_inputs = torch.stack([F.relu(torch.randn(B, 16, 4, 4)) for _ in range(3)])
    opt = torch.optim.SGD(para.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    para_losses = []
    for x in para_inputs:
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(para(x), x)
        loss.backward()
        opt.step()
        para_losses.append(loss.item())

    path = os.path.join(out_dir, "terms.h5")
    with h5py.File(path + ".tmp", "w") as h5:
        for k, v in dict(batch=B, classes=K, num_teachers=N, seed=seed).items():
            h5.attrs[k] = np.int64(v)
        h5.attrs["student_channels"] = np.array(cs, dtype=np.int64)
        h5.attrs["stage_hw"] = np.array(hw, dtype=np.int64)
        h5.attrs["teacher_channels"] = np.array(ct, dtype=np.int64)
        h5.attrs["factor_channels"] = np.array(cf, dtype=np.int64)
        h5.attrs["beta"], h5.attrs["at_beta"], h5.attrs["T"], h5.attrs["alpha"] = beta, at_beta, T, alpha
        put(h5, "student/logits", s_logits)
        for i, x in enumerate(s_layers):
            put(h5, f"student/layer{i + 1}", x)
        put(h5, "student/final", final)
        for n in range(N):
            put(h5, f"teacher/{n}/logits", t_logits[n])
            put(h5, f"teacher/{n}/final", t_final[n])
            for i, t in enumerate(t_layers[n]):
                put(h5, f"teacher/{n}/attention/{i + 1}", tm.attention(t))
            put(h5, f"teacher/{n}/factor", factors[n])
            put_state(h5, f"teacher/{n}/paraphraser", paraphrasers[n].state_dict())
        put(h5, "kd/soft_targets", p)
        put(h5, "kd/loss", kd)
        put(h5, "kd/dlogits", grads["kd"][0])
        for n in range(N):
            put(h5, f"at/teacher/{n}/loss", at_losses[n])
        for i, g in enumerate(grads["at"]):
            put(h5, f"at/grad/layer{i + 1}", g)
        for name, (modules, _, key) in map_terms.items():
            for n, m in enumerate(modules):
                put(h5, f"{name}/teacher/{n}/loss", map_losses[name][n])
                if m is not None:
                    put_state(h5, f"{name}/teacher/{n}/{key}", m.state_dict())
                    put_state(h5, f"{name}/teacher/{n}/grads", {k: v.grad for k, v in m.named_parameters()})
            put(h5, f"{name}/grad_final", grads[name][0])
        put_state(h5, "paraphraser/init", para_init)
        put(h5, "paraphraser/inputs", para_inputs)
        put(h5, "paraphraser/losses", np.array(para_losses, dtype=np.float32))
        put_state(h5, "paraphraser/after3", para.state_dict())
    os.replace(path + ".tmp", path)
    return path


def write_ce_fixture(out_dir, seed=5):
    deterministic(seed)
    B, K = 6, 5
    logits = (3.0 * torch.randn(B, K)).requires_grad_(True)
    labels = torch.randint(0, K, (B,))
    path = os.path.join(out_dir, "ce.h5")
    with h5py.File(path + ".tmp", "w") as h5:
        put(h5, "logits", logits)
        put(h5, "labels", labels.to(torch.int32))
        for s in (0.0, 0.1):
            logits.grad = None
            loss = F.cross_entropy(logits, labels, label_smoothing=s)
            loss.backward()
            group = f"smoothing_{s:g}".replace(".", "p")  # smoothing_0, smoothing_0p1
            put(h5, f"{group}/loss", loss)
            put(h5, f"{group}/dlogits", logits.grad)
    os.replace(path + ".tmp", path)
    return path


SGD_CASES = {
    "plain": dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
    "momentum": dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=5e-4, nesterov=False),
    "nesterov": dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=5e-4, nesterov=True),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-4, nesterov=False),
}


def write_optim_fixture(out_dir, seed=9, steps=4):
    deterministic(seed)
    n, m = 1000, 37
    path = os.path.join(out_dir, "optim.h5")
    with h5py.File(path + ".tmp", "w") as h5:
        for case, cfg in SGD_CASES.items():
            p0, p1 = torch.randn(n).requires_grad_(True), torch.randn(m).requires_grad_(True)
            g0, g1 = torch.randn(steps, n), torch.randn(steps, m)
            init0, init1 = p0.detach().clone(), p1.detach().clone()
            opt = torch.optim.SGD([{"params": [p0]}, {"params": [p1], "weight_decay": 0.0}], **cfg)
            after0, after1 = [], []
            for s in range(steps):
                p0.grad, p1.grad = g0[s].clone(), g1[s].clone()
                opt.step()
                after0.append(p0.detach().clone())
                after1.append(p1.detach().clone())
            grp = h5.create_group(f"sgd/{case}")
            for k, v in cfg.items():
                grp.attrs[k] = np.int64(v) if isinstance(v, bool) else float(v)
            grp.attrs["steps"] = np.int64(steps)
            put(grp, "param0", init0)
            put(grp, "param1", init1)
            put(grp, "decay0", np.int32(1))
            put(grp, "decay1", np.int32(0))
            put(grp, "grads0", g0)
            put(grp, "grads1", g1)
            put(grp, "after0", torch.stack(after0))
            put(grp, "after1", torch.stack(after1))
            buf0 = opt.state[p0].get("momentum_buffer")
            buf1 = opt.state[p1].get("momentum_buffer")
            put(grp, "buf0", buf0 if buf0 is not None else torch.zeros(n))
            put(grp, "buf1", buf1 if buf1 is not None else torch.zeros(m))
        write_lr_case(h5, "multistep", dict(base_lr=0.1, gamma=0.2, milestones=[60, 120, 160], epochs=200),
                      lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[60, 120, 160], gamma=0.2))
        write_lr_case(h5, "cosine", dict(base_lr=0.1, eta_min=0.0, t_max=200, epochs=200),
                      lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=200, eta_min=0.0))
        write_lr_case(h5, "cosine_min", dict(base_lr=0.1, eta_min=1e-3, t_max=50, epochs=120),
                      lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=50, eta_min=1e-3))
    os.replace(path + ".tmp", path)
    return path


def write_lr_case(h5, name, attrs, make_scheduler):
    """values[e] = the lr used during epoch e (scheduler.step() once per epoch, after it)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=attrs["base_lr"])
    sched = make_scheduler(opt)
    values = []
    for _ in range(attrs["epochs"]):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    grp = h5.create_group(f"lr/{name}")
    for k, v in attrs.items():
        grp.attrs[k] = np.array(v, dtype=np.int64) if isinstance(v, (list, int)) else float(v)
    grp.create_dataset("values", data=np.array(values, dtype=np.float64))


# Written only with --only: resnet18.h5 is 135 MB, and ctest checks ResNet-18 on the
# well-conditioned fixture of tests/nn/nn_fixtures.py (same input size) instead.
ONLY_ON_REQUEST = {"resnet18"}
WRITERS = dict({name: (lambda d, n=name: write_model_fixture(d, n)) for name in MODEL_FIXTURES},
               feed_loss=write_feed_loss_fixture, terms=write_terms_fixture, ce=write_ce_fixture,
               optim=write_optim_fixture)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output folder (created)")
    ap.add_argument("--only", help="comma-separated fixture names (default: all but resnet18)")
    ap.add_argument("--list", action="store_true", help="print the fixture names and exit")
    args = ap.parse_args()
    if args.list:
        print("\n".join(WRITERS))
        return 0
    if not args.out:
        ap.error("--out DIR is required")
    names = args.only.split(",") if args.only else [n for n in WRITERS if n not in ONLY_ON_REQUEST]
    unknown = [n for n in names if n not in WRITERS]
    if unknown:
        ap.error(f"unknown fixture(s) {unknown}; known: {', '.join(WRITERS)}")
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        print(f"torch_fixtures: wrote {WRITERS[name](args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
