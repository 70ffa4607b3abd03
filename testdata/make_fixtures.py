#!/usr/bin/python3
"""Regenerate the PyTorch-made ONNX fixtures under testdata/models/.

Run from the repository root (or anywhere) with Debian's Python, which has
PyTorch 1.13.1 and ONNX 1.12 (apt-get install -y python3-torch python3-onnx
python3-numpy):

    /usr/bin/python3 testdata/make_fixtures.py

Every model is written in the ONNX backend-test layout:

    testdata/models/<name>/model.onnx
    testdata/models/<name>/test_data_set_0/input_0.pb   (batch 2)
    testdata/models/<name>/test_data_set_0/output_K.pb  (PyTorch's outputs)

Everything is seeded and computed on one thread, so the script is
deterministic: running it twice produces byte-identical files.
"""

import os
import shutil
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

SEED = 0
BATCH = 2
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def seed_everything(seed):
    """Seed every random generator the script touches."""
    torch.manual_seed(seed)
    np.random.seed(seed)


class BasicBlock(nn.Module):
    """A ResNet basic block: conv-BN-ReLU-conv-BN plus a shortcut, then ReLU.

    When stride != 1 or the channel count changes, the shortcut is a 1x1
    strided convolution followed by BatchNorm (the classic downsample).
    """

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                nn.BatchNorm2d(cout),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if self.down is None else self.down(x)
        return F.relu(out + short)


class SmallResNet(nn.Module):
    """A small ResNet-style CNN for [N,3,32,32] inputs and 10 classes."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 32, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


class MLP(nn.Module):
    """Flatten-Linear-ReLU-Dropout-Linear-ReLU-Linear for [N,1,8,8] inputs.

    It has two outputs, the log-probabilities and the probabilities, so the
    fixture also exercises LogSoftmax, Softmax and multi-output graphs.
    """

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 48)
        self.drop = nn.Dropout(0.25)
        self.fc2 = nn.Linear(48, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = self.drop(F.relu(self.fc1(x)))
        x = F.relu(self.fc2(x))
        z = self.fc3(x)
        return F.log_softmax(z, dim=1), F.softmax(z, dim=1)


def make_resnet():
    """Build the CNN with non-trivial BatchNorm statistics, in eval mode."""
    seed_everything(SEED)
    model = SmallResNet()
    # A few training steps' worth of batch statistics...
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 32, 32) * 2.0 + 0.5)
    # ...then make every BN clearly non-identity (scale, shift, mean, var).
    g = torch.Generator().manual_seed(SEED + 1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
                m.running_mean.add_(torch.rand(c, generator=g) * 0.2 - 0.1)
                m.running_var.mul_(torch.rand(c, generator=g) + 0.5)
    model.eval()
    return model


def make_mlp():
    """Build the MLP in eval mode."""
    seed_everything(SEED + 2)
    model = MLP()
    model.eval()
    return model


def export(model, name, example, opset, input_names, output_names, keep_bn):
    """Export model to ROOT/name/model.onnx with a dynamic batch axis."""
    out_dir = os.path.join(ROOT, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(os.path.join(out_dir, "test_data_set_0"))
    path = os.path.join(out_dir, "model.onnx")
    dyn = {n: {0: "batch"} for n in input_names + output_names}
    # TrainingMode.PRESERVE on an eval-mode model exports inference
    # semantics but skips the exporter's Conv+BatchNorm fusion, so the
    # BatchNormalization nodes stay in the file for the runtime to handle.
    # EVAL (the default) fuses them, as most users' exports do.
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(
        model,
        (example,),
        path,
        opset_version=opset,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dyn,
        training=mode,
        do_constant_folding=not keep_bn,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m)
    m.doc_string = (
        "compress test fixture %s: made by testdata/make_fixtures.py with "
        "PyTorch %s, opset %d" % (name, torch.__version__, opset)
    )
    onnx.save(m, path)
    with torch.no_grad():
        outs = model(example)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    ds = os.path.join(out_dir, "test_data_set_0")
    save_tensor(os.path.join(ds, "input_0.pb"), example.numpy(), input_names[0])
    for i, (o, n) in enumerate(zip(outs, output_names)):
        save_tensor(os.path.join(ds, "output_%d.pb" % i), o.numpy(), n)
    ops = sorted({n.op_type for n in m.graph.node})
    print("%-22s opset %2d  %6d bytes  ops: %s" % (name, opset, os.path.getsize(path), " ".join(ops)))
    return ops


def save_tensor(path, arr, name):
    """Write arr as a serialized onnx.TensorProto named name."""
    t = numpy_helper.from_array(np.ascontiguousarray(arr), name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(ROOT, exist_ok=True)

    resnet = make_resnet()
    seed_everything(SEED + 10)
    x = torch.randn(BATCH, 3, 32, 32)
    for opset in (11, 13, 17):
        ops = export(resnet, "resnet_op%d" % opset, x, opset, ["input"], ["logits"], True)
        if "BatchNormalization" not in ops:
            sys.exit("resnet_op%d: BatchNormalization was folded away" % opset)
    export(resnet, "resnet_fused_op13", x, 13, ["input"], ["logits"], False)

    mlp = make_mlp()
    seed_everything(SEED + 11)
    x = torch.randn(BATCH, 1, 8, 8)
    for opset in (9, 13):
        export(mlp, "mlp_op%d" % opset, x, opset, ["input"], ["log_probs", "probs"], False)


if __name__ == "__main__":
    main()
