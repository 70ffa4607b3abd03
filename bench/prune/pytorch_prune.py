#!/usr/bin/python3
"""The pruning benchmark of issue 5, in PyTorch (torch.nn.utils.prune).

The ResNet of `compress models new --arch resnet` (stem Conv-BN-ReLU, three
basic blocks of 16, 32 and 64 channels with 1x1 downsampling shortcuts,
global average pooling, a Gemm classifier) rebuilt as a torch module whose
parameters and BatchNorm statistics are read by name from the ONNX file, so
that both frameworks start from the same trained weights. Before pruning,
the module's logits on the first test images are compared with those of
`compress run` (--compress BIN) and its test accuracy is measured.

Then torch.nn.utils.prune.global_unstructured (L1Unstructured) prunes the
same layers as `compress prune --scope global` (every Conv and Gemm except
the first and the last prunable layer, which stay dense) along the same
cubic schedule of Zhu and Gupta, s_t = s_f (1 - (1 - t/K)^3) for t = 1..K,
with the same fine-tuning after every step: a fresh optimizer and
learning-rate schedule per step (as `compress prune` runs one fine-tuning
per step), BatchNorm in training mode, the masks in force throughout.
The sparsity at step t is exactly round(s_t * n) of the n selected
weights, as in compress (torch's amount is the count still to prune among
the remaining weights). Prints one JSON object.

Usage: /usr/bin/python3 pytorch_prune.py MODEL.onnx FASHION_DIR [--sparsity 0.8]
       [--steps 4] [--epochs 1] [--batch 64] [--lr 1e-3] [--lr-schedule cosine]
       [--scale 0.00392156862745098] [--threads 2] [--seed 0] [--compress BIN]
"""
import argparse
import gzip
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as tprune


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, prefix, kind):
    for name in sorted(os.listdir(d)):
        if name.startswith(prefix) and kind in name:
            return os.path.join(d, name)
    raise FileNotFoundError(f"{prefix}-{kind} in {d}")


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    """The layout of compress's models.ResNet, named as its initializers."""

    def __init__(self, in_ch, widths, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin = widths[0]
        for i, w in enumerate(widths):
            setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, w, 1 if i == 0 else 2)))
            cin = w
        self.nlayers = len(widths)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(self.nlayers):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def load_resnet(path):
    """Builds the ResNet of the ONNX file and loads every initializer into
    the module state of the same name (weights, biases, BatchNorm scale,
    shift and running statistics); fails on any name or shape mismatch."""
    m = onnx.load(path)
    w = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "BatchNormalization":
            for a in n.attribute:
                if a.name == "epsilon" and abs(a.f - 1e-5) > 1e-9:
                    raise SystemExit(f"{path}: BatchNormalization {n.name} has epsilon {a.f}, the module 1e-5")
    widths, i = [], 1
    while f"layer{i}.0.conv1.weight" in w:
        widths.append(w[f"layer{i}.0.conv1.weight"].shape[0])
        i += 1
    if not widths or "conv1.weight" not in w or "fc.weight" not in w:
        raise SystemExit(f"{path}: not a model of `compress models new --arch resnet` (initializers {sorted(w)[:5]}...)")
    model = ResNet(w["conv1.weight"].shape[1], widths, w["fc.weight"].shape[0])
    state = model.state_dict()
    missing = [k for k in state if not k.endswith("num_batches_tracked") and k not in w]
    extra = [k for k in w if k not in state]
    if missing or extra:
        raise SystemExit(f"{path}: initializers do not match the module: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for k, v in w.items():
            if tuple(state[k].shape) != v.shape:
                raise SystemExit(f"{path}: {k} has shape {v.shape}, the module {tuple(state[k].shape)}")
            state[k].copy_(torch.from_numpy(v))
    return model


def prunable(model):
    """The Conv and Linear layers in graph order (the order of compress's
    prune.Layers): stem, then per block conv1, conv2, downsample, then fc."""
    out = [("conv1", model.conv1)]
    for i in range(model.nlayers):
        b = getattr(model, f"layer{i + 1}")[0]
        out += [(f"layer{i + 1}.0.conv1", b.conv1), (f"layer{i + 1}.0.conv2", b.conv2)]
        if b.downsample is not None:
            out.append((f"layer{i + 1}.0.downsample.0", b.downsample[0]))
    out.append(("fc", model.fc))
    return out


def cubic(final, step, steps, initial=0.0):
    """Zhu and Gupta's s_t = s_f + (s_i - s_f)(1 - t/n)^3 (prune.CubicSparsity)."""
    if steps <= 1:
        return final
    return final + (initial - final) * (1 - step / steps) ** 3


def accuracy(model, x, y, scale):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], 1000):
            correct += (model(x[i:i + 1000].float() * scale).argmax(1) == y[i:i + 1000]).sum().item()
    return correct / x.shape[0]


