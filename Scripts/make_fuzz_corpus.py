#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets (Fuzz/, run by Scripts/fuzz.sh) into
Fuzz/Corpus/<target>/ with the standard library only: a few valid inputs of each kind and
edge cases next to them, each small (the largest is a JSON body of 784 numbers).

  FuzzIDX          IDX image and label files, raw and gzip (one, two and concatenated
                   members), cut from the first MNIST test images and labels in
                   ../shared/mnist; wrong magic, zero count, truncated, label 10, stray bytes;
                   gzip trailers (ISIZE) that lie, claim 4 GiB or just over the 64 MiB limit
  FuzzSafeTensors  Tests/.../Fixtures/formats.safetensors; checkpoint-like and
                   training-state-like files (metadata and the small tensors; the fuzzer
                   adds the large ones as zeros); header edge cases
  FuzzImage        every picture in Tests/.../Fixtures/images (file names without the
                   extension: *.png is ignored by git outside Tests/); PNGs whose chunk
                   lengths (known and unknown types) run past the file, with no IEND, or
                   whose header claims 8192x8192
  FuzzPredictAPI   one selector byte (Content-Type, see Fuzz/Sources/FuzzPredictAPI) then a
                   body: PNG, PGM, JSON pixels, free-form types, malformed JSON

Inputs that once crashed a target or tripped its limits are written here too (crash-*,
oom-*). Deterministic: a second run writes identical files.

Run: python3 Scripts/make_fuzz_corpus.py [MNIST_DIR]   (default ../shared/mnist)
"""
import gzip, json, os, struct, sys, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORPUS = os.path.join(ROOT, "Fuzz", "Corpus")
FIXTURES = os.path.join(ROOT, "Tests", "LeNetKitTests", "Fixtures")
MNIST = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "mnist")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def idx():
    with gzip.open(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz")) as f:
        images = f.read(16 + 2 * 784)[16:]
    with gzip.open(os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = f.read(8 + 10)[8:]
    def image_file(count, pixels):
        return struct.pack(">IIII", 0x803, count, 28, 28) + pixels
    def label_file(count, values):
        return struct.pack(">II", 0x801, count) + values
    one, two = image_file(1, images[:784]), image_file(2, images)
    ten = label_file(10, labels)
    write("FuzzIDX", "images-1", one)
    write("FuzzIDX", "images-2.gz", gz(two))
    write("FuzzIDX", "labels-10", ten)
    write("FuzzIDX", "labels-10.gz", gz(ten))
    write("FuzzIDX", "labels-2-members.gz", gz(ten[:9]) + gz(ten[9:]))
    write("FuzzIDX", "labels-stray-bytes.gz", gz(ten) + b"\x00\x01\x02")
    write("FuzzIDX", "labels-truncated.gz", gz(ten)[:-6])
    write("FuzzIDX", "labels-out-of-range", label_file(3, bytes([1, 10, 2])))
    write("FuzzIDX", "labels-zero-count", label_file(0, b""))
    write("FuzzIDX", "labels-too-long", label_file(2, bytes([1, 2, 3])))
    write("FuzzIDX", "images-3x3", struct.pack(">IIII", 0x803, 1, 3, 3) + bytes(9))
    write("FuzzIDX", "images-truncated", one[:500])
    write("FuzzIDX", "images-header-only", one[:16])
    write("FuzzIDX", "wrong-magic", struct.pack(">II", 0x802, 1) + b"\x05")
    # Trailers (ISIZE, the last 4 bytes): a lie either way, 4 GiB, and one byte over the limit.
    def trailer(data, size):
        return data[:-4] + struct.pack("<I", size)
    write("FuzzIDX", "gzip-trailer-too-small.gz", trailer(gz(ten), 1))
    write("FuzzIDX", "gzip-trailer-too-large.gz", trailer(gz(ten), 1 << 20))
    write("FuzzIDX", "oom-gzip-trailer-4gib.gz", trailer(gz(ten), 0xFFFFFFF0))
    write("FuzzIDX", "oom-gzip-trailer-over-limit.gz", trailer(gz(ten), (64 << 20) + 1))
    write("FuzzIDX", "gzip-zeros-1mib-2-members.gz", gz(bytes(1 << 19)) + gz(bytes(1 << 19)))


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes), laid out in order."""
    header, offset, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    while pad and (8 + len(text)) % 8:
        text += b" "
    return struct.pack("<Q", len(text)) + text + data


