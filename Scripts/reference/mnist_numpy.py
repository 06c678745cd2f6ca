"""MNIST from IDX files (gzip or raw) into numpy arrays, for the reference scripts."""
import gzip, os, numpy as np

def _read(path):
    for candidate in (path, path + ".gz"):
        if os.path.exists(candidate):
            opener = gzip.open if candidate.endswith(".gz") else open
            with opener(candidate, "rb") as f:
                return f.read()
    raise FileNotFoundError(path)

def load(directory, split):
    """(images float32 [n,1,28,28] in [0,1], labels int64 [n]) for split 'train' or 't10k'."""
    images = _read(os.path.join(directory, f"{split}-images-idx3-ubyte"))
    labels = _read(os.path.join(directory, f"{split}-labels-idx1-ubyte"))
    n = int.from_bytes(images[4:8], "big")
    x = np.frombuffer(images, np.uint8, offset=16).reshape(n, 1, 28, 28).astype(np.float32) / 255
    y = np.frombuffer(labels, np.uint8, offset=8).astype(np.int64)
    return x, y
