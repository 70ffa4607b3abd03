#!/usr/bin/python3
"""The transfer-learning benchmark of docs/BENCHMARKS.md, in PyTorch.

mnist-8 (ONNX Model Zoo, CNTK) rebuilt as a torch module with its weights read
from the ONNX file, both convolutions frozen, a new 10-class head
(Xavier-uniform, zero bias, seed 0), fine-tuned on Fashion-MNIST with raw
0..255 pixels: Adam lr 1e-3, batch 128, 3 epochs, 2 threads. Prints one JSON
object: test accuracy and training throughput (samples/s over the training
steps, data loading included as in compress's figure).

Usage: /usr/bin/python3 pytorch_transfer.py MODEL.onnx FASHION_DIR [--epochs 3] [--threads 2]
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, prefix, kind):
    for name in os.listdir(d):
        if name.startswith(prefix) and kind in name:
            return os.path.join(d, name)
    raise FileNotFoundError(f"{prefix}-{kind} in {d}")


class Mnist8(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.conv2 = nn.Conv2d(8, 16, 5, padding=2)
        self.fc = nn.Linear(256, 10)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.from_numpy(w["Parameter5"]))
            self.conv1.bias.copy_(torch.from_numpy(w["Parameter6"].reshape(8)))
            self.conv2.weight.copy_(torch.from_numpy(w["Parameter87"]))
            self.conv2.bias.copy_(torch.from_numpy(w["Parameter88"].reshape(16)))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 3, 3)
        return self.fc(torch.flatten(x, 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    w = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in onnx.load(args.model).graph.initializer}
    model = Mnist8(w)
    nn.init.xavier_uniform_(model.fc.weight)
    nn.init.zeros_(model.fc.bias)
    for p in list(model.conv1.parameters()) + list(model.conv2.parameters()):
        p.requires_grad_(False)
    xtr = torch.from_numpy(read_idx(find(args.data, "train", "images")).astype(np.float32)).reshape(-1, 1, 28, 28)
    ytr = torch.from_numpy(read_idx(find(args.data, "train", "labels")).astype(np.int64))
    xte = torch.from_numpy(read_idx(find(args.data, "t10k", "images")).astype(np.float32)).reshape(-1, 1, 28, 28)
    yte = torch.from_numpy(read_idx(find(args.data, "t10k", "labels")).astype(np.int64))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    g = torch.Generator().manual_seed(0)
    n = xtr.shape[0]
    seen, train_time = 0, 0.0
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        t0 = time.perf_counter()
        for i in range(0, n, args.batch):
            idx = perm[i:i + args.batch]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            seen += len(idx)
        train_time += time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        correct = 0
        for i in range(0, xte.shape[0], 1000):
            correct += (model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
    print(json.dumps({"framework": "pytorch " + torch.__version__, "threads": args.threads,
                      "accuracy": correct / xte.shape[0], "samples_per_sec": seen / train_time,
                      "train_seconds": train_time}))


if __name__ == "__main__":
    main()
