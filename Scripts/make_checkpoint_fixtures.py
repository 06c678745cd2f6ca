"""Writes the PyTorch-made checkpoints the Swift checkpoint tests load.

Regenerate (from the repository root; needs torch, safetensors, numpy; no torchvision):

    /tmp/peer/bin/python Scripts/make_checkpoint_fixtures.py [--mnist ../shared/mnist]

Writes into Tests/LeNetKitTests/Fixtures/:
  pytorch_lenet.safetensors     safetensors.torch.save_file(model.state_dict()) of the plain
                                LeNet, PyTorch's default initialisation after torch.manual_seed(0)
  pytorch_lenet_bn.safetensors  the same for LeNet with BatchNorm (torch.manual_seed(1)), after
                                three train-mode forwards over the first 3x32 MNIST training
                                images (no optimizer step) so the running statistics are not
                                trivial and num_batches_tracked is 3
  pytorch_checkpoint_logits.safetensors
                                `input` F32 [4,1,28,28]: the first 4 MNIST test images, x / 255;
                                `lenet.logits`, `lenet_bn.logits` F32 [4,10]: model.eval() logits
Both checkpoints are written exactly as a PyTorch user would: no metadata, state_dict names.
The model is Scripts/make_fixtures.py's LeNet (the one in ../shared/peers/pytorch_lenet.py).
"""
import argparse, os, sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import LeNet, read_idx, OUT  # noqa: E402

IMAGES = 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", default=os.path.join(OUT, "..", "..", "..", "..", "shared", "mnist"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    test = read_idx(os.path.join(a.mnist, "t10k-images-idx3-ubyte.gz"), 2051, 3)
    train = read_idx(os.path.join(a.mnist, "train-images-idx3-ubyte.gz"), 2051, 3)
    x = torch.from_numpy(test[:IMAGES].astype(np.float32) / 255.0).reshape(IMAGES, 1, 28, 28)
    logits = {"input": x.contiguous()}
    for name, bn, seed in (("lenet", False, 0), ("lenet_bn", True, 1)):
        torch.manual_seed(seed)
        model = LeNet(bn)
        if bn:
            model.train()
            with torch.no_grad():
                for i in range(3):
                    batch = torch.from_numpy(train[32 * i:32 * (i + 1)].astype(np.float32) / 255.0)
                    mask = torch.ones(32, 120)  # dropout does not touch the running statistics
                    model(batch.reshape(32, 1, 28, 28), mask)
        model.eval()
        path = os.path.join(OUT, f"pytorch_{name}.safetensors")
        save_file(model.state_dict(), path)
        with torch.no_grad():
            logits[f"{name}.logits"] = model(x).contiguous()
        print(f"{os.path.basename(path)}: {len(model.state_dict())} tensors, {os.path.getsize(path)} bytes")
    path = os.path.join(OUT, "pytorch_checkpoint_logits.safetensors")
    save_file(logits, path, metadata={"generated_by": f"Scripts/make_checkpoint_fixtures.py; torch {torch.__version__}"})
    print(f"{os.path.basename(path)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