def check_against_compress(model, binary, onnx_path, x, scale):
    """Max |torch - compress| of the logits of x (already scaled)."""
    model.eval()
    with torch.no_grad():
        want = model(x).numpy()
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "x.npy"), x.numpy())
        subprocess.run([binary, "run", "--model", onnx_path, "--input", os.path.join(d, "x.npy"),
                        "--output", os.path.join(d, "y.npy"), "--threads", "1"],
                       check=True, stdout=subprocess.DEVNULL)
        got = np.load(os.path.join(d, "y.npy"))
    return float(np.abs(got - want).max()), float(np.abs(want).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--sparsity", type=float, default=0.8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs after every pruning step")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-schedule", choices=["constant", "cosine"], default="cosine")
    ap.add_argument("--scale", type=float, default=1 / 255)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compress", help="compress binary: compare the loaded module's logits with `compress run`")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = load_resnet(args.model)
    xtr = torch.from_numpy(read_idx(find(args.data, "train", "images")).copy()).reshape(-1, 1, 28, 28)
    ytr = torch.from_numpy(read_idx(find(args.data, "train", "labels")).astype(np.int64))
    xte = torch.from_numpy(read_idx(find(args.data, "t10k", "images")).copy()).reshape(-1, 1, 28, 28)
    yte = torch.from_numpy(read_idx(find(args.data, "t10k", "labels")).astype(np.int64))

    out = {"framework": "pytorch " + torch.__version__, "threads": args.threads, "sparsity": args.sparsity,
           "steps": args.steps, "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
           "lr_schedule": args.lr_schedule}
    if args.compress:
        diff, mag = check_against_compress(model, args.compress, args.model, xte[:16].float() * args.scale, args.scale)
        out["logits_max_abs_diff_vs_compress"] = diff
        out["logits_max_abs"] = mag
        if diff > 1e-3 * max(1.0, mag):
            raise SystemExit(f"the torch module's logits differ from compress's by {diff} (of {mag}): "
                             "the weights were not loaded as compress reads them")
    out["accuracy_before"] = accuracy(model, xte, yte, args.scale)

    layers = prunable(model)
    params = [(m, "weight") for _, m in layers[1:-1]]  # first and last stay dense, as in compress
    out["pruned_layers"] = [n for n, _ in layers[1:-1]]
    total = sum(m.weight.numel() for m, _ in params)
    g = torch.Generator().manual_seed(args.seed)
    n = xtr.shape[0]
    t0 = time.perf_counter()
    train_time, pruned = 0.0, 0
    for step in range(1, args.steps + 1):
        target = round(cubic(args.sparsity, step, args.steps) * total)
        if target > pruned:
            # amount (an int) counts weights to prune among those left.
            tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=target - pruned)
            pruned = target
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        nb = (n + args.batch - 1) // args.batch
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=nb * args.epochs) \
            if args.lr_schedule == "cosine" else None
        t1 = time.perf_counter()
        for _ in range(args.epochs):
            model.train()
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, args.batch):
                idx = perm[i:i + args.batch]
                opt.zero_grad()
                loss = F.cross_entropy(model(xtr[idx].float() * args.scale), ytr[idx])
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
        train_time += time.perf_counter() - t1
    for m, name in params:
        tprune.remove(m, name)
    out["prune_seconds"] = time.perf_counter() - t0
    out["train_seconds"] = train_time
    zeros = sum((m.weight == 0).sum().item() for m, _ in params)
    out["sparsity_reached"] = zeros / total
    out["pruned_params"] = total
    out["layer_sparsity"] = {name: (m.weight == 0).float().mean().item() for name, m in layers}
    out["accuracy_after"] = accuracy(model, xte, yte, args.scale)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
