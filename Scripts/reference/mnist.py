"""MNIST's IDX files, read the same way by every script: gzip or raw (told apart by their
first bytes), the magic number and the sizes checked. `find` and `read` need only the
standard library; `read_array`, `load` and `load_float` return numpy arrays."""
import gzip
import os
import struct

IMAGES_MAGIC = 0x803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x801  # unsigned bytes, 1 dimension


def find(directory, stem):
    """`stem` (e.g. "t10k-images-idx3-ubyte"), gzip or raw, in `directory` or in torchvision's
    `directory/MNIST/raw`."""
    for name in (stem + ".gz", stem):
        for folder in (directory, os.path.join(directory, "MNIST", "raw")):
            path = os.path.join(folder, name)
            if os.path.exists(path):
                return path
    raise FileNotFoundError(f"{directory}: no {stem}[.gz]")


def read(path, magic):
    """(shape, data bytes) of one IDX file whose magic number must be `magic`; its last byte
    is the number of dimensions."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    got = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if got != magic:
        raise ValueError(f"{path}: magic {got}, expected {magic}")
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    body = raw[4 + 4 * dims:]
    count = 1
    for size in shape:
        count *= size
    if len(body) != count:
        raise ValueError(f"{path}: {len(body)} data bytes, header says {shape}")
    return shape, body


def read_array(path, magic):
    """An IDX file as a numpy uint8 array of its shape."""
    import numpy as np
    shape, body = read(path, magic)
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load(directory, split):
    """(images uint8 [n,28,28], labels uint8 [n]) of split "train" or "t10k"."""
    images = read_array(find(directory, f"{split}-images-idx3-ubyte"), IMAGES_MAGIC)
    labels = read_array(find(directory, f"{split}-labels-idx1-ubyte"), LABELS_MAGIC)
    if len(images) != len(labels):
        raise ValueError(f"{directory}: {len(images)} {split} images but {len(labels)} labels")
    return images, labels


def load_float(directory, split):
    """(images float32 [n,1,28,28] in [0,1], labels int64 [n]): the network's input, x / 255."""
    import numpy as np
    images, labels = load(directory, split)
    return images.astype(np.float32).reshape(-1, 1, 28, 28) / 255, labels.astype(np.int64)
