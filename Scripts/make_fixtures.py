"""Writes the PyTorch golden files the Swift tests compare against.

Regenerate (from the repository root; needs torch, safetensors, numpy; no torchvision):

    /tmp/peer/bin/python Scripts/make_fixtures.py [--mnist ../shared/mnist]

Writes into Tests/LeNetKitTests/Fixtures/:
  lenet_step.safetensors     plain LeNet, one training step on the first 8 test images
  lenet_bn_step.safetensors  LeNet with BatchNorm and an explicit dropout mask, same step
  formats.safetensors        a few small tensors of every dtype, to check the reader and writer
See Tests/LeNetKitTests/Fixtures/README.md for every key.

The model is the one in ../shared/peers/pytorch_lenet.py (conv1 padding 2, BatchNorm after
conv1 and conv2 before ReLU, Dropout(0.5) after fc1's ReLU), float32, PyTorch's default
initialisation after torch.manual_seed(0). Dropout cannot match another random generator,
so in the BN file the keep-mask is stored (`dropout_mask`) and applied as x * mask / 0.5.
"""
import argparse, gzip, os, struct

import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
import safetensors
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "LeNetKitTests", "Fixtures")
BATCH = 8
LR = 0.01
DROP_P = 0.5


def read_idx(path, magic, dims):
    """An IDX file from its .gz, with the magic number and sizes checked."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got, = struct.unpack(">I", raw[:4])
    if got != magic:
        raise SystemExit(f"{path}: magic {got}, expected {magic}")
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    body = raw[4 + 4 * dims:]
    if len(body) != int(np.prod(shape)):
        raise SystemExit(f"{path}: {len(body)} data bytes, header says {shape}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


class LeNet(nn.Module):
    """pytorch_lenet.py's model; in training with bn=True, dropout uses the given keep-mask."""

    def __init__(self, bn=False):
        super().__init__()
        self.bn = bn
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2); self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120); self.fc2 = nn.Linear(120, 84); self.fc3 = nn.Linear(84, 10)
        if bn:
            self.bn1 = nn.BatchNorm2d(6); self.bn2 = nn.BatchNorm2d(16); self.drop = nn.Dropout(DROP_P)

    def forward(self, x, mask=None):
        x = self.conv1(x)
        if self.bn: x = self.bn1(x)
        x = F.max_pool2d(F.relu(x), 2)
        x = self.conv2(x)
        if self.bn: x = self.bn2(x)
        x = F.max_pool2d(F.relu(x), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        if self.bn and self.training:
            if mask is None:
                raise ValueError("training the BN model needs an explicit dropout mask")
            x = x * mask / (1 - DROP_P)
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def step_fixture(bn, x, y, mask):
    torch.manual_seed(0)
    model = LeNet(bn)
    model.train()
    out = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out["input"] = x
    out["target"] = y
    if mask is not None:
        out["dropout_mask"] = mask
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    opt.zero_grad()
    logits = model(x, mask)
    loss = nn.CrossEntropyLoss()(logits, y)
    loss.backward()
    out["logits"] = logits.detach().clone()
    out["loss"] = loss.detach().clone()
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad.detach().clone()
    if bn:
        for layer in ("bn1", "bn2"):
            for buf in ("running_mean", "running_var", "num_batches_tracked"):
                out[f"after_forward.{layer}.{buf}"] = model.state_dict()[f"{layer}.{buf}"].detach().clone()
    opt.step()
    for name, p in model.named_parameters():
        out["after_step." + name] = p.detach().clone()
    model.eval()
    with torch.no_grad():
        out["eval_logits"] = model(x).clone()
    return {k: v.contiguous() for k, v in out.items()}


def formats_fixture():
    """Every dtype the Swift reader decodes, awkward values and names, one metadata key
    (so the header is deterministic and Swift's writer must reproduce the file byte for byte)."""
    t = {
        "a.f32": torch.tensor([[1.5, -0.0, float("inf")], [1e-45, -3.25, 3.4028235e38]], dtype=torch.float32),
        "b.f64": torch.tensor([0.1, -2.5], dtype=torch.float64),
        "c.i64": torch.tensor([-1, 2**40, -2**63], dtype=torch.int64),
        "d.i32": torch.tensor([[-7, 0], [2**31 - 1, -2**31]], dtype=torch.int32),
        "e.u8": torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
        "scalar": torch.tensor(42.0, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        'name "quoted"\\/\u00e9\n': torch.tensor([7.0], dtype=torch.float32),
    }
    path = os.path.join(OUT, "formats.safetensors")
    save_file(t, path, metadata={"note": 'tab\there "quoted" \u00e9'})
    print(f"formats.safetensors: {len(t)} tensors, {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", default=os.path.join(ROOT, "..", "shared", "mnist"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    images = read_idx(os.path.join(a.mnist, "t10k-images-idx3-ubyte.gz"), 2051, 3)
    labels = read_idx(os.path.join(a.mnist, "t10k-labels-idx1-ubyte.gz"), 2049, 1)
    if images.shape != (10000, 28, 28) or labels.shape != (10000,):
        raise SystemExit(f"unexpected test set shapes {images.shape} {labels.shape}")
    x = torch.from_numpy(images[:BATCH].astype(np.float32) / 255.0).reshape(BATCH, 1, 28, 28)
    y = torch.from_numpy(labels[:BATCH].astype(np.int64))

    gen = torch.Generator().manual_seed(1)
    mask = torch.bernoulli(torch.full((BATCH, 120), 1 - DROP_P), generator=gen)

    os.makedirs(OUT, exist_ok=True)
    formats_fixture()
    # One metadata key: Python's safetensors writes several in hash-map order, which varies
    # from run to run; with one the files are byte-identical on every regeneration.
    about = (f"Scripts/make_fixtures.py; torch {torch.__version__}; safetensors {safetensors.__version__}; "
             f"seed 0; SGD lr {LR}; batch: first {BATCH} MNIST test images, x/255")
    for fname, bn, m in (("lenet_step.safetensors", False, None), ("lenet_bn_step.safetensors", True, mask)):
        t = step_fixture(bn, x, y, m)
        path = os.path.join(OUT, fname)
        save_file(t, path, metadata={"generated_by": ("lenet-bn; " if bn else "lenet; ") + about})
        print(f"{fname}: {len(t)} tensors, {os.path.getsize(path)} bytes, labels {y.tolist()}, "
              f"loss {t['loss'].item():.6f}, max|logit| {t['logits'].abs().max().item():.4f}, "
              f"max|eval_logit| {t['eval_logits'].abs().max().item():.4f}, "
              f"max|grad| {max(v.abs().max().item() for k, v in t.items() if k.startswith('grad.')):.4g}")


if __name__ == "__main__":
    main()
