"""ONNX Runtime on the model `lenet export` wrote: images/s at batch 1000 over the 10k test
images (best of 5 passes), at each thread count given. Needs only onnxruntime and numpy
(no PyTorch). Usage: ort_exported.py MODEL.onnx MNIST_DIR THREADS... Prints
`onnxruntime threads=N batch1000_images_per_second: X` lines."""
import gzip, os, sys, time
import numpy as np, onnxruntime as ort

model, data, counts = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3:]] or [1]
with gzip.open(os.path.join(data, "t10k-images-idx3-ubyte.gz")) as f:
    x = (np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255)
for threads in counts:
    options = ort.SessionOptions(); options.intra_op_num_threads = threads; options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    def once():
        start = time.perf_counter()
        for i in range(0, 10000, 1000): session.run(None, {name: x[i:i + 1000]})[0].argmax(1)
        return time.perf_counter() - start
    once(); once()
    print(f"onnxruntime threads={threads} batch1000_images_per_second: {10000 / min(once() for _ in range(5)):.0f}")
