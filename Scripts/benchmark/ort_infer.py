"""Inference speed of the same LeNet in ONNX Runtime (exported from PyTorch) and PyTorch.
Usage: ort_infer.py MNIST_DIR [THREADS]. Prints images/s at batch 1000 over the 10k test
images and batch-1 latency, for each runtime, as `name key: value` lines."""
import os, sys, tempfile, time, numpy as np, torch, onnxruntime as ort
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reference.lenet import LeNet
from reference.mnist import load_float

x, _ = load_float(sys.argv[1], "t10k")
torch.set_num_threads(threads)
model = LeNet().eval()
path = os.path.join(tempfile.mkdtemp(), "lenet.onnx")
torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "n"}}, dynamo=False)
options = ort.SessionOptions(); options.intra_op_num_threads = threads; options.inter_op_num_threads = 1
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
xt = torch.from_numpy(x)

def measure(name, run):
    for _ in range(2): [run(i, 1000) for i in range(0, 10000, 1000)]
    best = min(timed(lambda: [run(i, 1000) for i in range(0, 10000, 1000)]) for _ in range(5))
    print(f"{name} batch1000_images_per_second: {10000 / best:.0f}")
    for i in range(100): run(i, 1)
    latency = timed(lambda: [run(i, 1) for i in range(2000)]) / 2000 * 1e6
    print(f"{name} batch1_latency_us: {latency:.1f}")

def timed(f):
    t = time.perf_counter(); f(); return time.perf_counter() - t

measure("onnxruntime", lambda i, n: session.run(None, {"x": x[i:i + n]})[0].argmax(1))
with torch.inference_mode():
    measure("pytorch", lambda i, n: model(xt[i:i + n]).argmax(1))
