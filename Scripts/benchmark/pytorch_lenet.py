"""The tutorial's experiment in PyTorch eager on the CPU, batches from preloaded tensors:
the yardstick `lenet` is measured against. Usage: pytorch_lenet.py MNIST_DIR [--bn] [--epochs N] [--threads T]
Prints the tutorial's per-epoch line, then `seconds: S` (training + evaluation, data load excluded)."""
import argparse, os, sys, time, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from mnist_numpy import load

p = argparse.ArgumentParser()
p.add_argument("data"); p.add_argument("--bn", action="store_true")
p.add_argument("--epochs", type=int, default=8); p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
xtr, ytr = (torch.from_numpy(v) for v in load(a.data, "train"))
xte, yte = (torch.from_numpy(v) for v in load(a.data, "t10k"))

class LeNet(nn.Module):
    def __init__(self, bn):
        super().__init__()
        self.bn = bn
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2); self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120); self.fc2 = nn.Linear(120, 84); self.fc3 = nn.Linear(84, 10)
        if bn: self.bn1 = nn.BatchNorm2d(6); self.bn2 = nn.BatchNorm2d(16); self.drop = nn.Dropout(0.5)
    def forward(self, x):
        x = self.conv1(x); x = self.bn1(x) if self.bn else x
        x = F.max_pool2d(F.relu(x), 2)
        x = self.conv2(x); x = self.bn2(x) if self.bn else x
        x = F.max_pool2d(F.relu(x), 2).flatten(1)
        x = F.relu(self.fc1(x)); x = self.drop(x) if self.bn else x
        return self.fc3(F.relu(self.fc2(x)))

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
