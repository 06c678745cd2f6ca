"""The PyTorch LeNet that lenet is checked and measured against, defined once: the golden
files, the checkpoint and ONNX checks and the benchmark peer all use this class.

The tutorial's LeNet-5: conv1 5x5 with padding 2 (so fc1 takes 16*5*5 = 400 features),
ReLU and 2x2 max-pooling after each convolution, fc 400-120-84-10. With bn=True, LeNet-BN:
BatchNorm2d after conv1 and conv2 (before ReLU) and Dropout(0.5) after fc1's ReLU. The
state_dict names are the names in lenet's checkpoints.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

DROPOUT_P = 0.5


class LeNet(nn.Module):
    def __init__(self, bn=False):
        super().__init__()
        self.bn = bn
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2); self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120); self.fc2 = nn.Linear(120, 84); self.fc3 = nn.Linear(84, 10)
        if bn:
            self.bn1 = nn.BatchNorm2d(6); self.bn2 = nn.BatchNorm2d(16); self.drop = nn.Dropout(DROPOUT_P)

    def forward(self, x, dropout_mask=None):
        """In training, a given `dropout_mask` (a keep-mask of 0s and 1s, [batch, 120]) takes
        the place of nn.Dropout's random one: another generator can then apply the same mask."""
        x = self.conv1(x)
        if self.bn: x = self.bn1(x)
        x = F.max_pool2d(F.relu(x), 2)
        x = self.conv2(x)
        if self.bn: x = self.bn2(x)
        x = F.max_pool2d(F.relu(x), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        if self.bn and self.training:
            x = self.drop(x) if dropout_mask is None else x * dropout_mask / (1 - DROPOUT_P)
        x = F.relu(self.fc2(x))
        return self.fc3(x)
