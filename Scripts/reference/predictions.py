"""lenet's predictions (`lenet evaluate --predictions FILE`: one class a line) against a peer's."""
import numpy as np


def mismatch(path, predicted, peer, detail=lambda i: ""):
    """None when the file holds exactly `predicted`; else what differs, naming the first image."""
    with open(path) as f:
        lenet = np.array([int(line) for line in f.read().split()])
    if lenet.shape != predicted.shape:
        return f"{path}: {lenet.shape[0]} predictions, expected {predicted.shape[0]}"
    differ = np.nonzero(lenet != predicted)[0]
    if len(differ):
        i = differ[0]
        return (f"{len(differ)} of {len(predicted)} predictions differ from lenet evaluate's, first at image {i}: "
                f"{peer} {predicted[i]}, lenet {lenet[i]}{detail(i)}")
    return None
