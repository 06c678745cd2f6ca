"""Checks a model from `lenet export` with ONNX and ONNX Runtime.

Usage (needs onnx, onnxruntime, numpy):

    python Scripts/ci/check_onnx.py MODEL.onnx --predictions FILE [--mnist DIR]

--predictions  `lenet evaluate --predictions FILE`'s output for the checkpoint that was
               exported: one predicted class per line for the 10,000 test images
--mnist        directory with t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (.gz or raw)
               (default: ../shared/mnist next to the repository)

Checks: onnx.checker with full shape inference; opset >= 13; input `input` float32
[N,1,28,28] with a symbolic N, output [N,10]; no BatchNormalization or Dropout node (folded /
left out); ONNX Runtime runs batches of 1, 7 and 1000; its predictions on all 10,000 test
images equal lenet's. Prints one line per check and exits 1 on the first failure.
"""
import argparse, os, sys

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reference.mnist import load  # noqa: E402
from reference.predictions import mismatch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail(message):
    print(f"FAIL {message}")
    sys.exit(1)


def dims(value_info):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--predictions", required=True)
    ap.add_argument("--mnist", default=os.path.join(ROOT, "..", "shared", "mnist"))
    a = ap.parse_args()

    model = onnx.load(a.model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as error:  # the checker raises several types
        fail(f"{a.model}: onnx.checker: {error}")
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        fail(f"{a.model}: opset {opset}, expected 13 or later")
    graph = model.graph
    ops = [n.op_type for n in graph.node]
    print(f"ok   onnx.checker (full); ir_version {model.ir_version}, opset {opset}; nodes: {' '.join(ops)}")
    if len(graph.input) != 1 or graph.input[0].name != "input":
        fail(f"inputs are {[i.name for i in graph.input]}, expected ['input']")
    input_dims, output_dims = dims(graph.input[0]), dims(graph.output[0])
    if graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        fail("input is not float32")
    if not isinstance(input_dims[0], str) or not input_dims[0] or input_dims[1:] != [1, 28, 28]:
        fail(f"input dims {input_dims}, expected [N, 1, 28, 28] with a symbolic N")
    if not isinstance(output_dims[0], str) or output_dims[1:] != [10]:
        fail(f"output dims {output_dims}, expected [N, 10]")
    print(f"ok   input {graph.input[0].name} float32 {input_dims}, output {graph.output[0].name} {output_dims}")
    for banned in ("BatchNormalization", "Dropout"):
        if banned in ops:
            fail(f"graph has a {banned} node")
    print("ok   no BatchNormalization or Dropout node")

    try:
        images, labels = load(a.mnist, "t10k")
    except (OSError, ValueError) as error:
        fail(str(error))
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    run = lambda batch: session.run(None, {"input": batch})[0]
    for n in (1, 7):
        out = run(x[:n])
        if out.shape != (n, 10):
            fail(f"batch {n} gave logits of shape {out.shape}")
    logits = np.concatenate([run(x[i:i + 1000]) for i in range(0, len(x), 1000)])
    predicted = logits.argmax(1)
    correct = int((predicted == labels).sum())
    print(f"ok   ONNX Runtime {ort.__version__}: batches of 1, 7, 1000; {correct}/{len(labels)} correct ({100 * correct / len(labels):.2f}%)")

    problem = mismatch(a.predictions, predicted, "onnx", lambda i: f", logits {np.round(logits[i], 4).tolist()}")
    if problem:
        fail(problem)
    print(f"ok   all {len(predicted)} ONNX Runtime predictions equal lenet evaluate's")
    print("PASS")


if __name__ == "__main__":
    main()