def f32(*values): return struct.pack("<%df" % len(values), *values)
def f64(*values): return struct.pack("<%dd" % len(values), *values)
def i64(*values): return struct.pack("<%dq" % len(values), *values)
def i32(*values): return struct.pack("<%di" % len(values), *values)


def safetensors_corpus():
    with open(os.path.join(FIXTURES, "formats.safetensors"), "rb") as f:
        write("FuzzSafeTensors", "formats", f.read())
    lenet = {"format": "lenet-checkpoint", "format_version": "1", "variant": "lenet",
             "epoch": "3", "seed": "0", "test_accuracy": "0.9812"}
    write("FuzzSafeTensors", "checkpoint-lenet", safetensors(
        [("conv1.bias", "F32", [6], f32(0.1, -0.2, 0.3, 0, 1e-3, -1)), ("fc3.bias", "F32", [10], f32(*range(10)))],
        lenet))
    write("FuzzSafeTensors", "checkpoint-lenet-bn-negative-count", safetensors(
        [("bn1.num_batches_tracked", "I64", [], i64(-3)), ("bn1.running_var", "F32", [6], f32(1, 1, 1, 1, 1, 1))],
        dict(lenet, variant="lenet-bn")))
    write("FuzzSafeTensors", "checkpoint-nan", safetensors(
        [("conv1.bias", "F32", [6], f32(0, float("nan"), 0, 0, 0, 0))], {"variant": "lenet"}))
    write("FuzzSafeTensors", "checkpoint-pytorch-names", safetensors(
        [("conv2.bias", "F32", [16], f32(*([0.5] * 16))), ("bn2.weight", "F32", [16], f32(*([1] * 16)))]))
    state_metadata = {"format": "lenet-training-state", "format_version": "1", "model": "lenet", "epochs": "8",
                      "batch_size": "2", "learning_rate": "0.01", "momentum": "0.9", "weight_decay": "0.0",
                      "seed": "0", "has_velocity": "true", "train_count": "3", "test_count": "2"}
    state = [("data_generator.state", "I64", [4], i64(5, 6, 7, 8)),
             ("generator.state", "I64", [4], i64(1, 2, 3, 4)),
             ("history.epoch", "I64", [1], i64(1)),
             ("history.seconds", "F64", [1], f64(1.5)),
             ("history.test_accuracy", "F64", [1], f64(0.5)),
             ("history.test_loss", "F64", [1], f64(1.25)),
             ("history.train_accuracy", "F64", [1], f64(0.75)),
             ("history.train_loss", "F64", [1], f64(0.5)),
             ("sampler.train_order", "I32", [3], i32(2, 0, 1))]
    write("FuzzSafeTensors", "training-state", safetensors(state, state_metadata))
    progress = [("progress.batches_done", "I64", [], i64(1)), ("progress.seconds", "F64", [], f64(0.25)),
                ("progress.train_correct", "I64", [], i64(1)), ("progress.train_loss_sum", "F64", [], f64(2.0))]
    write("FuzzSafeTensors", "training-state-mid-epoch", safetensors(state + progress, state_metadata))
    # Once an overflow trap working out the batches in an epoch.
    write("FuzzSafeTensors", "crash-training-state-batch-size-int-max",
          safetensors(state + progress, dict(state_metadata, batch_size=str(2**63 - 1))))
    write("FuzzSafeTensors", "empty-header", safetensors([], None, pad=False))
    write("FuzzSafeTensors", "all-dtypes", safetensors(
        [(d, d, [1], bytes(size)) for d, size in
         [("BOOL", 1), ("U8", 1), ("I8", 1), ("I16", 2), ("U16", 2), ("F16", 2), ("BF16", 2), ("I32", 4),
          ("U32", 4), ("F32", 4), ("F64", 8), ("I64", 8), ("U64", 8)]]))
    overlap = json.dumps({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                          "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, separators=(",", ":")).encode()
    write("FuzzSafeTensors", "overlap", struct.pack("<Q", len(overlap)) + overlap + b"abc")
    write("FuzzSafeTensors", "escapes", safetensors(
        [("q\"\\/\u00e9\n\ud83d\ude00", "U8", [0, 3], b"")], {"k\u0001": "v\ud834\udd1e"}))
    write("FuzzSafeTensors", "header-past-end", struct.pack("<Q", 1 << 20) + b"{}")


def images():
    folder = os.path.join(FIXTURES, "images")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            continue
        with open(os.path.join(folder, name), "rb") as f:
            write("FuzzImage", name.replace(".", "-"), f.read())
    # Headers claiming 8192x8192 RGB with no pixels: once a 1.6 GB allocation (malloc limit).
    write("FuzzImage", "oom-ppm-header-8192x8192", b"P6 8192 8192 255\n")
    write("FuzzImage", "oom-plain-ppm-header-8192x8192", b"P3 8192 8192 255\n1 2 3")
    for name, data in png_chunk_cases().items():
        write("FuzzImage", name, data)


def png_chunk(kind, data, length=None):
    body = kind + data
    return struct.pack(">I", len(data) if length is None else length) + body + struct.pack(">I", zlib.crc32(body))


def png_chunk_cases():
    """PNGs whose chunks claim more than the file holds, or whose header claims too much:
    checked by ImageDecoder before libpng (which would allocate what a length claims)."""
    def header(width, height, depth=8, colour=0):
        return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    pixels = zlib.compress(b"".join(b"\x00" + bytes(range(i, i + 4)) for i in range(4)))
    end = png_chunk(b"IEND", b"")
    return {
        "png-4x4": header(4, 4) + png_chunk(b"IDAT", pixels) + end,
        "png-unknown-chunk-length-2gib": header(4, 4) + png_chunk(b"zzZz", b"ab", length=0x7FFFFFF0) + png_chunk(b"IDAT", pixels) + end,
        "png-idat-length-past-end": header(4, 4) + png_chunk(b"IDAT", pixels, length=1 << 30) + end,
        "png-text-length-past-end": header(4, 4) + png_chunk(b"tEXt", b"a\x00b", length=70000) + png_chunk(b"IDAT", pixels) + end,
        "png-no-iend": header(4, 4) + png_chunk(b"IDAT", pixels),
        "oom-png-header-8192x8192-rgba16": header(8192, 8192, 16, 6) + png_chunk(b"IDAT", zlib.compress(b"")) + end,
    }


def predict_api():
    def pixels(values):
        return json.dumps({"pixels": values}, separators=(",", ":")).encode()
    bar = [1 if 12 <= i % 28 < 15 and 5 <= i // 28 < 23 else 0 for i in range(784)]
    with open(os.path.join(FIXTURES, "images", "rgb8.png"), "rb") as f:
        png = f.read()
    with open(os.path.join(FIXTURES, "images", "binary.pgm"), "rb") as f:
        pgm = f.read()
    write("FuzzPredictAPI", "png", b"\x01" + png)
    write("FuzzPredictAPI", "png-no-type", b"\x00" + png)
    write("FuzzPredictAPI", "pgm-octet-stream", b"\x04" + pgm)
    write("FuzzPredictAPI", "pgm", b"\x05" + pgm)
    write("FuzzPredictAPI", "json-bar", b"\x02" + pixels(bar))
    write("FuzzPredictAPI", "json-dark-charset", b"\x03" + pixels([round(1 - v * 0.75, 2) for v in bar]))
    write("FuzzPredictAPI", "json-blank", b"\x02" + pixels([0] * 784))
    write("FuzzPredictAPI", "json-short", b"\x02" + pixels([0.5, 1, 0]))
    write("FuzzPredictAPI", "json-malformed", b"\x02{\"pixels\": [1e400, -0.0, true, null, \"x\", {}]")
    write("FuzzPredictAPI", "free-form-json", b"\x07Application/Vnd.Lenet+JSON ; q=1\n" + pixels(bar))
    write("FuzzPredictAPI", "free-form-image", b"\x07IMAGE/PNG;x=\xff\n" + png)
    write("FuzzPredictAPI", "text", b"\x06hello")
    write("FuzzPredictAPI", "empty-body", b"\x01")
    cases = png_chunk_cases()
    write("FuzzPredictAPI", "png-unknown-chunk-length-2gib", b"\x01" + cases["png-unknown-chunk-length-2gib"])
    write("FuzzPredictAPI", "oom-png-header-8192x8192-rgba16", b"\x01" + cases["oom-png-header-8192x8192-rgba16"])


if __name__ == "__main__":
    idx()
    safetensors_corpus()
    images()
    predict_api()
