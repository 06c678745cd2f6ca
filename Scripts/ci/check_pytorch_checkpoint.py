"""Checks that a checkpoint written by lenet loads into PyTorch and predicts what lenet does.

Usage (needs torch, safetensors, numpy):

    python Scripts/ci/check_pytorch_checkpoint.py CHECKPOINT [--predictions FILE] [--mnist DIR]

CHECKPOINT  a .safetensors file from `lenet train` (last.safetensors / best.safetensors)
--predictions  `lenet evaluate --predictions FILE`'s output: one predicted class per line
               for the 10,000 test images; every PyTorch prediction must equal it
--mnist     directory with t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (.gz or raw)
            (default: ../shared/mnist next to the repository)

Checks: the `__metadata__` names the variant; `model.load_state_dict(..., strict=True)`
takes the file; every tensor has the dtype and shape of the PyTorch model's own state_dict
(load_state_dict would silently cast a wrong dtype); then eval-mode predictions on the test
set. Prints one line per check and exits 1 on the first failure.
"""
import argparse, os, sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reference.lenet import LeNet  # noqa: E402
from reference.mnist import load  # noqa: E402
from reference.predictions import mismatch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail(message):
    print(f"FAIL {message}")
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--predictions")
    ap.add_argument("--mnist", default=os.path.join(ROOT, "..", "shared", "mnist"))
    a = ap.parse_args()
    torch.set_num_threads(1)

    with safe_open(a.checkpoint, framework="pt") as f:
        metadata = f.metadata() or {}
    variant = metadata.get("variant")
    if variant not in ("lenet", "lenet-bn"):
        fail(f"{a.checkpoint}: metadata variant is {variant!r}, expected lenet or lenet-bn")
    print(f"ok   metadata: {dict(sorted(metadata.items()))}")

    state = load_file(a.checkpoint)
    model = LeNet(bn=variant == "lenet-bn")
    expected = model.state_dict()
    for name, tensor in expected.items():
        got = state.get(name)
        if got is None:
            fail(f"{a.checkpoint}: missing {name}")
        if got.dtype != tensor.dtype or tuple(got.shape) != tuple(tensor.shape):
            fail(f"{a.checkpoint}: {name} is {got.dtype} {tuple(got.shape)}, PyTorch has {tensor.dtype} {tuple(tensor.shape)}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        fail(f"{a.checkpoint}: load_state_dict(strict=True): {error}")
    print(f"ok   load_state_dict(strict=True): {len(state)} tensors, names, dtypes and shapes as PyTorch's {variant}")
    if variant == "lenet-bn":
        counts = {k: int(v) for k, v in state.items() if k.endswith("num_batches_tracked")}
        print(f"ok   num_batches_tracked: {counts}")

    images, labels = load(a.mnist, "t10k")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)]).argmax(1).numpy()
    correct = int((predicted == labels).sum())
    print(f"ok   PyTorch eval: {correct}/{len(labels)} correct ({100 * correct / len(labels):.2f}%)")
    if a.predictions:
        problem = mismatch(a.predictions, predicted, "pytorch")
        if problem:
            fail(problem)
        print(f"ok   all {len(predicted)} PyTorch predictions equal lenet evaluate's")
    print("PASS")


if __name__ == "__main__":
    main()
