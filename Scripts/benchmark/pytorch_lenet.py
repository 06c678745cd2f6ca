"""The tutorial's experiment in PyTorch eager on the CPU, batches from preloaded tensors:
the yardstick `lenet` is measured against. Usage: pytorch_lenet.py MNIST_DIR [--bn] [--epochs N] [--threads T]
Prints the tutorial's per-epoch line, then `seconds: S` (training + evaluation, data load excluded)."""
import argparse, os, sys, time, torch, torch.nn as nn
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reference.lenet import LeNet
from reference.mnist import load_float

p = argparse.ArgumentParser()
p.add_argument("data"); p.add_argument("--bn", action="store_true")
p.add_argument("--epochs", type=int, default=8); p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
xtr, ytr = (torch.from_numpy(v) for v in load_float(a.data, "train"))
xte, yte = (torch.from_numpy(v) for v in load_float(a.data, "t10k"))

model = LeNet(a.bn); loss_fn = nn.CrossEntropyLoss(); opt = torch.optim.SGD(model.parameters(), lr=0.01)
start = time.perf_counter()
for epoch in range(1, a.epochs + 1):
    model.train(); order = torch.randperm(len(ytr)); correct = 0; total = 0.0; batches = 0
    for i in range(0, len(order), 32):
        j = order[i:i + 32]; x, y = xtr[j], ytr[j]
        pred = model(x); loss = loss_fn(pred, y)
        opt.zero_grad(); loss.backward(); opt.step()
        correct += (pred.argmax(1) == y).sum().item(); total += loss.item(); batches += 1
    train_acc, train_loss = correct / len(ytr), total / batches
    model.eval(); correct = 0; total = 0.0; batches = 0
    with torch.no_grad():
        for i in range(0, len(yte), 32):
            pred = model(xte[i:i + 32]); total += loss_fn(pred, yte[i:i + 32]).item()
            correct += (pred.argmax(1) == yte[i:i + 32]).sum().item(); batches += 1
    print(f"Epoch:{epoch:2d}, Train_acc:{train_acc * 100:.1f}%, Train_loss:{train_loss:.3f}, "
          f"Test_acc:{correct / len(yte) * 100:.1f}%, Test_loss:{total / batches:.3f}", flush=True)
print("seconds: %.2f" % (time.perf_counter() - start))
